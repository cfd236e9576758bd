"""`eval … --ray`: items run on Ray actors ("workers"), each building its own copy of the task
once (scorer and reasoner loaded once per worker); results stream back to the driver, which
alone appends `records.jsonl` through the runner (same resume, config check and summary).

A worker that dies mid-item (killed, out of memory, its node gone) loses nothing: the item
goes back to the queue, is retried on another worker, and the dead one rejoins once Ray has
restarted it. Ray is the `cluster` extra, imported only here and only when `--ray` is given.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from offline_vision.config import Settings, env_number
from offline_vision.errors import OVisionError, RunError
from offline_vision.eval.records import Record, comparable, timed

EXTRA = "pip install 'offline_vision[cluster]'"
MAX_TRIES = 3  # attempts per item before the run stops (a poison item must not kill every worker)
RESTARTS = 4  # times Ray brings back one dead worker
START_TIMEOUT_S = 600.0  # OVISION_RAY_START_TIMEOUT overrides
log = logging.getLogger("ovision")


@dataclass(frozen=True)
class Recipe:
    """How to build a task: a module-level function and plain arguments, so a worker process
    (on this machine or another) can build its own copy."""

    build: Callable
    settings: Settings
    kwargs: dict

    def __call__(self, **settings_overrides):
        return self.build(replace(self.settings, **settings_overrides), **self.kwargs)


@dataclass(frozen=True)
class RayPlan:
    recipe: Recipe
    address: str | None = None  # None: start a local Ray on this machine
    workers: int | None = None  # None: as many as the CPUs allow
    threads: int = 1  # CPU threads per worker (its models' threads; what Ray reserves)


def import_ray():
    try:
        import ray
    except ImportError:
        raise RunError(f"--ray needs Ray, which is not installed: {EXTRA}") from None
    return ray


class Worker:
    """One Ray actor: builds the task once, then runs items. A failure to build is kept and
    raised by the first call, so it reaches the driver as the task's own error."""

    def __init__(self, recipe: Recipe, name: str, threads: int):
        import ray

        self.name, self.error = name, None
        self.task: Any = None
        context = ray.get_runtime_context()
        self.where = {
            "name": name,
            "node": context.get_node_id()[:12],
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        try:
            self.task = recipe(threads=threads)
        except Exception as e:  # raised again, whole, by config()
            self.error = e

    def config(self) -> dict:
        if self.error is not None:
            raise self.error
        return self.task.config()

    def ping(self) -> str:
        return self.name

    def item(self, index: int) -> dict:
        """One item's record as JSON (what crosses to the driver)."""
        return replace(timed(self.task, index), worker=self.where).to_json()


def _reachable(address: str) -> None:
    """Refuse an address nothing listens on at once (Ray itself retries it for minutes)."""
    # A Ray Client address (ray://HOST:PORT) is checked at HOST:PORT and handed to Ray as given.
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not (sep and port.isdigit()):
        return  # "auto": left to Ray
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=10).close()
    except OSError as e:
        raise RunError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); start one with "
            "`ray start --head`, or leave out --ray-address for a local Ray"
        ) from None


