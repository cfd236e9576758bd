"""The records of a run: one JSON object per item in `records.jsonl`, appended as items
finish. This module alone knows the line format, its schema, and how a damaged or cut-short
file is read and recovered; the runner, `report`, the HTML page and the Ray driver go through it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field, fields
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
        "latency_s": {"type": "number"},
        "tokens": {"type": ["object", "null"]},
        "worker": {"type": "object"},
    },
}
_RECORD = jsonschema.Draft202012Validator(RECORD_SCHEMA)
MAX_RECORDS_BYTES = 8 * 2**30


@dataclass(frozen=True)
class Record:
    """One finished item. The fields every reader uses are typed; what a task adds of its own
    (a dialogue's transcript, the eyes' top labels, a pixel prompt) is `detail`, as written."""

    id: int
    truth: str
    prediction: str
    correct: bool
    latency_s: float | None = None  # None: a record written before latencies were kept
    tokens: dict | None = None  # prompt / completion / evaluated, where a reasoner ran
    worker: dict | None = None  # the Ray worker that ran it (--ray)
    detail: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict) -> Record:
        """A record from its JSON object (one that fits RECORD_SCHEMA)."""
        typed = {k: obj[k] for k in _TYPED if k in obj}
        return cls(**typed, detail={k: v for k, v in obj.items() if k not in _TYPED})

    def to_json(self) -> dict:
        head = {"id": self.id, "truth": self.truth, "prediction": self.prediction}
        tail = {"correct": self.correct, "latency_s": self.latency_s, "worker": self.worker}
        out = {**head, **({"tokens": self.tokens} if self.tokens is not None else {})}
        out.update(self.detail)
        out.update({k: v for k, v in tail.items() if v is not None})
        return out

    @property
    def dialogue(self) -> dict:
        """The dialogue's transcript (dialogue tasks), else {}."""
        return self.detail.get("dialogue") or {}


_TYPED = tuple(f.name for f in fields(Record) if f.name != "detail")


def parse_records(path: Path) -> tuple[list[Record], list[int], bool]:
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
        if _RECORD.is_valid(obj):
            records.append(Record.from_json(obj))
        else:
            bad.append(number)
    return records, bad, cut


def read_records(path: Path) -> list[Record]:
    """Finished records, strictly: a damaged line is an error naming it (for reports)."""
    records, bad, _cut = parse_records(path)
    if bad:
        raise RunError(
            f"{path}: line {bad[0]} is not a record (JSON with id, truth, prediction, correct)"
            + (f", and {len(bad) - 1} more" if len(bad) > 1 else "")
        )
    return records


def recover_records(path: Path) -> list[Record]:
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
    write_atomic(path, "".join(line(r) for r in records))
    return records


def line(record: Record) -> str:
    """A record as one line of records.jsonl."""
    return json.dumps(record.to_json(), ensure_ascii=False) + "\n"


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


def timed(task, index: int) -> Record:
    """One item's record (from the task's dict), with its latency where it ran."""
    t = time.perf_counter()
    rec = dict(task(index))
    truth, prediction, tokens = rec.pop("truth"), rec.pop("prediction"), rec.pop("tokens", None)
    return Record(
        id=index,
        truth=truth,
        prediction=prediction,
        correct=prediction == truth,
        latency_s=round(time.perf_counter() - t, 4),
        tokens=tokens,
        detail=rec,
    )
