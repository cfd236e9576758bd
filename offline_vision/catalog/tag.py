"""`ovision tag` and `ovision search`: a catalog's stored embeddings scored against label sets
(each resolved into a plan, as `classify` resolves it) or against a text or an image. Tagging
never decodes an image; it scores the stored embeddings a chunk at a time."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from offline_vision.catalog.store import Catalog
from offline_vision.labels.plan import LabelPlan
from offline_vision.labels.scoring import LabelScorer
from offline_vision.models.scorer import Scorer

CHUNK = 8192  # stored embeddings scored at once


def tag(
    catalog: Catalog, groups: dict[str, LabelPlan], eyes: Scorer, *, top_k: int = 1
) -> Iterator[dict]:
    """Per image: for each group, its top label(s) with the eyes' score — the same numbers
    `classify` gives for that image and label set. Streamed: a chunk of stored embeddings at a
    time."""
    # Stored embeddings only: examples are read through them, not the eyes' richer features.
    scorers = {g: LabelScorer(eyes, plan, features=False) for g, plan in groups.items()}
    for chunk_paths, emb in catalog.chunks(CHUNK):
        tops = {}
        for g, s in scorers.items():  # each chunk's top k at once, not image by image
            order, best = _top(s.scores(emb), top_k)
            labels = groups[g].labels
            tops[g] = [
                [{"label": labels[i], "score": v} for i, v in zip(row_i, row_v, strict=True)]
                for row_i, row_v in zip(order, best, strict=True)
            ]
        names = list(tops)
        for path, *cells in zip(chunk_paths, *tops.values(), strict=True):
            row = {"image": path}
            row.update(zip(names, cells, strict=True))
            yield row


def _top(scores: np.ndarray, k: int) -> tuple[list[list[int]], list[list[float]]]:
    """Each row's k best columns, best first, and their scores (6 decimals): a partial sort."""
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(k), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.take_along_axis(part, np.argsort(-vals, axis=1, kind="stable"), axis=1)
    best = np.round(np.take_along_axis(scores, order, axis=1), 6)
    return order.tolist(), best.tolist()


def stored(catalog: Catalog) -> dict[str, np.ndarray]:
    """The catalog's embeddings by their files' sha256: examples it holds are not embedded
    again."""
    rows = catalog.rows()
    return dict(zip(rows.sha256, rows.embeddings, strict=True))


def search(
    catalog: Catalog, eyes: Scorer, *, text: str | None = None, like=None, top: int = 10
) -> list[dict]:
    """The `top` images nearest a text (in the eyes' caption template) or an image, by cosine:
    exact, over the stored embeddings a chunk at a time."""
    if text is not None:
        query = eyes.encode_labels([text], ("{}",))[0]
    else:
        query = eyes.encode_images([like])[0]
    paths: list[str] = []
    sims = np.zeros(0, np.float32)
    for chunk_paths, emb in catalog.chunks(CHUNK):
        paths, sims = paths + chunk_paths, np.concatenate([sims, emb @ query])
        if len(sims) > top:  # keep the best `top` so far
            keep = np.argpartition(-sims, top - 1)[:top]
            paths, sims = [paths[i] for i in keep], sims[keep]
    best = np.argsort(-sims, kind="stable")
    return [{"image": paths[i], "score": round(float(sims[i]), 6)} for i in best]
