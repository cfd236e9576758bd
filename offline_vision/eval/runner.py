"""The evaluation runner every experiment shares: one JSONL record per item, appended as it
goes; a restart skips what is done; one summary JSON per run.

A task is any object with `name`, `config() -> dict`, `resume(records)` (rebuilds sequential
state from finished records) and `__call__(index) -> dict` (at least `truth` and `prediction`).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Protocol

from offline_vision.errors import DataError
from offline_vision.eval.stats import percentile, wilson
from offline_vision.progress import bar as progress_bar

RECORDS = "records.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.json"


class Task(Protocol):
    name: str

    def config(self) -> dict: ...

    def resume(self, records: list[dict]) -> None: ...

    def __call__(self, index: int) -> dict: ...


def read_records(path: Path) -> list[dict]:
    """Finished records; a last line cut short by a kill is dropped (and trimmed from the file)."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    records, good_bytes = [], 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            records.append(json.loads(line))
        except ValueError:
            break
        good_bytes += len(line)
    if good_bytes != len(raw):
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    return records


# Settings that may change between a run and its resumption without changing its results.
VOLATILE = {"threads", "path", "constraint_mode", "base_url"}


def _comparable(cfg) -> str:
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in VOLATILE}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return json.dumps(strip(json.loads(json.dumps(cfg, default=str))), sort_keys=True)


def run(task: Task, indices: list[int], out_dir: Path, *, classes: tuple[str, ...] = ()) -> dict:
    """Evaluate `indices` (in order) into `out_dir`, resuming; returns the summary."""
    if not indices:
        raise DataError("nothing to evaluate (empty selection)")
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {**task.config(), "n": len(indices), "indices": indices}
    cfg_path = out_dir / CONFIG
    if cfg_path.exists():
        previous = json.loads(cfg_path.read_text())
        if _comparable(previous) != _comparable(config):
            raise DataError(
                f"{out_dir} holds a run with a different configuration; resume it with the same "
                "options or choose another --out"
            )
    else:
        cfg_path.write_text(json.dumps(config, indent=2, default=str) + "\n")

    rec_path = out_dir / RECORDS
    done = [r for r in read_records(rec_path) if r["id"] in set(indices)]
    by_id = {r["id"]: r for r in done}
    task.resume([by_id[i] for i in indices if i in by_id])
    todo = [i for i in indices if i not in by_id]
    correct = sum(r["correct"] for r in done)
    with (
        open(rec_path, "a", encoding="utf-8") as out,
        progress_bar(len(indices), task.name, unit="item", initial=len(done)) as bar,
    ):
        for n, index in enumerate(todo, len(done) + 1):
            t = time.perf_counter()
            rec = task(index)
            rec = {
                "id": index,
                **rec,
                "correct": rec["prediction"] == rec["truth"],
                "latency_s": round(time.perf_counter() - t, 4),
            }
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
            by_id[index] = rec
            correct += rec["correct"]
            bar.update(1)
            bar.set_postfix(acc=f"{correct / n:.3f}")
    records = [by_id[i] for i in indices]
    summary = summarize(records, config, classes)
    extra = getattr(task, "summary_extra", None)
    if extra is not None:
        summary.update(extra(records))
    tmp = out_dir / (SUMMARY + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    os.replace(tmp, out_dir / SUMMARY)
    return summary


def summarize(records: list[dict], config: dict, classes: tuple[str, ...] = ()) -> dict:
    n = len(records)
    k = sum(r["correct"] for r in records)
    labels = list(classes) or sorted({r["truth"] for r in records})
    other = sorted({r["prediction"] for r in records} - set(labels))
    columns = labels + other
    col = {c: i for i, c in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in labels]
    per_class: dict[str, dict] = {}
    for lab in labels:
        rs = [r for r in records if r["truth"] == lab]
        per_class[lab] = {
            "n": len(rs),
            "correct": sum(r["correct"] for r in rs),
            "accuracy": (sum(r["correct"] for r in rs) / len(rs)) if rs else None,
        }
    for r in records:
        if r["truth"] in col and r["truth"] in labels:
            matrix[labels.index(r["truth"])][col[r["prediction"]]] += 1
    lat = [r["latency_s"] for r in records]
    tokens = {}
    for key in ("prompt", "completion", "evaluated"):
        vals = [r.get("tokens", {}).get(key) for r in records]
        vals = [v for v in vals if v is not None]
        if vals:
            tokens[key] = {"total": sum(vals), "per_item": sum(vals) / len(vals)}
    lo, hi = wilson(k, n)
    return {
        "task": config.get("task"),
        "n": n,
        "correct": k,
        "accuracy": k / n,
        "ci95": [lo, hi],
        "per_class": per_class,
        "confusion": {"rows": labels, "columns": columns, "matrix": matrix},
        "predictions": dict(Counter(r["prediction"] for r in records).most_common()),
        "latency_s": {
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "mean": sum(lat) / n,
            "total": sum(lat),
        },
        "tokens": tokens,
        "config": {k: v for k, v in config.items() if k != "indices"},
    }
