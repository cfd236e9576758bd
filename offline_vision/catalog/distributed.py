"""`ovision index --ray`: the new and changed images embedded on Ray Data — `map_batches` over
an actor pool, each actor loading the eyes once — while this process alone writes the catalog,
batch by batch as results arrive (the same parts, the same resume after a kill).

A local Ray is started unless an address is given (the `cluster` extra: `ray[data]`); every
node needs offline_vision, the models and the images at the same paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path

import numpy as np

from offline_vision.catalog.index import Embedded, Embedder, embed_batch, load
from offline_vision.errors import RunError
from offline_vision.models.scorer import Scorer


class _Embedder:
    """One Ray Data actor: the eyes loaded once, then batch after batch of paths."""

    def __init__(self, load_eyes: Callable[[], Scorer]) -> None:
        self.eyes = load_eyes()
        self.dim = int(self.eyes.encode_labels(["x"]).shape[1])  # one space for both towers

    def __call__(self, batch: dict) -> dict:
        paths = [Path(str(p)) for p in batch["item"]]
        ok, failed = embed_batch(self.eyes, paths, [load(p) for p in paths])
        emb = np.zeros((len(ok), self.dim), np.float32)
        for i, (_p, (_st, _sha, e)) in enumerate(ok):
            emb[i] = e
        return {
            "path": np.array([str(p) for p, _x in ok] + [""] * len(failed), dtype=object),
            "size": np.array([x[0].st_size for _p, x in ok] + [0] * len(failed), np.int64),
            "mtime_ns": np.array([x[0].st_mtime_ns for _p, x in ok] + [0] * len(failed)),
            "sha256": np.array([x[1] for _p, x in ok] + [""] * len(failed), dtype=object),
            "error": np.array([""] * len(ok) + failed, dtype=object),
            "embedding": np.concatenate([emb, np.zeros((len(failed), self.dim), np.float32)]),
        }


class _Stat:
    """What `index` records of a file, carried back from a worker."""

    def __init__(self, size: int, mtime_ns: int) -> None:
        self.st_size, self.st_mtime_ns = int(size), int(mtime_ns)


def _rows(b: dict) -> Embedded:
    """A batch back from the actors, as `index` takes it."""
    cols = ("path", "size", "mtime_ns", "sha256", "error", "embedding")
    ok = [
        (Path(p), (_Stat(s, m), str(sha), e))
        for p, s, m, sha, err, e in zip(*(b[c] for c in cols), strict=True)
        if not err
    ]
    return ok, [str(err) for err in b["error"] if err]


def on_ray(
    load_eyes: Callable[[], Scorer], *, address: str | None, workers: int | None, threads: int
) -> Embedder:
    """An `index` embedder on Ray Data: `load_eyes` runs once in each of `workers` actors."""
    from offline_vision.eval.cluster import connect, import_ray

    ray = import_ray()
    try:
        import_module("ray.data")  # ray[data]: pandas and fsspec
    except ImportError:
        raise RunError("--ray needs Ray Data: pip install 'offline_vision[cluster]'") from None

    def run(todo: list[Path], batch_size: int) -> Iterator[Embedded]:
        if not todo:
            return
        n, started = connect(ray, address, workers, threads)
        try:
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False  # index draws its own bar
            logging.getLogger("ray.data").setLevel(logging.WARNING)
            ds = ray.data.from_items([str(p) for p in todo])
            out = ds.map_batches(
                _Embedder,
                fn_constructor_args=(load_eyes,),
                batch_size=batch_size,
                concurrency=n,
                num_cpus=threads,
                batch_format="numpy",
            )
            for b in out.iter_batches(batch_size=batch_size, batch_format="numpy"):
                yield _rows(b)
        except ray.exceptions.RayError as e:
            raise RunError(f"a Ray Data worker failed: {str(e).strip().splitlines()[-1]}") from None
        finally:
            if started:
                ray.shutdown()

    return run
