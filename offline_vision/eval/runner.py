"""The evaluation runner every experiment shares: one JSONL record per item, appended as it
goes; a restart skips what is done; one summary JSON per run. The runner only schedules: the
record format is `eval.records`, the summary `eval.summary`, and where items run is a result
source (`Threads` here; `eval.cluster.RaySource` for Ray workers).

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
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from offline_vision.errors import RunError
from offline_vision.eval.records import RECORDS, Record, comparable, line, recover_records, timed
from offline_vision.eval.summary import summarize
from offline_vision.files import open_output, write_atomic
from offline_vision.progress import bar as progress_bar

SUMMARY = "summary.json"
CONFIG = "config.json"
LOCK = ".lock"
log = logging.getLogger("ovision")


class Task(Protocol):
    name: str

    def config(self) -> dict: ...

    def resume(self, records: list[Record]) -> None: ...

    def __call__(self, index: int) -> dict: ...


class ResultSource(Protocol):
    """Where items run: finished records as they finish, for the items in `todo`."""

    @property
    def parallel(self) -> bool:
        """More than one item in flight (a sequential task refuses it)."""
        ...

    def results(self, task: Task, todo: list[int], config: dict, stats: dict) -> Iterator[Record]:
        """`config`: the task's, which remote workers must match; `stats`: filled for the
        summary's `this_session`."""
        ...


@dataclass(frozen=True)
class Threads:
    """Items on this process's threads, at most `concurrency` in flight (1: one after another)."""

    concurrency: int = 1

    @property
    def parallel(self) -> bool:
        return self.concurrency > 1

    def results(self, task: Task, todo: list[int], config: dict, stats: dict) -> Iterator[Record]:
        stats["concurrency"] = self.concurrency
        return _results(task, todo, self.concurrency)


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
    source: ResultSource | None = None,
) -> dict:
    """Evaluate `indices` into `out_dir`, resuming; returns the summary. `source` says where
    items run (default: one after another here); with more than one in flight, records are
    appended as they finish, and the summary is in `indices` order either way. This process is
    the only writer."""
    src: ResultSource = source or Threads()
    if not indices:
        raise RunError("nothing to evaluate (empty selection)")
    if src.parallel and getattr(task, "sequential", False):
        raise RunError(
            f"{task.name}: each item depends on the ones before it; run it with concurrency 1 "
            "and without --ray"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked(out_dir):
        return _run_locked(task, indices, out_dir, classes, src)


def _results(task: Task, todo: list[int], concurrency: int) -> Iterator[Record]:
    """Finished records, as they finish; at most `concurrency` items in flight."""
    if concurrency <= 1:
        for index in todo:
            yield timed(task, index)
        return
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ovision-item")
    finished: list[Record] = []  # every record an item thread made, in the order they finished
    handed: set[int] = set()
    state = threading.Condition()
    running, stopping = 0, False

    def run_one(index: int) -> Record | None:
        nonlocal running
        with state:
            if stopping:  # dequeued after the interrupt: not started, left for a resume
                return None
            running += 1
        try:
            rec = timed(task, index)
            finished.append(rec)  # seen even where the item's future never reached us
            return rec
        finally:
            with state:
                running -= 1
                state.notify_all()

    pending: set = set()
    queue = iter(todo)
    try:
        for index in itertools.islice(queue, concurrency):
            pending.add(pool.submit(run_one, index))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                rec = future.result()
                handed.add(rec.id)
                yield rec
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(run_one, nxt))
    except KeyboardInterrupt:
        # Wherever it lands (even inside submit, whose future is then never returned): items
        # not started stay undone, those running finish (threads are not killed), and every
        # record not yet handed on is, before the interrupt ends the run. A second interrupt
        # stops the wait.
        with state:
            stopping = True
            state.wait_for(lambda: running == 0)
        for rec in list(finished):
            if rec.id not in handed:
                handed.add(rec.id)
                yield rec
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(results: Iterator[Record], keep) -> None:
    """`keep` every record `results` gives. An interrupt while one is kept (not only while the
    source waits) is passed to the source, which hands on what is running and finished; those
    are kept too before the interrupt ends the run: nothing finished is lost."""
    current = None
    try:
        for current in results:
            keep(current)
    except KeyboardInterrupt:
        if current is not None:
            keep(current)  # the one being kept when it came (kept once: keep skips ids it has)
        throw = getattr(results, "throw", None)  # a generator: its own handler drains it
        if throw is not None:
            try:
                rec = throw(KeyboardInterrupt)
                while True:
                    keep(rec)
                    rec = next(results)
            except (KeyboardInterrupt, StopIteration):
                pass
        raise


def _run_locked(
    task: Task, indices: list[int], out_dir: Path, classes: tuple[str, ...], source: ResultSource
) -> dict:
    built = task.config()
    config = {**built, "n": len(indices), "indices": indices}
    _check_config(out_dir, config)
    rec_path = out_dir / RECORDS
    wanted = set(indices)
    done = [r for r in recover_records(rec_path) if r.id in wanted]
    by_id = {r.id: r for r in done}
    task.resume([by_id[i] for i in indices if i in by_id])
    todo = [i for i in indices if i not in by_id]
    correct = sum(r.correct for r in done)
    t0, stats = time.perf_counter(), dict[str, Any]()
    with (
        open_output(rec_path, "a", encoding="utf-8") as out,
        progress_bar(len(indices), task.name, unit="item", initial=len(done)) as bar,
    ):

        def keep(rec: Record) -> None:
            nonlocal correct
            if rec.id in by_id:  # written before an interrupt came
                return
            out.write(line(rec))  # one writer, whole lines
            by_id[rec.id] = rec
            out.flush()
            os.fsync(out.fileno())
            correct += rec.correct
            bar.update(1)
            bar.set_postfix(acc=f"{correct / max(len(by_id), 1):.3f}")

        _drain(source.results(task, todo, built, stats), keep)
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
