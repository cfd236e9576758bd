"""Zero-shot classification of images with any scorer, batched, errors kept per image."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from offline_vision.errors import BadInput
from offline_vision.images import load_image, to_rgb
from offline_vision.labels.examples import encode
from offline_vision.labels.plan import LabelPlan
from offline_vision.labels.scoring import FollowUp, LabelScorer
from offline_vision.models.scorer import Scorer
from offline_vision.progress import bar as progress_bar

ImageSource = str | Path | Image.Image | np.ndarray


def classify_images(
    eyes: Scorer,
    images: Sequence[ImageSource],
    plan: LabelPlan,
    *,
    top_k: int = 5,
    batch_size: int = 32,
    follow_up: FollowUp | None = None,
) -> Iterator[dict]:
    """One result dict per image, in order: top-k labels (the user's; where the plan bridges
    them, each with the names the eyes read it by), or {"error": ...} for a bad one. An image
    is a file path, a PIL image or an HxW / HxWx3 uint8 array."""
    scorer = LabelScorer(eyes, plan)
    names, labels = plan.names, list(plan.labels)
    cited = None if plan.knowledge is None else plan.knowledge.cited()
    bridged = None if plan.bridge is None else plan.bridge.cited()
    k = min(top_k, len(labels))
    about = eyes.describe()
    with progress_bar(len(images), "classifying", unit="img", min_total=batch_size + 1) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            loaded: list[Image.Image] = []
            results: list[dict[str, Any]] = []
            for n, source in enumerate(batch, start):
                shown = str(source) if isinstance(source, str | Path) else f"<image {n}>"
                try:
                    loaded.append(_decoded(source))
                    results.append({"image": shown})
                except BadInput as e:
                    results.append({"image": shown, "error": str(e)})
            if loaded:
                emb, feats = (
                    encode(eyes, loaded)
                    if scorer.uses_features
                    else (eyes.encode_images(loaded), None)
                )
                probs = scorer.probabilities(emb, feats)
                scores = probs if eyes.score_kind == "softmax" else scorer.scores(emb, feats)
                ok = (r for r in results if "error" not in r)
                for n, (r, row, said) in enumerate(zip(ok, probs, scores, strict=True)):
                    r["labels"] = _ranked(labels, row, said, eyes.score_kind, k)
                    r["score"] = eyes.score_kind
                    if names:
                        for item in r["labels"]:
                            item["names"] = names[item["label"]]
                        r["bridge"] = bridged
                    r["scorer"] = about
                    if cited is not None:
                        r["knowledge"] = cited
                    if follow_up is not None:
                        r["follow_up"] = follow_up(emb[n], row, labels)
            yield from results
            bar.update(len(batch))


def _decoded(source: ImageSource) -> Image.Image:
    """A path, a PIL image or a uint8 array → an RGB image (a bad one: BadInput)."""
    if isinstance(source, Image.Image):
        return to_rgb(source)
    if isinstance(source, np.ndarray):
        if (
            source.dtype != np.uint8
            or source.ndim not in (2, 3)
            or (source.ndim == 3 and source.shape[2] not in (3, 4))
        ):
            raise BadInput(
                f"an image array must be uint8, HxW or HxWx3 (or x4); got {source.dtype} "
                f"{'x'.join(map(str, source.shape))}"
            )
        return to_rgb(Image.fromarray(source))
    if isinstance(source, str | Path):
        return load_image(source)
    raise BadInput(f"not an image: {type(source).__name__} (a path, a PIL image or an array)")


def _ranked(labels, probs: np.ndarray, scores: np.ndarray, kind: str, k: int) -> list[dict]:
    """The top k labels by the eyes' own scores, each with its softmax probability and, where
    the eyes score each label on its own (SigLIP), its sigmoid `score`."""
    out = []
    for i in np.argsort(-scores)[:k]:
        item = {"label": labels[i], "probability": round(float(probs[i]), 6)}
        if kind != "softmax":
            item["score"] = round(float(scores[i]), 6)
        out.append(item)
    return out
