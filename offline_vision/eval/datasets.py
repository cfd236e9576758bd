"""Evaluation datasets, read in place from the data directory (`OVISION_DATA`).

- MNIST IDX files (gzipped or not): `mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`
- image folders `root/<class>/<file>`, with an optional `manifest.csv` (path,label[,index])
- sample files: one item index per line (e.g. `cifar10/cifar10-300.txt`)
"""

from __future__ import annotations

import csv
import gzip
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from offline_vision.errors import DataError
from offline_vision.files import read_text
from offline_vision.images import IMAGE_SUFFIXES, load_image

DATASETS = ("mnist", "cifar10")


@dataclass(frozen=True)
class Item:
    index: int  # the item's index in its dataset (what sample files list)
    label: str
    source: str  # file path, or "<idx file>#<index>"


def _open(path: Path):
    if not path.exists():
        gz = path.with_name(path.name + ".gz")
        if gz.exists():
            path = gz
        else:
            raise DataError(f"missing {path.name}[.gz] in {path.parent}")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """An IDX array (MNIST's format), checked: magic number, dimensions, and length."""
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4:
                raise DataError(f"{path.name}: empty or truncated IDX file")
            magic = struct.unpack(">I", head)[0]
            if magic != expect_magic:
                raise DataError(
                    f"{path.name}: bad IDX magic {magic:#x} (expected {expect_magic:#x})"
                )
            ndim = magic & 0xFF
            dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
            data = f.read()
    except (OSError, EOFError, struct.error) as e:
        raise DataError(f"{path.name}: corrupt IDX file ({e})") from e
    expected = int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{path.name}: header says {expected} bytes of data, file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


class Mnist:
    """MNIST digits as uint8 28×28 arrays, labels '0'–'9'."""

    name = "mnist"
    classes = tuple(str(d) for d in range(10))

    def __init__(self, root: Path, split: str = "test"):
        if not root.is_dir():
            raise DataError(f"MNIST not found: {root} is not a directory (set OVISION_DATA)")
        prefix = "t10k" if split == "test" else "train"
        self.root, self.split = root, split
        self.images = read_idx(root / f"{prefix}-images-idx3-ubyte", 0x803)
        labels = read_idx(root / f"{prefix}-labels-idx1-ubyte", 0x801)
        if len(labels) != len(self.images):
            raise DataError(f"{root}: {len(self.images)} images but {len(labels)} labels")
        if labels.max(initial=0) > 9:
            raise DataError(f"{root}: label {labels.max()} is not a digit")
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def item(self, i: int) -> Item:
        return Item(i, str(int(self.labels[i])), f"{self.split}#{i}")

    def array(self, i: int) -> np.ndarray:
        return self.images[i]

    def image(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i])


class ImageFolder:
    """`root/<class>/<file>` images; `manifest.csv` (path,label[,index]) fixes order and indices."""

    def __init__(self, root: Path, name: str | None = None):
        if not root.is_dir():
            raise DataError(f"dataset not found: {root} is not a directory (set OVISION_DATA)")
        self.root, self.name = root, name or root.name
        manifest = root / "manifest.csv"
        rows: list[tuple[int, str, str]] = []
        if manifest.exists():
            with open(manifest, newline="") as f:
                reader = csv.DictReader(f)
                if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
                    raise DataError(f"{manifest}: needs columns path,label")
                index_col = next((c for c in reader.fieldnames if c.endswith("index")), None)
                for n, row in enumerate(reader):
                    idx = int(row[index_col]) if index_col else n
                    rows.append((idx, row["label"], row["path"]))
        else:
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            rows = [(n, p.parent.name, str(p.relative_to(root))) for n, p in enumerate(files)]
        if not rows:
            raise DataError(f"{root}: no images found")
        self._items = {idx: Item(idx, label, path) for idx, label, path in rows}
        if len(self._items) != len(rows):
            raise DataError(f"{root}: duplicate item indices in manifest")
        self.classes = tuple(sorted({r[1] for r in rows}))

    def __len__(self) -> int:
        return len(self._items)

    @cached_property
    def indices(self) -> list[int]:
        return sorted(self._items)

    def item(self, i: int) -> Item:
        try:
            return self._items[i]
        except KeyError:
            raise DataError(f"{self.name}: no item with index {i}") from None

    def image(self, i: int) -> Image.Image:
        return load_image(self.root / self.item(i).source)


