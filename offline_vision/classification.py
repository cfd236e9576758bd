"""Zero-shot classification of image files with any scorer, batched, errors kept per image."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from offline_vision.errors import BadInput
from offline_vision.images import load_image
from offline_vision.labels.scoring import FollowUp, LabelScorer
from offline_vision.labels.store import Knowledge
from offline_vision.labels.writers.names import names_of
from offline_vision.models.scorer import Scorer
from offline_vision.progress import bar as progress_bar


def classify_paths(
    eyes: Scorer,
    paths: Sequence[Path],
    labels: Sequence[str],
    templates: Sequence[str],
    *,
    top_k: int = 5,
    batch_size: int = 32,
    knowledge: Knowledge | None = None,
    follow_up: FollowUp | None = None,
    bridge: Knowledge | None = None,
) -> Iterator[dict]:
    """One result dict per path, in order: top-k labels (the user's; with a bridge, each with
    the English names the eyes read it by), or {"error": ...} for a bad file."""
    names = names_of(bridge)
    scorer = LabelScorer(eyes, labels, templates, knowledge, names=names)
    cited = (
        None if knowledge is None else {"strategy": knowledge.strategy, "sha256": knowledge.digest}
    )
    bridged = None if bridge is None else {"strategy": bridge.strategy, "sha256": bridge.digest}
    k = min(top_k, len(labels))
    about = eyes.describe()
    with progress_bar(len(paths), "classifying", unit="img", min_total=batch_size + 1) as bar:
        for start in range(0, len(paths), batch_size):
            batch = paths[start : start + batch_size]
            loaded, results = [], []
            for p in batch:
                try:
                    loaded.append(load_image(p))
                    results.append({"image": str(p)})
                except BadInput as e:
                    results.append({"image": str(p), "error": str(e)})
            if loaded:
                emb = eyes.encode_images(loaded)
                probs = scorer.probabilities(emb)
                scores = probs if eyes.score_kind == "softmax" else scorer.scores(emb)
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
