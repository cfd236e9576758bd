"""Example images per label (`--examples SOURCE`): read, hashed and embedded once per content.

SOURCE is a folder with one sub-folder per label (`shots/花柄/*.jpg`) or a CSV with columns
`path,label` (paths relative to the CSV). Each example's embedding is cached by the sha256 of
its file and the eyes that embedded it, so a second run (or another label set sharing the
examples) embeds nothing. An example for a label not in the set, a label folder with no image, or
an unreadable image is one clear error.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from offline_vision.errors import BadInput
from offline_vision.files import write_atomic
from offline_vision.images import IMAGE_SUFFIXES, load_image
from offline_vision.models.scorer import Scorer
from offline_vision.options import Options, option

EMBED_BATCH = 32
CACHE_VERSION = 2  # 2: each example's richer features cached beside its embedding


@dataclass(frozen=True)
class Examples:
    """Labelled example images as a plan carries them: (label, sha256) per example — what the
    plan's digest covers — and their embeddings by these eyes (not in the digest or JSON)."""

    source: str
    refs: tuple[tuple[str, str], ...]
    embeddings: np.ndarray = field(compare=False, repr=False)
    origins: tuple[str, ...] = field(default=(), compare=False)  # each one's file or item
    features: np.ndarray | None = field(default=None, compare=False, repr=False)  # richer

    def label_ids(self, labels: Sequence[str]) -> np.ndarray:
        at = {lab: i for i, lab in enumerate(labels)}
        return np.array([at[lab] for lab, _sha in self.refs], dtype=int)

    def counts(self) -> dict[str, int]:
        return dict(Counter(lab for lab, _sha in self.refs))

    def cited(self) -> dict:
        """What a run's config and a tag file say of the examples: enough to tell them apart."""
        body = json.dumps(self.refs, ensure_ascii=False).encode()
        return {
            "source": self.source,
            "n": len(self.refs),
            "per_label": self.counts(),
            "sha256": hashlib.sha256(body).hexdigest(),
            "files": [[*r, o] for r, o in zip(self.refs, self.origins, strict=True)],
        }


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def read_source(source: str | Path, labels: Sequence[str]) -> list[tuple[Path, str]]:
    """(image path, label) for each example under `source`, checked against `labels`."""
    root = Path(source)
    known = {_nfc(lab): lab for lab in labels}
    if root.is_dir():
        pairs = []
        folders = sorted(p for p in root.iterdir() if p.is_dir())
        if not folders:
            raise BadInput(f"--examples {source}: no label folders in it (shots/LABEL/*.jpg)")
        for folder in folders:
            label = known.get(_nfc(folder.name))
            if label is None:
                raise BadInput(f"--examples {folder}: {folder.name!r} is not one of the labels")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise BadInput(f"--examples {folder}: no images in it")
            pairs += [(p, label) for p in files]
        return pairs
    if root.is_file() and root.suffix.lower() == ".csv":
        return _read_csv(root, known)
    raise BadInput(f"--examples {source}: neither a folder of label folders nor a .csv path,label")


