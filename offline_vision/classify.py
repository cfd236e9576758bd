"""Zero-shot classification of image files with any scorer, batched, errors kept per image."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from offline_vision.errors import BadInput
from offline_vision.images import load_image
from offline_vision.models.scorer import EmbeddingScorer
from offline_vision.progress import bar as progress_bar


def classify_paths(
    eyes: EmbeddingScorer,
    paths: Sequence[Path],
    labels: Sequence[str],
    templates: Sequence[str],
    *,
    top_k: int = 5,
    batch_size: int = 32,
) -> Iterator[dict]:
    """One result dict per path, in order: top-k labels, or {"error": ...} for a bad file."""
    label_emb = eyes.encode_labels(labels, templates)
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
                probs = eyes.probabilities(eyes.encode_images(loaded), label_emb)
                ok = (r for r in results if "error" not in r)
                for r, row in zip(ok, probs, strict=True):
                    top = np.argsort(-row)[:k]
                    r["labels"] = [
                        {"label": labels[i], "probability": round(float(row[i]), 6)} for i in top
                    ]
                    r["scorer"] = about
            yield from results
            bar.update(len(batch))


class ScorerTask:
    """`eval clip` (Trial 1): the scorer alone over the dataset's class names."""

    name = "clip"

    def __init__(self, dataset, scorer, templates=None):
        self.dataset, self.scorer = dataset, scorer
        self.labels = list(dataset.classes)
        self.templates = tuple(templates or scorer.default_templates(dataset.name))
        self._label_emb = None

    def config(self) -> dict:
        return {
            "task": "clip",
            "dataset": self.dataset.name,
            "labels": self.labels,
            "templates": list(self.templates),
            "scorer": self.scorer.describe(),
        }

    def resume(self, records: list[dict]) -> None:
        pass

    def __call__(self, index: int) -> dict:
        if self._label_emb is None:
            self._label_emb = self.scorer.encode_labels(self.labels, self.templates)
        item = self.dataset.item(index)
        probs = self.scorer.probabilities(
            self.scorer.encode_images([self.dataset.image(index)]), self._label_emb
        )[0]
        order = np.argsort(-probs)
        return {
            "truth": item.label,
            "prediction": self.labels[order[0]],
            "top": [[self.labels[i], round(float(probs[i]), 5)] for i in order[:5]],
        }