def open_dataset(data_dir: Path, name: str):
    """A named dataset under the data directory: `mnist` (test split) or `cifar10`."""
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist (set OVISION_DATA)")
    if name == "mnist":
        return Mnist(data_dir / "mnist", "test")
    if name == "cifar10":
        return ImageFolder(data_dir / "cifar10", "cifar10")
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def read_sample(data_dir: Path, dataset, spec: str) -> list[int]:
    """A sample file — a path, or a name under the dataset's directory — as item indices."""
    path = Path(spec)
    if not path.exists():
        path = data_dir / dataset.name / (spec if spec.endswith(".txt") else f"{spec}.txt")
    if not path.exists():
        raise DataError(f"sample file {spec!r} not found (looked for {path})")
    out = []
    for n, line in enumerate(read_text(path, what="sample file").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            idx = int(line)
        except ValueError:
            raise DataError(f"{path}:{n}: {line!r} is not an item index") from None
        valid = range(len(dataset)) if isinstance(dataset, Mnist) else dataset.indices
        if idx not in valid:
            raise DataError(f"{path}:{n}: index {idx} is out of range for {dataset.name}")
        if idx in out:  # counted twice, a summary would be wrong
            raise DataError(f"{path}:{n}: index {idx} is listed twice")
        out.append(idx)
    if not out:
        raise DataError(f"{path}: sample file lists no items")
    return out


def select(dataset, *, sample: list[int] | None, limit: int | None, seed: int) -> list[int]:
    """The evaluated indices: a sample file's order, or a seeded random draw; then `limit`."""
    if limit is not None and limit < 1:
        raise DataError("--limit must be at least 1")
    if sample is not None:
        chosen = sample
    else:
        pool = list(range(len(dataset))) if isinstance(dataset, Mnist) else dataset.indices
        order = np.random.default_rng(seed).permutation(len(pool))
        chosen = [pool[i] for i in order]
    return chosen[:limit] if limit else chosen


class Renamed:
    """A dataset whose classes go by other names (`eval … --labels @FILE`): the same items,
    each label replaced by the name in its class's place. Its label set is a custom one."""

    label_set = "custom"

    def __init__(self, dataset, names: tuple[str, ...]):
        self.base, self.name, self.classes = dataset, dataset.name, tuple(names)
        self._to = dict(zip(dataset.classes, names, strict=True))

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, attr):  # indices, image, array: the base dataset's
        return getattr(self.base, attr)

    def item(self, i: int) -> Item:
        it = self.base.item(i)
        return Item(it.index, self._to[it.label], it.source)


def class_names(spec: str, classes: tuple[str, ...]) -> tuple[str, ...]:
    """`--labels` for a dataset: one name per class, in the dataset's class order (a comma list
    or @file with one a line); a wrong count, a duplicate or an empty name is refused."""
    from offline_vision.labels.sets import check_label, read_label_file

    if spec.startswith("@"):
        raw = read_label_file(spec[1:]).split("\n")
        while raw and not raw[-1].strip():
            raw.pop()  # a final newline is not an empty name
    else:
        raw = spec.split(",")
    names = [check_label(r) for r in raw]  # normalised as every label set is
    where = spec if len(spec) < 60 else spec[:57] + "…"
    if "" in names:
        raise DataError(f"--labels {where}: name {names.index('') + 1} is empty")
    if len(names) != len(classes):
        raise DataError(
            f"--labels {where}: {len(names)} names for {len(classes)} classes "
            f"(one per class, in the order {', '.join(classes[:4])}, …)"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"--labels {where}: {dupes[0]!r} names two classes")
    return tuple(names)
