"""`ovision index`: embed images once into a catalog, incrementally.

A file whose size and mtime are what the catalog recorded is not read again; one whose stat
changed is hashed, and embedded again only if its content changed; a file gone from disk is
marked removed. Images are decoded on a small thread pool while the eyes embed the batch
before, and every batch is written as its own part as soon as it is embedded.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from offline_vision.catalog.store import Catalog
from offline_vision.errors import BadImage, BadInput
from offline_vision.images import MAX_FILE_BYTES, load_image
from offline_vision.models.scorer import Scorer
from offline_vision.progress import bar as progress_bar


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load(path: Path):
    """(image or None, error or None, stat, sha256) for one file, read once: its hash and its
    pixels come from the same bytes. Done on the decode pool."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise BadImage(f"{path}: over the {MAX_FILE_BYTES:,}-byte limit for an image")
        return load_image(path, data), None, st, hashlib.sha256(data).hexdigest()
    except (BadInput, OSError) as e:
        return None, str(e), None, None


Embedded = tuple[list[tuple[Path, tuple]], list[str]]  # (path, (st, sha, emb)) ok; errors
Embedder = Callable[[list[Path], int], Iterator[Embedded]]


def index(
    paths: Sequence[Path],
    root: Path,
    eyes: Scorer,
    *,
    batch_size: int = 32,
    workers: int = 2,
    dtype: str | None = None,
    embedder: Embedder | None = None,
) -> dict:
    """Embed what is new or changed among `paths` into the catalog at `root` (a new one storing
    `dtype`: float32, or float16 at half the bytes); returns counts. `embedder` embeds the
    batches elsewhere (`catalog.distributed.on_ray`); this process alone writes the catalog."""
    t0 = time.perf_counter()
    catalog = Catalog.open(root, eyes, create=True, dtype=dtype)
    known = catalog.rows()
    at = {p: i for i, p in enumerate(known.paths)}
    todo: list[Path] = []
    same_content = _columns()
    counts = {"added": 0, "changed": 0, "unchanged": 0, "removed": 0, "failed": 0}
    for path in map(Path, paths):
        key = str(path.resolve())
        i = at.get(key)
        if i is None:
            todo.append(path)
            continue
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns) == (known.size[i], known.mtime_ns[i]):
            counts["unchanged"] += 1
        elif _sha256(path) == known.sha256[i]:  # touched, not changed: new stat only
            _add(same_content, key, st, known.sha256[i], known.embeddings[i])
            counts["unchanged"] += 1
        else:
            todo.append(path)
    gone = [k for k in known.paths if not os.path.exists(k)]
    for k in gone:
        _add(same_content, k, None, "", None, removed=True)
    counts["removed"] = len(gone)
    if same_content["path"]:
        catalog.append(same_content)
    errors: list[str] = []
    embed = embedder or _local(eyes, workers)
    with progress_bar(len(todo), "indexing", unit="img", min_total=batch_size + 1) as bar:
        for ok, failed in embed(todo, batch_size):
            rows = _columns()
            for src, (st, sha, e) in ok:
                key = str(src.resolve())
                counts["changed" if key in at else "added"] += 1
                _add(rows, key, st, sha, e)
            if ok:
                catalog.append(rows)  # a kill loses at most the batch in flight
            errors += failed
            bar.update(len(ok) + len(failed))
    counts["failed"] = len(errors)
    return {**counts, "errors": errors, "seconds": round(time.perf_counter() - t0, 3)}


def embed_batch(eyes: Scorer, batch: list[Path], loaded: list) -> Embedded:
    """One batch's decoded images embedded: ((path, (stat, sha256, embedding)) for each that
    decoded, and a line for each that did not)."""
    ok = [(p, x) for p, x in zip(batch, loaded, strict=True) if x[0] is not None]
    failed = [f"{p}: {x[1]}" for p, x in zip(batch, loaded, strict=True) if x[0] is None]
    if not ok:
        return [], failed
    emb = eyes.encode_images([x[0] for _p, x in ok])
    return [(p, (x[2], x[3], e)) for (p, x), e in zip(ok, emb, strict=True)], failed


def _local(eyes: Scorer, workers: int) -> Embedder:
    """Batches embedded here, each decoded on a small thread pool while the one before is
    embedded."""

    def run(todo: list[Path], batch_size: int) -> Iterator[Embedded]:
        with ThreadPoolExecutor(workers) as pool:
            batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
            pending = pool.map(load, batches[0]) if batches else iter(())
            for n, batch in enumerate(batches):
                loaded = list(pending)  # decoded on the pool …
                if n + 1 < len(batches):
                    pending = pool.map(load, batches[n + 1])  # … the next while this is embedded
                yield embed_batch(eyes, batch, loaded)

    return run


def _columns() -> dict[str, list]:
    return {k: [] for k in ("path", "size", "mtime_ns", "sha256", "removed", "embedding")}


def _add(rows: dict, path: str, st, sha: str, emb, *, removed: bool = False) -> None:
    rows["path"].append(path)
    rows["size"].append(st.st_size if st else 0)
    rows["mtime_ns"].append(st.st_mtime_ns if st else 0)
    rows["sha256"].append(sha)
    rows["removed"].append(removed)
    rows["embedding"].append(emb)
