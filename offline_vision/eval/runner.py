"""The evaluation runner every experiment shares: one JSONL record per item, appended as it
goes; a restart skips what is done; one summary JSON per run.

A task is any object with `name`, `config() -> dict`, `resume(records)` (rebuilds sequential
state from finished records) and `__call__(index) -> dict` (at least `truth` and `prediction`).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Protocol

from offline_vision.errors import RunError
from offline_vision.eval.records import RECORDS, comparable, recover_records, timed
from offline_vision.eval.stats import percentile, wilson
from offline_vision.files import write_atomic
from offline_vision.progress import bar as progress_bar

SUMMARY = "summary.json"
CONFIG = "config.json"
LOCK = ".lock"
log = logging.getLogger("ovision")


class Task(Protocol):
    name: str

    def config(self) -> dict: ...

    def resume(self, records: list[dict]) -> None: ...

    def __call__(self, index: int) -> dict: ...


@contextlib.contextmanager
def locked(out_dir: Path):
    """Hold `out_dir`'s lock for a run: a second process writing the same run is refused."""
    fd = os.open(out_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(
                f"{out_dir} is being written by another ovision process; wait for it or "
                "choose another --out"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock (so does the process dying)


def _check_config(out_dir: Path, config: dict) -> None:
    cfg_path = out_dir / CONFIG
    has_records = (out_dir / RECORDS).exists() and (out_dir / RECORDS).stat().st_size > 0
    previous, state = None, None
    try:
        previous = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        state = "missing"
    except (OSError, UnicodeDecodeError, ValueError):
        state = "unreadable"
    if state is not None:
        if has_records:
            raise RunError(
                f"{out_dir} holds records but its {CONFIG} is {state}, so what produced them "
                "cannot be checked; choose another --out (or move the records away)"
            )
        write_atomic(cfg_path, json.dumps(config, indent=2, default=str) + "\n")
    elif comparable(previous) != comparable(config):
        raise RunError(
            f"{out_dir} holds a run with a different configuration; resume it with the same "
            "options or choose another --out"
        )


def run(
    task: Task,
    indices: list[int],
    out_dir: Path,
    *,
    classes: tuple[str, ...] = (),
    concurrency: int = 1,
    ray=None,
) -> dict:
    """Evaluate `indices` into `out_dir`, resuming; returns the summary. With `concurrency` > 1,
    that many items are in flight at once (threads; for tasks whose reasoner is a server) and
    records are appended as they finish; the summary is in `indices` order either way. With
    `ray` (an `eval.cluster.RayPlan`), items run on Ray workers (`concurrency` each) and this
    process stays the only writer."""
    if not indices:
        raise RunError("nothing to evaluate (empty selection)")
    if (concurrency > 1 or ray is not None) and getattr(task, "sequential", False):
        raise RunError(
            f"{task.name}: each item depends on the ones before it; run it with concurrency 1 "
            "and without --ray"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked(out_dir):
        return _run_locked(task, indices, out_dir, classes, concurrency, ray)


def _results(task: Task, todo: list[int], concurrency: int) -> Iterator[dict]:
    """Finished records, as they finish; at most `concurrency` items in flight."""
    if concurrency <= 1:
        for index in todo:
            yield timed(task, index)
        return
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ovision-item")
    pending: set = set()
    queue = iter(todo)
    try:
        for index in itertools.islice(queue, concurrency):
            pending.add(pool.submit(timed, task, index))
        while pending:
            try:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                # Items not started are cancelled; those running finish anyway (threads are
                # not killed), so they are waited for and written before the interrupt ends the
                # run. A second interrupt stops the wait.
                for future in pending:
                    future.cancel()
                finished, _ = wait(pending)
                for future in finished:
                    if not future.cancelled() and future.exception() is None:
                        yield future.result()
                raise
            for future in done:
                yield future.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(timed, task, nxt))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _source(task: Task, todo: list[int], concurrency: int, ray, config: dict, stats: dict):
    """Finished records from this process's threads, or with `ray` from Ray workers."""
    if ray is None:
        return _results(task, todo, concurrency)
    from offline_vision.eval import cluster

    return cluster.results(ray, todo, concurrency, config, stats)


def _run_locked(
    task: Task, indices: list[int], out_dir: Path, classes: tuple[str, ...], concurrency: int, ray
) -> dict:
    built = task.config()
    config = {**built, "n": len(indices), "indices": indices}
    _check_config(out_dir, config)
    rec_path = out_dir / RECORDS
    wanted = set(indices)
    done = [r for r in recover_records(rec_path) if r["id"] in wanted]
    by_id = {r["id"]: r for r in done}
    task.resume([by_id[i] for i in indices if i in by_id])
    todo = [i for i in indices if i not in by_id]
    correct = sum(r["correct"] for r in done)
    t0, stats = time.perf_counter(), {"concurrency": concurrency}
    with (
        open(rec_path, "a", encoding="utf-8") as out,
        progress_bar(len(indices), task.name, unit="item", initial=len(done)) as bar,
    ):
        for n, rec in enumerate(_source(task, todo, concurrency, ray, built, stats), len(done) + 1):
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")  # one writer, whole lines
            out.flush()
            os.fsync(out.fileno())
            by_id[rec["id"]] = rec
            correct += rec["correct"]
            bar.update(1)
            bar.set_postfix(acc=f"{correct / n:.3f}")
    wall = time.perf_counter() - t0
    records = [by_id[i] for i in indices]
    summary = summarize(records, config, classes)
    summary["this_session"] = {
        "items": len(todo),
        "wall_s": round(wall, 3),
        "items_per_s": round(len(todo) / wall, 3) if todo and wall > 0 else None,
        **stats,
    }
    extra = getattr(task, "summary_extra", None)
    if extra is not None:
        summary.update(extra(records))
    write_atomic(out_dir / SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _where(records: list[dict]) -> dict:
    """Items per Ray worker and per node, where the records say (runs with --ray)."""
    placed = [r["worker"] for r in records if isinstance(r.get("worker"), dict)]
    if not placed:
        return {}
    return {
        "per_worker": dict(sorted(Counter(w["name"] for w in placed).items())),
        "per_node": dict(sorted(Counter(f"{w['host']}/{w['node']}" for w in placed).items())),
    }


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
        **_where(records),
        "config": {k: v for k, v in config.items() if k != "indices"},
    }
