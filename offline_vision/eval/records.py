"""The records of a run: one JSON object per item in `records.jsonl`, appended as items
finish. This module alone knows the line format, its schema, and how a damaged or cut-short
file is read and recovered; the runner, `report`, the HTML page and the Ray driver go through it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import jsonschema

from offline_vision.errors import RunError
from offline_vision.files import read_bytes, write_atomic

log = logging.getLogger("ovision")
RECORDS = "records.jsonl"


# What every reader of a record relies on; a line that is not this is a damaged line.
RECORD_SCHEMA = {
    "type": "object",
    "required": ["id", "truth", "prediction", "correct"],
    "properties": {
        "id": {"type": "integer"},
        "truth": {"type": "string"},
        "prediction": {"type": "string"},
        "correct": {"type": "boolean"},
    },
}
_RECORD = jsonschema.Draft202012Validator(RECORD_SCHEMA)
MAX_RECORDS_BYTES = 8 * 2**30


def _is_record(obj) -> bool:
    return _RECORD.is_valid(obj)


def parse_records(path: Path) -> tuple[list[dict], list[int], bool]:
    """(records, numbers of damaged lines, whether the last line was cut short by a kill)."""
    if not path.exists():
        return [], [], False
    records, bad, cut = [], [], False
    lines = read_bytes(path, what="records", max_bytes=MAX_RECORDS_BYTES).splitlines(keepends=True)
    for number, line in enumerate(lines, 1):
        if not line.endswith(b"\n") and number == len(lines):
            cut = True  # a write interrupted by a kill: the item was not finished
            break
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if _is_record(obj):
            records.append(obj)
        else:
            bad.append(number)
    return records, bad, cut


def read_records(path: Path) -> list[dict]:
    """Finished records, strictly: a damaged line is an error naming it (for reports)."""
    records, bad, _cut = parse_records(path)
    if bad:
        raise RunError(
            f"{path}: line {bad[0]} is not a record (JSON with id, truth, prediction, correct)"
            + (f", and {len(bad) - 1} more" if len(bad) > 1 else "")
        )
    return records


def recover_records(path: Path) -> list[dict]:
    """Finished records for a resumption. A last line cut short by a kill is dropped; damaged
    lines elsewhere are reported and the file is moved aside whole (nothing is deleted), with
    the good records written to a fresh file."""
    records, bad, cut = parse_records(path)
    if not bad and not cut:
        return records
    if bad:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        log.warning(
            "%s: line(s) %s damaged; kept %d good records, moved the file to %s",
            path,
            ", ".join(map(str, bad[:10])) + (" …" if len(bad) > 10 else ""),
            len(records),
            aside.name,
        )
        os.replace(path, aside)
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return records


# Settings that may change between a run and its resumption without changing its results.
VOLATILE = {"threads", "path", "constraint_mode", "base_url"}


def comparable(cfg) -> str:
    """A config as text, without the settings that may change between sessions of one run."""

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in VOLATILE}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return json.dumps(strip(json.loads(json.dumps(cfg, default=str))), sort_keys=True)


def timed(task, index: int) -> dict:
    """One item's record, with its latency where it ran."""
    t = time.perf_counter()
    rec = task(index)
    return {
        "id": index,
        **rec,
        "correct": rec["prediction"] == rec["truth"],
        "latency_s": round(time.perf_counter() - t, 4),
    }
