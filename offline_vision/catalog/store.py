"""A catalog: each image embedded once by one pair of eyes, stored in Parquet parts.

Layout of CATALOG/: `catalog.json` (the format and the eyes that embedded it) and
`parts/part-NNNNNN.parquet`, one per batch written, each replacing nothing: a killed run loses
at most the batch in flight. A row is one image's state at that time — its path, size, mtime,
content sha256, and embedding, or `removed` — and the last row of a path wins. pandas, DuckDB,
Ray Data and pyarrow read the parts as they are (`pyarrow.dataset.dataset(CATALOG/parts)`).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offline_vision.errors import BadInput
from offline_vision.files import read_text, write_atomic
from offline_vision.models.scorer import Scorer

FORMAT = "ovision-catalog/1"
META = "catalog.json"
PARTS = "parts"


def eyes_identity(eyes: Scorer) -> dict:
    """What makes two embeddings of one image comparable: the eyes' description (model, files'
    sha256, precision) and their text tower's key."""
    return {"describe": eyes.describe(), "text_model_key": eyes.text_model_key}


def _digest(identity: dict) -> str:
    body = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(body).hexdigest()


@dataclass
class Rows:
    """The catalog's images now: one row each (removed ones left out)."""

    paths: list[str]
    size: np.ndarray  # int64
    mtime_ns: np.ndarray  # int64
    sha256: list[str]
    embeddings: np.ndarray  # (n, dim) float32, unit rows