def connect(ray, address: str | None, workers: int | None, threads: int) -> tuple[int, bool]:
    """Start a local Ray (`address` None) or join one; (number of workers, whether this process
    started it). Evaluations on Ray and the catalog's index on Ray Data both start here."""
    logging.getLogger("ray").setLevel(logging.ERROR)
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        cpus = os.cpu_count() or 1
        workers = workers or max(1, cpus // threads)
        ray.init(
            address="local",
            num_cpus=max(cpus, workers * threads),
            include_dashboard=False,
            object_store_memory=128 * 1024**2,  # records are small; keep /dev/shm free
            _node_ip_address="127.0.0.1",  # a Ray this run starts listens on loopback only
            **quiet,
        )
        return workers, True
    _reachable(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RunError(
            f"could not join the Ray cluster at {address} ({e}); where the cluster uses "
            "Ray's token auth, this machine needs its token (RAY_AUTH_MODE=token and "
            "RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        ) from None
    total = int(ray.cluster_resources().get("CPU", 0))
    workers = workers or max(1, total // threads)
    if workers * threads > total:
        ray.shutdown()
        raise RunError(
            f"the Ray cluster at {address} has {total} CPUs; --workers {workers} × "
            f"--threads-per-worker {threads} needs {workers * threads}"
        )
    return workers, False


def _task_error(e: Exception) -> Exception:
    """The task's own exception where a worker raised one (so the CLI prints one line)."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, OVisionError | OSError | ValueError):
        return cause
    first = str(cause or e).strip().splitlines()
    return RunError(f"a Ray worker failed: {first[-1] if first else type(e).__name__}")


def _start(ray, plan: RayPlan, n: int, concurrency: int, config: dict) -> list:
    actor = ray.remote(Worker).options(
        num_cpus=plan.threads,
        max_restarts=RESTARTS,
        max_concurrency=concurrency,
        scheduling_strategy="SPREAD",
    )
    workers = [actor.remote(plan.recipe, f"w{i}", plan.threads) for i in range(n)]
    refs = [w.config.remote() for w in workers]
    timeout = env_number("OVISION_RAY_START_TIMEOUT", START_TIMEOUT_S, float)
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    if len(ready) < len(refs):
        raise RunError(
            f"{len(refs) - len(ready)} of {n} Ray workers did not start within "
            f"{timeout:.0f} s (not enough free CPUs for --threads-per-worker "
            f"{plan.threads}?)"
        )
    for i, ref in enumerate(refs):
        try:
            theirs = ray.get(ref)
        except ray.exceptions.RayError as e:
            raise _task_error(e) from None
        if comparable(theirs) != comparable(config):
            raise RunError(
                f"Ray worker w{i} built a different configuration than this driver (other "
                "model files or data on its node?); every node needs the same models and data"
            )
    return workers


class Dispatcher:
    """Keeps `concurrency` items in flight on every live worker; a worker's death puts its
    items back in the queue for the others and waits for Ray to restart it."""

    def __init__(self, ray, workers: list, concurrency: int):
        self.ray, self.workers, self.slots = ray, workers, concurrency
        self.live = set(range(len(workers)))
        self.inflight: dict = {}  # ref -> (index, worker)
        self.pings: dict = {}  # ref -> worker being restarted
        self.tries: dict[int, int] = {}
        self.retried = 0

    def _submit(self, queue: deque) -> None:
        for w in sorted(self.live):
            busy = sum(1 for _i, who in self.inflight.values() if who == w)
            for _ in range(self.slots - busy):
                if not queue:
                    return
                index = queue.popleft()
                self.inflight[self.workers[w].item.remote(index)] = (index, w)

    def _lost(self, index: int, w: int, queue: deque, error: Exception) -> None:
        self.tries[index] = self.tries.get(index, 1) + 1
        if self.tries[index] > MAX_TRIES:
            raise RunError(f"item {index} failed on {MAX_TRIES} workers; last: {error}")
        queue.appendleft(index)
        self.retried += 1
        if w in self.live:
            log.warning("Ray worker w%d died on item %d; the item is retried", w, index)
            self.live.discard(w)
            self.pings[self.workers[w].ping.remote()] = w

    def _settle(self, ref, queue: deque) -> dict | None:
        """The record `ref` brought, or None (a restarted worker back, or an item lost)."""
        ray = self.ray
        if ref in self.pings:
            w = self.pings.pop(ref)
            try:
                ray.get(ref)
                self.live.add(w)  # restarted: back in the pool
            except ray.exceptions.RayActorError:
                log.warning("Ray worker w%d is gone for good", w)
            return None
        index, w = self.inflight.pop(ref)
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as e:
            self._lost(index, w, queue, e)
        except ray.exceptions.RayTaskError as e:
            raise _task_error(e) from None
        return None

    def run(self, todo: list[int]) -> Iterator[dict]:
        queue = deque(todo)
        self._submit(queue)
        while self.inflight or queue:
            if not self.live and not self.pings:
                raise RunError("every Ray worker died and none came back; see Ray's logs")
            ready, _ = self.ray.wait([*self.inflight, *self.pings], num_returns=1)
            record = self._settle(ready[0], queue)
            self._submit(queue)
            if record is not None:
                yield record


@dataclass(frozen=True)
class RaySource:
    """The runner's result source for `--ray`: items on the plan's workers, `concurrency` in
    flight on each."""

    plan: RayPlan
    concurrency: int = 1
    parallel = True

    def results(self, task, todo: list[int], config: dict, stats: dict) -> Iterator[Record]:
        stats["concurrency"] = self.concurrency
        for obj in results(self.plan, todo, self.concurrency, config, stats):
            yield Record.from_json(obj)


def results(plan: RayPlan, todo: list[int], concurrency: int, config: dict, stats: dict):
    """Finished records (JSON) from Ray workers, as they finish; workers whose task config
    differs from `config` are refused; `stats` gets the layout and the retry count."""
    ray = import_ray()
    t = time.perf_counter()
    n, started = connect(ray, plan.address, plan.workers, plan.threads)
    workers: list = []
    try:
        workers = _start(ray, plan, n, concurrency, config)
        stats.update(
            backend="ray",
            workers=n,
            threads_per_worker=plan.threads,
            nodes_in_cluster=sum(1 for node in ray.nodes() if node.get("Alive")),
            startup_s=round(time.perf_counter() - t, 3),
        )
        dispatcher = Dispatcher(ray, workers, concurrency)
        try:
            yield from dispatcher.run(todo)
        finally:
            stats["retried"] = dispatcher.retried
    finally:
        if started:
            ray.shutdown()
        else:
            for w in workers:  # a cluster outlives this run; its workers do not
                ray.kill(w)
