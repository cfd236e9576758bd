"""CLIP on ONNX Runtime: numpy/Pillow preprocessing, `tokenizers` BPE, two tower sessions."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import cache, cached_property

import numpy as np
from PIL import Image
from tokenizers import Tokenizer

from offline_vision.config import PRECISIONS
from offline_vision.errors import BadInput, BadModel
from offline_vision.models.preprocess import Preprocess
from offline_vision.models.provision.store import Bundle
from offline_vision.models.scorer import (
    BundleScorer,
    TextCache,
    l2_normalize,
    sigmoid,
    text_model_key,
)

log = logging.getLogger("ovision")


@cache
def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) byte → printable-character table behind its byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


class ClipTokenizer:
    """The checkpoint's own `tokenizer.json`, truncated to the context length, padded on the
    right: to the batch's longest (CLIP), or to the full context length with `max_length`
    (SigLIP, trained so: its text embedding is read from the last position)."""

    def __init__(
        self,
        tokenizer_json: str,
        context_length: int = 77,
        pad_id: int | None = None,
        *,
        max_length: bool = False,
    ):
        self.tok = Tokenizer.from_str(tokenizer_json)
        self.context_length = context_length
        if pad_id is None:
            pad_id = self.tok.token_to_id("<|endoftext|>") or 0
        self.pad_id = pad_id
        self.tok.enable_truncation(max_length=context_length)
        self.tok.enable_padding(pad_id=pad_id, length=context_length if max_length else None)

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encs = self.tok.encode_batch(list(texts))
        for text, enc in zip(texts, encs, strict=True):
            if enc.overflowing:
                log.warning(
                    "label prompt %r is over %d tokens; truncated", text[:60], self.context_length
                )
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        return ids, np.array([e.attention_mask for e in encs], dtype=np.int64)


def _output_index(sess, preferred: str) -> int:
    names = [o.name for o in sess.get_outputs()]
    if preferred in names:
        return names.index(preferred)
    for i, o in enumerate(sess.get_outputs()):
        if len(o.shape) == 2:
            return i
    raise BadModel(f"ONNX graph has no {preferred} output (outputs: {', '.join(names)})")


class ClipScorer(BundleScorer):
    kind = "clip"
    standin = False

    def __init__(
        self,
        bundle: Bundle,
        *,
        precision: str = "auto",
        device: str = "auto",
        threads: int = 1,
        cache: TextCache | None = None,
        spin: bool = False,
    ):
        if precision not in PRECISIONS:
            raise BadInput(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        onnx = bundle.manifest["onnx"]
        if precision == "auto":
            precision = "fp32" if "fp32" in onnx else "int8"
        if precision not in onnx:
            raise BadInput(f"{bundle.name} has no {precision} export (it has: {', '.join(onnx)})")
        self.precision, self.files = precision, onnx[precision]
        m = bundle.manifest
        super().__init__(
            bundle,
            device=device,
            threads=threads,
            spin=spin,
            text_model_key=text_model_key(
                scorer=self.kind,
                text_model=bundle.sha256(self.files["text"]),
                tokenizer=bundle.sha256("tokenizer.json"),
                text=m.get("text", {}),
            ),
            logit_scale=m["logit_scale"],
            cache=cache,
        )
        self.preprocess = Preprocess.from_config(
            json.loads(bundle.read("preprocessor_config.json"))
        )
        text = m.get("text", {})
        self.context_length, self.pad_id = text.get("context_length", 77), text.get("pad_id")
        self.max_length = text.get("padding") == "max_length"

    @cached_property
    def vision(self):
        sess = self._session(self.files["vision"])
        return sess, sess.get_inputs()[0].name, _output_index(sess, "image_embeds")

    @cached_property
    def text(self):
        sess = self._session(self.files["text"])
        inputs = {i.name for i in sess.get_inputs()}
        return sess, inputs, _output_index(sess, "text_embeds")

    @cached_property
    def tokenizer(self) -> ClipTokenizer:
        return ClipTokenizer(
            self.bundle.read("tokenizer.json").decode("utf-8"),
            self.context_length,
            self.pad_id,
            max_length=self.max_length,
        )

    def describe(self) -> dict:
        return {
            "scorer": self.kind,
            "score": self.score_kind,
            "model": self.bundle.name,
            "precision": self.precision,
            "source": self.bundle.manifest.get("source", {}),
            "sha256": {k: self.bundle.sha256(v) for k, v in self.files.items()},
            "standin": False,
        }

    def _embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        sess, name, out = self.vision
        x = self.preprocess(images)
        return l2_normalize(sess.run(None, {name: x})[out]).astype(np.float32)

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        sess, inputs, out = self.text
        ids, mask = self.tokenizer(texts)
        feed = {"input_ids": ids}
        if "attention_mask" in inputs:
            feed["attention_mask"] = mask
        return l2_normalize(sess.run(None, feed)[out]).astype(np.float32)


class SiglipScorer(ClipScorer):
    """SigLIP: each label scored on its own, sigmoid(logit_scale · cosine + logit_bias), text
    padded to the full context length (the bundle's manifest says so; export/siglip.py)."""

    kind = "siglip"
    score_kind = "sigmoid"

    def __init__(self, bundle: Bundle, **kwargs):
        super().__init__(bundle, **kwargs)
        self.logit_bias = float(bundle.manifest["logit_bias"])

    def scores(self, image_embeddings: np.ndarray, label_embeddings: np.ndarray) -> np.ndarray:
        return sigmoid(self.logit_scale * image_embeddings @ label_embeddings.T + self.logit_bias)