class Catalog:
    def __init__(self, root: Path, meta: dict):
        self.root, self.meta = Path(root), meta

    @classmethod
    def open(
        cls,
        root: Path,
        eyes: Scorer | None = None,
        *,
        create: bool = False,
        dtype: str | None = None,
    ) -> Catalog:
        """The catalog at `root` (made with `eyes` where `create` and it is not there yet,
        storing embeddings as `dtype`: float32 by default, or float16); with `eyes`, refused in
        one line unless they are the eyes that embedded it, with `dtype` unless it stores that."""
        root = Path(root)
        meta_path = root / META
        if not meta_path.exists():
            if not create or eyes is None:
                raise BadInput(f"{root}: not a catalog (no {META}); make one with `ovision index`")
            ident = eyes_identity(eyes)
            meta = {"format": FORMAT, "eyes": ident, "eyes_sha256": _digest(ident)}
            meta["dtype"] = dtype or "float32"
            write_atomic(meta_path, json.dumps(meta, indent=1, default=str) + "\n")
            return cls(root, meta)
        try:
            meta = json.loads(read_text(meta_path, what="catalog file"))
        except ValueError as e:
            raise BadInput(f"{meta_path}: not readable ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise BadInput(f"{meta_path}: not an ovision catalog ({FORMAT})")
        catalog = cls(root, meta)
        if eyes is not None:
            catalog.check_eyes(eyes)
        if dtype is not None and dtype != catalog.dtype:
            raise BadInput(
                f"{root}: stores {catalog.dtype} embeddings; index it as it is, or into a new "
                f"catalog for {dtype}"
            )
        return catalog

    @property
    def dtype(self) -> str:
        return str(self.meta.get("dtype", "float32"))

    def check_eyes(self, eyes: Scorer) -> None:
        if _digest(eyes_identity(eyes)) != self.meta.get("eyes_sha256"):
            made = self.meta.get("eyes", {}).get("describe", {})
            now = eyes.describe()
            raise BadInput(
                f"{self.root}: embedded by {made.get('scorer')} {made.get('model')!r}, not by "
                f"these eyes ({now.get('scorer')} {now.get('model')!r}); a catalog is read only "
                "by the eyes that embedded it: give those with --scorer, or index again"
            )

    def parts(self) -> list[Path]:
        return sorted((self.root / PARTS).glob("part-*.parquet"))

    def append(self, rows: dict) -> Path | None:
        """One part: `rows` as columns (path, size, mtime_ns, sha256, removed, embedding)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        emb = rows["embedding"]
        if "dim" not in self.meta:  # one width for every part: readers see one schema
            first = next((e for e in emb if e is not None), None)
            if first is None:
                return None
            self.meta["dim"] = len(first)
            write_atomic(self.root / META, json.dumps(self.meta, indent=1, default=str) + "\n")
        dim = int(self.meta["dim"])
        missing = np.array([e is None for e in emb])
        values = np.zeros((len(emb), dim), self.dtype)
        for i, e in enumerate(emb):
            if e is not None:
                values[i] = e
        embedding = pa.FixedSizeListArray.from_arrays(
            pa.array(values.ravel()), dim, mask=pa.array(missing)
        )
        table = pa.table(
            {
                "path": pa.array(rows["path"], pa.string()),
                "size": pa.array(rows["size"], pa.int64()),
                "mtime_ns": pa.array(rows["mtime_ns"], pa.int64()),
                "sha256": pa.array(rows["sha256"], pa.string()),
                "removed": pa.array(rows["removed"], pa.bool_()),
                "embedding": embedding,
            }
        )
        parts = self.parts()
        n = int(parts[-1].stem.split("-")[1]) + 1 if parts else 1
        path = self.root / PARTS / f"part-{n:06d}.parquet"
        buf = io.BytesIO()
        # No dictionary: float embeddings and unique paths do not repeat, and dictionary-encoded
        # floats read 2.4 × slower (a 50,000-row part: 0.64 s against 0.26 s).
        pq.write_table(table, buf, use_dictionary=False)
        write_atomic(path, buf.getvalue())
        return path

    def _kept(self, parts: list[Path]) -> list[np.ndarray]:
        """Per part, which of its rows are the catalog now: each path's latest row, unless
        that row marks it removed. Reads only the path and removed columns."""
        import pyarrow.parquet as pq

        owner: dict[str, tuple[int, int]] = {}  # path → (part, row) of its latest row
        removed = []
        for n, p in enumerate(parts):
            t = pq.read_table(p, columns=["path", "removed"], memory_map=True)
            for i, path in enumerate(t.column("path").to_pylist()):
                owner[path] = (n, i)
            removed.append(t.column("removed").to_numpy(zero_copy_only=False))
        keep = [np.zeros(len(r), bool) for r in removed]
        for n, i in owner.values():
            keep[n][i] = not removed[n][i]
        return keep

    def _matrix(self, column) -> np.ndarray:
        """A fixed-size-list embedding column as a float32 matrix (a float16 catalog is scored
        in float32)."""
        values = column.values.to_numpy(zero_copy_only=False).reshape(len(column), self.dim)
        return values.astype(np.float32, copy=False)

    @property
    def dim(self) -> int:
        return int(self.meta.get("dim", 0))

    def chunks(self, rows: int = 8192) -> Iterator[tuple[list[str], np.ndarray]]:
        """(paths, embeddings) of the catalog's images now, `rows` at a time, in storage order.
        The embeddings are streamed (never the whole matrix in memory)."""
        import pyarrow.parquet as pq

        parts = self.parts()
        for p, keep in zip(parts, self._kept(parts), strict=True):
            if not keep.any():
                continue
            at = 0
            f = pq.ParquetFile(p, memory_map=True)
            for batch in f.iter_batches(batch_size=rows, columns=["path", "embedding"]):
                mask = keep[at : at + batch.num_rows]
                at += batch.num_rows
                if not mask.any():
                    continue
                values = self._matrix(batch.column("embedding"))
                paths = batch.column("path").to_pylist()
                if mask.all():
                    yield paths, values
                else:
                    yield [q for q, m in zip(paths, mask, strict=True) if m], values[mask]

    def rows(self) -> Rows:
        """The catalog's images now (as `chunks` has them), in path order, whole."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self.parts()
        if not parts:
            empty = np.zeros(0, np.int64)
            return Rows([], empty, empty, [], np.zeros((0, self.dim), np.float32))
        # Memory-mapped: 100,000 × 384 stored rows read in 0.25 s instead of 0.46 s.
        tables = []
        for p, keep in zip(parts, self._kept(parts), strict=True):
            t = pq.read_table(p, memory_map=True)
            tables.append(t if keep.all() else t.filter(pa.array(keep)))
        t = pa.concat_tables(tables)
        paths = t.column("path").to_pylist()
        order = sorted(range(len(paths)), key=paths.__getitem__)
        values = self._matrix(t.column("embedding").combine_chunks())
        if order != list(range(len(paths))):  # a catalog indexed once is in order: no copy
            at = pa.array(order, pa.int64())
            t, values = t.take(at), values[np.array(order, np.int64)]
        return Rows(
            t.column("path").to_pylist(),
            t.column("size").to_numpy(),
            t.column("mtime_ns").to_numpy(),
            t.column("sha256").to_pylist(),
            values,
        )