def _read_csv(path: Path, known: dict[str, str]) -> list[tuple[Path, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"--examples {path}: cannot be read ({e})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
        raise BadInput(f"--examples {path}: needs the columns path,label")
    pairs = []
    for n, row in enumerate(reader, 2):
        label = known.get(_nfc(row["label"] or ""))
        if label is None:
            raise BadInput(f"--examples {path}:{n}: {row['label']!r} is not one of the labels")
        pairs.append((path.parent / (row["path"] or "").strip(), label))
    if not pairs:
        raise BadInput(f"--examples {path}: lists no examples")
    return pairs


def eyes_key(eyes: Scorer) -> str:
    """What makes two embeddings of one image the same: the eyes' description."""
    body = json.dumps(eyes.describe(), sort_keys=True, default=str).encode()
    return hashlib.sha256(body).hexdigest()[:16]


Item = tuple[str, str, str, Callable[[], Image.Image]]  # label, sha256, origin, loader


def encode(eyes: Scorer, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings, and the richer features where the eyes have them
    (`Scorer.encode_with_features`: None where they have none)."""
    return eyes.encode_with_features(images)


def embed(
    items: Sequence[Item],
    eyes: Scorer,
    cache_dir: Path,
    source: str,
    known: Mapping[str, np.ndarray] | None = None,
) -> Examples:
    """Examples from (label, sha256 of the content, origin, loader) items: each embedding from
    `known` (a catalog's, by sha256: no features), the cache
    (`cache_dir/examples/<eyes>-2/<sha256>.npy` and `.features.npy`, no pickle) or embedded now
    and cached. The examples have features where every one has them."""
    folder = cache_dir / "examples" / f"{eyes_key(eyes)}-{CACHE_VERSION}"
    rows: dict[str, np.ndarray] = {}
    feats: dict[str, np.ndarray | None] = {}
    todo = []
    for _label, sha, _origin, load in items:
        if sha in rows:
            continue
        if known is not None and sha in known:
            rows[sha], feats[sha] = np.asarray(known[sha], dtype=np.float32), None
            continue
        try:
            rows[sha] = np.load(folder / f"{sha}.npy", allow_pickle=False)
            f = folder / f"{sha}.features.npy"
            feats[sha] = np.load(f, allow_pickle=False) if f.exists() else None
        except (OSError, ValueError):
            todo.append((sha, load))
    for start in range(0, len(todo), EMBED_BATCH):
        batch = todo[start : start + EMBED_BATCH]
        emb, features = encode(eyes, [load() for _sha, load in batch])
        folder.mkdir(parents=True, exist_ok=True)
        for n, (sha, _load) in enumerate(batch):
            rows[sha] = emb[n].astype(np.float32)
            _save(folder / f"{sha}.npy", rows[sha])
            feats[sha] = None
            if features is not None:
                feats[sha] = features[n].astype(np.float32)
                _save(folder / f"{sha}.features.npy", features[n].astype(np.float32))
    refs = tuple((label, sha) for label, sha, _origin, _load in items)
    matrix = np.stack([rows[sha] for _label, sha in refs]).astype(np.float32)
    got = [feats[sha] for _label, sha in refs]
    features = None if any(f is None for f in got) else np.stack(got).astype(np.float32)  # type: ignore[arg-type]
    origins = tuple(origin for _l, _s, origin, _load in items)
    return Examples(source, refs, matrix, origins, features)


def _save(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_atomic(path, buf.getvalue())


def _file_sha256(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise BadInput(f"--examples {path}: cannot be read ({e.strerror or e})") from None


def load(
    source: str | Path,
    labels: Sequence[str],
    eyes: Scorer,
    cache_dir: Path,
    known: Mapping[str, np.ndarray] | None = None,
) -> Examples:
    """The examples under `source` for `labels`, embedded by `eyes` (cached by content; taken
    from `known` embeddings by sha256 where given)."""
    items: list[Item] = [
        (label, _file_sha256(path), str(path), partial(load_image, path))  # bad: one line
        for path, label in read_source(source, labels)
    ]
    return embed(items, eyes, cache_dir, str(source), known)


def draw(dataset, pool: Sequence[int], k: int, seed: int) -> list[int]:
    """`k` items of each of the dataset's classes from `pool`, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {c: [] for c in dataset.classes}
    for i in sorted(pool):
        by_class.setdefault(dataset.item(i).label, []).append(i)
    out = []
    for label, items in by_class.items():
        if len(items) < k:
            raise BadInput(f"--shots {k}: the pool has {len(items)} images of {label!r}")
        out += sorted(int(i) for i in rng.choice(items, k, replace=False))
    return out


def from_dataset(dataset, indices: Sequence[int], eyes: Scorer, cache_dir: Path, source: str):
    """Examples from a dataset's items (`eval --shots`), hashed by their image files (or
    pixels) and labelled by the dataset."""
    items: list[Item] = []
    for i in indices:
        item = dataset.item(i)
        path = Path(item.source)
        if path.is_file():
            sha = _file_sha256(path)
        else:
            sha = hashlib.sha256(np.asarray(dataset.image(i)).tobytes()).hexdigest()
        items.append((item.label, sha, f"{dataset.name}#{i}", partial(dataset.image, i)))
    return embed(items, eyes, cache_dir, source)


@dataclass(frozen=True)
class ExampleOptions(Options):
    """Labelled example images that teach the eyes (`--examples`), or drawn from the evaluated
    dataset (`eval clip --shots`)."""

    examples: str | None = option(
        None,
        "A few example images per label, training-free: a folder of label folders "
        "(shots/LABEL/*.jpg) or a CSV path,label. Embedded once (cached by content); labels "
        "without examples stay zero-shot.",
        metavar="DIR|CSV",
    )
    shots: int | None = option(
        None,
        "Draw this many examples per class from the dataset, disjoint from the evaluated items.",
        lo=1,
        hi=1000,
        kind=int,
    )
    shots_from: str | None = option(
        None,
        "Draw --shots from this sample file (default: every item not evaluated).",
        metavar="SAMPLE",
    )
