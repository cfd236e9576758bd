"""ConSE (Norouzi et al., 2014): a zero-shot image–text scorer from an ImageNet classifier and a
sentence embedder. A stand-in for CLIP where no CLIP weights can be had; much weaker than CLIP.

image embedding = normalise(Σ over the top-T ImageNet classes of p_i · text(class_i))
label logit     = 20 · cosine(image embedding, text("a photo of a <label>"))
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cached_property

import numpy as np
from PIL import Image
from tokenizers import Tokenizer

from offline_vision.models.preprocess import Preprocess
from offline_vision.models.provision.store import Bundle
from offline_vision.models.scorer import (
    BundleScorer,
    TextCache,
    l2_normalize,
    softmax,
    text_model_key,
)
from offline_vision.prompts import BASE_TEMPLATE

TOP_T = 10
LOGIT_SCALE = 20.0
TEXT_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
TEMPLATE = BASE_TEMPLATE
# EfficientNet-Lite was trained with TensorFlow-style scaling (x − 127) / 128, not ImageNet
# mean/std (which costs 6–8 points here); written as mean/std on the 0–1 scale.
IMAGE_PREPROCESS = Preprocess(
    shortest_edge=260, crop=(260, 260), mean=(127 / 255,) * 3, std=(128 / 255,) * 3
)


class MiniLMTokenizer:
    """The sentence embedder's WordPiece `tokenizer.json`; batches padded to their longest."""

    def __init__(self, tokenizer_json: str):
        self.tok = Tokenizer.from_str(tokenizer_json)
        self.tok.enable_truncation(max_length=TEXT_MAX_TOKENS)
        self.tok.enable_padding(pad_id=0)  # [PAD]; to the batch's longest, on the right

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        encs = self.tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        return ids, mask, np.zeros_like(ids)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, then L2 normalisation (as sentence-transformers does)."""
    m = mask[..., None].astype(np.float32)
    return l2_normalize((hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9))


class ConseScorer(BundleScorer):
    kind = "conse"
    standin = True
    templates = (TEMPLATE,)  # its class texts were built in this one

    def __init__(
        self,
        bundle: Bundle,
        *,
        device: str = "auto",
        threads: int = 1,
        cache: TextCache | None = None,
        spin: bool = False,
    ):
        m = bundle.manifest
        self.top_t = int(m.get("top_t", TOP_T))
        super().__init__(
            bundle,
            device=device,
            threads=threads,
            spin=spin,
            text_model_key=text_model_key(
                scorer="conse",
                text_model=bundle.sha256("text_model.onnx"),
                tokenizer=bundle.sha256("tokenizer.json"),
            ),
            logit_scale=m.get("logit_scale", LOGIT_SCALE),
            cache=cache,
        )

    @cached_property
    def class_embeddings(self) -> np.ndarray:
        data = self.bundle.read("class_text_embeddings.npy")
        return np.load(io.BytesIO(data), allow_pickle=False)

    @cached_property
    def image_session(self):
        return self._session("image_model.onnx")

    @cached_property
    def text_session(self):
        return self._session("text_model.onnx")

    @cached_property
    def tokenizer(self) -> MiniLMTokenizer:
        return MiniLMTokenizer(self.bundle.read("tokenizer.json").decode("utf-8"))

    def describe(self) -> dict:
        return {
            "scorer": "conse",
            "model": self.bundle.name,
            "standin": True,
            "note": "ConSE stand-in (EfficientNet-Lite2 + MiniLM), weaker than CLIP; not CLIP",
            "top_t": self.top_t,
            "sha256": {
                "image": self.bundle.sha256("image_model.onnx"),
                "text": self.bundle.sha256("text_model.onnx"),
            },
        }

    def imagenet_probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        logits = self.image_session.run(None, {"pixel_values": IMAGE_PREPROCESS(images)})[0]
        return softmax(logits.astype(np.float64))

    def _embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._from_probabilities(self.imagenet_probabilities(images))

    def encode_with_features(
        self, images: Sequence[Image.Image]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The embeddings and the log ImageNet probabilities they are made from: examples read
        through the latter did far better (labels.adapters.FEATURES), one pass of the tower."""
        if not images:
            return self.encode_images(images), None
        emb, features = [], []
        for i in range(0, len(images), self.batch_size):
            p = self.imagenet_probabilities(images[i : i + self.batch_size])
            emb.append(self._from_probabilities(p))
            features.append(np.log(p + 1e-8).astype(np.float32))
        self.images_encoded += len(images)
        return np.concatenate(emb), np.concatenate(features)

    def _from_probabilities(self, p: np.ndarray) -> np.ndarray:
        top = np.argsort(-p, axis=1)[:, : self.top_t]
        weights = np.take_along_axis(p, top, axis=1)
        emb = np.einsum("nt,ntd->nd", weights, self.class_embeddings[top])
        return l2_normalize(emb).astype(np.float32)

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        ids, mask, types = self.tokenizer(texts)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.text_session.run(None, feed)[0]
        return mean_pool(hidden, mask).astype(np.float32)
