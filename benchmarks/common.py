"""Shared benchmark helpers: timing in interleaved blocks, peak RSS of a child, result files."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _timed(fn: Callable[[], object], reps: int) -> list[float]:
    """Wall time of each of `reps` calls."""
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def _summary(samples: dict[str, list[float]]) -> dict[str, dict]:
    return {
        k: {"median_s": statistics.median(v), "min_s": min(v), "n": len(v)}
        for k, v in samples.items()
    }


def time_blocks(
    fns: dict[str, Callable[[], object]],
    *,
    reps: int,
    rounds: int = 3,
    warmup: int = 2,
    pause: float = 0.3,
) -> dict[str, dict]:
    """Median wall time of each fn, measured in blocks: all reps of one, then the next, for
    `rounds` rounds. Blocks (not per-call interleaving) keep one engine's spinning worker
    threads from stealing cores from the next; rounds spread machine noise across engines."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(pause)
            samples[name] += _timed(fn, reps)
    return _summary(samples)


# A small launcher: a child forked from a large process (one holding PyTorch, say) carries that
# process's RSS into its own peak (Linux records the pre-exec high-water mark), so the command
# is started from this tiny interpreter instead, which reports the grandchild's own figures.
_LAUNCHER = """
import json, os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
print(json.dumps({"wall_s": time.perf_counter() - t, "rss_kb": usage.ru_maxrss,
                  "status": status}), file=sys.stderr)
"""


def _engine_process(factory: Callable[[], dict[str, Callable[[], object]]], conn) -> None:
    fns = factory()
    conn.send(list(fns))
    while (msg := conn.recv()) is not None:
        name, reps, warmup = msg
        _timed(fns[name], warmup)
        conn.send(_timed(fns[name], reps))


def time_blocks_isolated(
    factories: list[Callable[[], dict[str, Callable[[], object]]]],
    *,
    reps: int,
    rounds: int = 5,
    warmup: int = 2,
    pause: float = 0.3,
) -> dict[str, dict]:
    """time_blocks, but each factory's engines live in a process of their own (the others wait,
    blocked, while one runs). Sharing a process is not neutral: PyTorch ran ~10 % slower at
    batch 32 after ONNX Runtime runs in the same process, even with 2 s between blocks.
    Factories must be picklable (module-level functions or functools.partial of them)."""
    ctx = multiprocessing.get_context("spawn")
    owners, conns, procs = {}, [], []
    try:
        for factory in factories:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_engine_process, args=(factory, child), daemon=True)
            proc.start()
            procs.append(proc)
            conns.append(parent)
            for name in parent.recv():
                owners[name] = parent
        samples: dict[str, list[float]] = {k: [] for k in owners}
        for r in range(rounds):
            for name, conn in owners.items():
                time.sleep(pause)
                conn.send((name, reps, warmup if r == 0 else 0))
                samples[name] += conn.recv()
    finally:
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in procs:
            proc.join(timeout=30)
    return _summary(samples)


def peak_rss_mb(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(seconds from spawn to exit, peak RSS in MB, stdout) of one run of `cmd`."""
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, env=env)
    stats = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    if stats["status"] != 0:
        raise RuntimeError(f"{cmd} exited with status {stats['status']}")
    return stats["wall_s"], stats["rss_kb"] / 1024, proc.stdout.decode()


def write(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
        **result,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def cifar_split(settings):
    """The shared CIFAR-10 images: (dataset, indices, label ids, the cifar10-300 indices, masks
    over `indices` for "300" and "632" — the dev images outside it)."""
    import numpy as np

    from offline_vision.eval.datasets import open_dataset
    from offline_vision.labels.sets import CIFAR10

    ds = open_dataset(settings.data_dir, "cifar10")
    indices = list(ds.indices)
    truth = np.array([CIFAR10.index(ds.item(i).label) for i in indices])
    s300 = [int(x) for x in (settings.data_dir / "cifar10" / "cifar10-300.txt").read_text().split()]
    listed = (Path(__file__).parent / "accuracy" / "cifar10-non300.txt").read_text().split()
    dev = {int(x) for x in listed if x.strip().isdigit()}
    masks = {"300": np.isin(indices, s300), "632": np.array([i in dev for i in indices])}
    return ds, indices, truth, s300, masks


def cifar_embeddings(eyes, ds, indices, batch: int = 64):
    """(embeddings, features or None) of the dataset's `indices`, `batch` images at a time, by
    `Scorer.encode_with_features` (features: the eyes' richer ones, where they have them)."""
    import numpy as np

    parts = [
        eyes.encode_with_features([ds.image(i) for i in indices[s : s + batch]])
        for s in range(0, len(indices), batch)
    ]
    feats = [f for _e, f in parts]
    emb = np.concatenate([e for e, _f in parts])
    return emb, None if any(f is None for f in feats) else np.concatenate(feats)


def open_reasoner(stack: contextlib.ExitStack, settings, spec: str, threads: int, n_ctx: int):
    """The reasoner `spec`; `openai:…` is the 0.5B GGUF behind llama-cpp-python's server on
    127.0.0.1 (the hosted stand-in), kept running until `stack` closes."""
    from offline_vision.models.provision import registry, store
    from offline_vision.models.reasoners import load_reasoner

    if not spec.startswith("openai:"):
        return load_reasoner(settings, spec)
    gguf = store.load(settings.models_dir, registry.GGUF_FAST).verified_path("model.gguf")
    url = stack.enter_context(llama_server(gguf, threads, n_ctx))
    return load_reasoner(settings, spec, base_url=url)


@contextlib.contextmanager
def llama_server(gguf: Path, threads: int, n_ctx: int = 8192):
    """llama-cpp-python's OpenAI-compatible server on a free 127.0.0.1 port; yields its /v1 URL."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            str(threads),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(480):
            if proc.poll() is not None:
                raise RuntimeError("llama_cpp.server exited while starting")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def give_constants_values(model) -> None:
    """transformers' init leaves every bias at 0 and every LayerNorm at (1, 0), which no trained
    model has, and an exporter shares equal constants (93 MB less memory for ViT-B/32's image
    session, clip_speed found): give them values, so a random model weighs what a trained one
    does."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0.0, 0.02)
            elif "norm" in name:
                p.normal_(1.0, 0.1)


def catalog_of(root: Path, eyes, parts):
    """A catalog at `root` holding each embedding matrix of `parts` as one Parquet part, its
    rows named /syn/00000000.jpg … in order: stored embeddings without images, to tag."""
    from offline_vision.catalog.store import Catalog

    cat = Catalog.open(root, eyes, create=True)
    at = 0
    for v in parts:
        m = len(v)
        cat.append({"path": [f"/syn/{i:08d}.jpg" for i in range(at, at + m)], "size": [1] * m, "mtime_ns": [1] * m, "sha256": [""] * m, "removed": [False] * m, "embedding": list(v)})  # fmt: skip
        at += m
    return cat


def random_parts(n: int, dim: int, rng, part: int = 50_000):
    """`n` random unit vectors of width `dim`, `part` at a time (1M × 384 at once: 1.5 GB)."""
    import numpy as np

    for start in range(0, n, part):
        v = rng.standard_normal((min(part, n - start), dim)).astype(np.float32)
        yield v / np.linalg.norm(v, axis=1, keepdims=True)
