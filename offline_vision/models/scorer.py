"""The `Scorer` interface (eyes: image + text labels → probabilities) and its shared machinery."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from offline_vision.progress import bar as progress_bar

if TYPE_CHECKING:
    from offline_vision.models.provision.store import Bundle

log = logging.getLogger("ovision")


@runtime_checkable
class Scorer(Protocol):
    """Embed images once; score any list of text labels → softmax probabilities, and (SigLIP)
    each label's own score."""

    kind: str  # "clip", "siglip" or "conse"
    standin: bool  # True for a scorer that is not CLIP and must never be reported as CLIP
    text_model_key: str  # what the text embeddings depend on: the key of cached knowledge
    logit_scale: float  # logits = logit_scale · cosine
    score_kind: str  # what `scores` gives: "softmax" (probabilities) or "sigmoid" (SigLIP's)

    # The eyes' own prompt templates, where they were built for some (ConSE's one); None: a label
    # set's published ones (labels.sets.default_templates decides).
    templates: tuple[str, ...] | None

    def describe(self) -> dict: ...

    def knows_word(self, word: str) -> bool | None:
        """Whether the text tower learnt `word` whole (its tokenizer holds it as one token);
        None where these eyes cannot tell. What the bridge asks to decide what it must name."""
        ...

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def encode_with_features(
        self, images: Sequence[Image.Image]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """`encode_images`'s embeddings, and richer per-image features for the example-based
        adapters where these eyes have them (ConSE: the image tower's log ImageNet
        probabilities, before the text projection); None where they do not."""
        ...

    def encode_labels(
        self, labels: Sequence[str], templates: Sequence[str] = ("{}",)
    ) -> np.ndarray: ...

    def probabilities(
        self, image_embeddings: np.ndarray, label_embeddings: np.ndarray
    ) -> np.ndarray: ...

    def scores(self, image_embeddings: np.ndarray, label_embeddings: np.ndarray) -> np.ndarray:
        """What the eyes were trained to say of each label; rank by these."""
        ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # no overflow warning for large |x|


def cosine_probabilities(
    image_embeddings: np.ndarray, label_embeddings: np.ndarray, logit_scale: float
) -> np.ndarray:
    """Softmax over labels of logit_scale × cosine (unit embeddings): CLIP's and ConSE's."""
    return softmax(logit_scale * image_embeddings @ label_embeddings.T)


CACHE_FORMAT = 2  # bump when what a key means or how vectors are stored changes


def text_model_key(**parts: object) -> str:
    """The cache key of a text embedder: a digest of everything that changes an embedding
    (text model sha256, tokenizer sha256, context length, padding…), with the cache format."""
    canon = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return f"v{CACHE_FORMAT}:" + hashlib.sha256(canon.encode()).hexdigest()


class TextCache:
    """Text embeddings on disk, keyed by (text_model_key, template, label). SQLite, no pickle.

    A cache written in another format is dropped, not read. A cache file that is damaged,
    locked or cannot be written is said once and replaced by one in memory: the run goes on."""

    def __init__(self, path: Path | None):
        self.path = path
        # One connection shared by the threads of a concurrent evaluation, used under a lock.
        self.lock = threading.Lock()
        self.db = self._open(path)

    def _open(self, path: Path | None) -> sqlite3.Connection:
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                return _connect(str(path))
            except (OSError, sqlite3.Error) as e:
                log.warning("embedding cache %s unusable (%s); caching in memory only", path, e)
        return _connect(":memory:")

    def _bypass(self, e: sqlite3.Error) -> None:
        """The file failed mid-run (locked, damaged, read-only): memory from here on."""
        log.warning("embedding cache %s unusable (%s); caching in memory only", self.path, e)
        self.path, self.db = None, _connect(":memory:")

    def get_many(
        self, model: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], np.ndarray]:
        with self.lock:
            try:
                return self._get_many(model, keys)
            except sqlite3.Error as e:
                self._bypass(e)
                return {}

    def _get_many(
        self, model: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], np.ndarray]:
        found: dict[tuple[str, str], np.ndarray] = {}
        by_template: dict[str, list[str]] = {}
        for template, label in keys:
            by_template.setdefault(template, []).append(label)
        for template, labels in by_template.items():
            for i in range(0, len(labels), 500):
                chunk = labels[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.db.execute(
                    f"SELECT label, vec FROM emb WHERE model=? AND template=? AND label IN ({marks})",
                    (model, template, *chunk),
                )
                for label, vec in rows:
                    found[(template, label)] = np.frombuffer(vec, dtype=np.float32)
        return found

    def put_many(self, model: str, items: dict[tuple[str, str], np.ndarray]) -> None:
        rows = [(model, t, lab, v.astype(np.float32).tobytes()) for (t, lab), v in items.items()]
        with self.lock:
            try:
                with self.db:
                    self.db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?)", rows)
            except sqlite3.Error as e:
                self._bypass(e)


def _connect(target: str) -> sqlite3.Connection:
    """A cache connection, its tables made (dropped first where another format wrote them)."""
    db = sqlite3.connect(target, timeout=5, check_same_thread=False)
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None or row[0] != str(CACHE_FORMAT):
            db.execute("DROP TABLE IF EXISTS emb")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (str(CACHE_FORMAT),))
        db.execute(
            "CREATE TABLE IF NOT EXISTS emb (model TEXT, template TEXT, label TEXT, vec BLOB,"
            " PRIMARY KEY (model, template, label))"
        )
    return db


class EmbeddingScorer(ABC):
    """Images and texts embedded into one space; logits = logit_scale · cosine."""

    kind = "abstract"
    standin = False
    score_kind = "softmax"
    templates: tuple[str, ...] | None = None
    batch_size = 32
    text_batch_size = 64

    def __init__(self, *, text_model_key: str, logit_scale: float, cache: TextCache | None):
        self.text_model_key = text_model_key
        self.logit_scale = float(logit_scale)
        self.cache = cache or TextCache(None)
        self.images_encoded = 0  # counters: tests and benchmarks read them
        self.texts_encoded = 0

    @abstractmethod
    def _embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """One batch → L2-normalised embeddings."""

    @abstractmethod
    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """One batch → L2-normalised embeddings."""

    @abstractmethod
    def describe(self) -> dict: ...

    def knows_word(self, word: str) -> bool | None:
        return None  # no tokenizer to ask: only the script of a label tells

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = [
            self._embed_images(images[i : i + self.batch_size])
            for i in range(0, len(images), self.batch_size)
        ]
        self.images_encoded += len(images)
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def encode_with_features(
        self, images: Sequence[Image.Image]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return self.encode_images(images), None

    def encode_labels(
        self, labels: Sequence[str], templates: Sequence[str] = ("{}",)
    ) -> np.ndarray:
        """One embedding per label: the normalised mean over templates (CLIP's ensembling)."""
        keys = [(t, label) for label in labels for t in templates]
        have = self.cache.get_many(self.text_model_key, keys)
        missing = [k for k in dict.fromkeys(keys) if k not in have]
        if missing:
            if len(missing) >= 500 and not sys.stderr.isatty():  # no terminal for the bar
                log.info("encoding %d label prompts (cached as they are done)", len(missing))
            with progress_bar(
                len(missing), "encoding label prompts", unit="prompt", min_total=500
            ) as bar:
                for i in range(0, len(missing), self.text_batch_size):
                    batch = missing[i : i + self.text_batch_size]
                    vecs = self._embed_texts([t.format(label) for t, label in batch])
                    new = dict(zip(batch, vecs, strict=True))
                    self.cache.put_many(self.text_model_key, new)  # a kill keeps what is done
                    have.update(new)
                    self.texts_encoded += len(batch)
                    bar.update(len(batch))
        stacked = np.stack([have[k] for k in keys]).reshape(len(labels), len(templates), -1)
        return l2_normalize(stacked.mean(axis=1)).astype(np.float32)

    def probabilities(
        self, image_embeddings: np.ndarray, label_embeddings: np.ndarray
    ) -> np.ndarray:
        return cosine_probabilities(image_embeddings, label_embeddings, self.logit_scale)

    def scores(self, image_embeddings: np.ndarray, label_embeddings: np.ndarray) -> np.ndarray:
        return self.probabilities(image_embeddings, label_embeddings)


class BundleScorer(EmbeddingScorer):
    """An EmbeddingScorer whose towers are ONNX files of an installed model bundle, all run
    with the same device, thread count and spinning (see runtime.session)."""

    def __init__(
        self,
        bundle: Bundle,
        *,
        device: str,
        threads: int,
        spin: bool,
        text_model_key: str,
        logit_scale: float,
        cache: TextCache | None,
    ) -> None:
        super().__init__(text_model_key=text_model_key, logit_scale=logit_scale, cache=cache)
        self.bundle, self.device, self.threads, self.spin = bundle, device, threads, spin

    tokenizer: Any  # the text tower's own tokenizer (each subclass loads it)

    def knows_word(self, word: str) -> bool:
        """Whether the text tower's own tokenizer holds `word` as one token: a word split into
        pieces is one the text tower never learnt as a word (bridge.unreadable reads this)."""
        return len(self.tokenizer.tok.encode(word, add_special_tokens=False).ids) == 1

    def _session(self, rel: str):
        """A session on the bundle's file `rel`, checked against its sha256 first."""
        from offline_vision.models import runtime

        return runtime.session(
            self.bundle.verified_path(rel), device=self.device, threads=self.threads, spin=self.spin
        )
