"""`ovision tag` and `ovision search`: a catalog's stored embeddings scored against label sets
(each resolved into a plan, as `classify` resolves it) or against a text or an image. Tagging
never decodes an image; it scores the stored embeddings a chunk at a time."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import numpy as np

from offline_vision.catalog.store import Catalog
from offline_vision.errors import BadInput
from offline_vision.labels.plan import LabelPlan
from offline_vision.labels.scoring import LabelScorer
from offline_vision.models.scorer import Scorer

CHUNK = 8192  # stored embeddings scored at once
# A multi-label group tags an image with its top label and every label the image is unusually
# close to for this catalog: z = (cosine − the label's mean cosine over the catalog) / its
# standard deviation ≥ MULTI_Z. 1.25 was the best of 0.5 / 0.75 / 1 / 1.25 / 1.5 / 2 on the 632
# dev images (ConSE; mean macro-F1 over CIFAR-10's classes as yes/no tags and a 7-attribute
# group; 1.0 within 0.001), ahead of a fixed probability, a share of the top one and a
# two-Gaussian mixture per label: benchmarks/accuracy/multi_label.py.
MULTI_Z = 1.25
SIGMOID_YES = 0.5  # SigLIP's own per-label probability: yes at one half


class Tagger:
    """A catalog's tags under several label groups: single-label groups give their top k,
    multi-label ones (`multi`) every label past its threshold (`rules`), calibrated on the
    catalog in one streamed pass first where the eyes have no per-label sigmoid."""

    def __init__(
        self,
        catalog: Catalog,
        groups: dict[str, LabelPlan],
        eyes: Scorer,
        *,
        multi: Collection[str] = (),
    ):
        unknown = set(multi) - set(groups)
        if unknown:
            raise BadInput(
                f"multi-label group {sorted(unknown)[0]!r} is not one of {', '.join(groups)}"
            )
        self.catalog, self.groups, self.multi = catalog, groups, set(multi)
        # Stored embeddings only: examples are read through them, not the eyes' richer features.
        self.scorers = {g: LabelScorer(eyes, plan, features=False) for g, plan in groups.items()}
        self.sigmoid = eyes.score_kind == "sigmoid"
        self.stats = {} if self.sigmoid else self._calibrate()

    def _calibrate(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each multi-label group's per-label mean and standard deviation of the cosine over
        the catalog, streamed (float64 sums)."""
        if not self.multi:
            return {}
        n, sums = 0, {g: 0.0 for g in self.multi}
        squares = dict(sums)
        for _paths, emb in self.catalog.chunks(CHUNK):
            n += len(emb)
            for g in self.multi:
                sim = self.scorers[g].similarities(emb).astype(np.float64)
                sums[g] = sums[g] + sim.sum(0)
                squares[g] = squares[g] + (sim**2).sum(0)
        stats = {}
        for g in self.multi:
            mean = np.asarray(sums[g]) / max(n, 1)
            std = np.sqrt(np.maximum(np.asarray(squares[g]) / max(n, 1) - mean**2, 0.0))
            stats[g] = (mean, std)
        return stats

    @property
    def rules(self) -> dict[str, dict]:
        """How each multi-label group decides, with the calibration: what a tag file records."""
        out: dict[str, dict] = {}
        for g in sorted(self.multi):
            if self.sigmoid:
                out[g] = {"rule": f"sigmoid >= {SIGMOID_YES} or top"}
                continue
            mean, std = self.stats[g]
            labels = self.groups[g].labels
            out[g] = {
                "rule": f"z >= {MULTI_Z} or top (z: cosine against this catalog's mean, in SDs)",
                "mean": dict(zip(labels, np.round(mean, 6).tolist(), strict=True)),
                "std": dict(zip(labels, np.round(std, 6).tolist(), strict=True)),
            }
        return out

    def _yes(self, g: str, emb: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Which labels a multi-label group gives each image: past the threshold, or the top."""
        top = scores == scores.max(axis=1, keepdims=True)
        if self.sigmoid:
            return top | (scores >= SIGMOID_YES)
        mean, std = self.stats[g]
        z = (self.scorers[g].similarities(emb) - mean) / np.where(std > 0, std, np.inf)
        return top | (z >= MULTI_Z)

    def rows(self, top_k: int = 1) -> Iterator[dict]:
        """Per image: for each group, its label(s) with the eyes' score — for a single-label
        group the top k, the same numbers `classify` gives. Streamed a chunk at a time."""
        for chunk_paths, emb in self.catalog.chunks(CHUNK):
            tops = {}
            for g, s in self.scorers.items():  # each chunk's top k at once, not image by image
                scores = s.scores(emb)
                labels = self.groups[g].labels
                if g in self.multi:
                    tops[g] = _chosen(scores, self._yes(g, emb, scores), labels)
                    continue
                order, best = _top(scores, top_k)
                tops[g] = [
                    [{"label": labels[i], "score": v} for i, v in zip(row_i, row_v, strict=True)]
                    for row_i, row_v in zip(order, best, strict=True)
                ]
            names = list(tops)
            for path, *cells in zip(chunk_paths, *tops.values(), strict=True):
                row = {"image": path}
                row.update(zip(names, cells, strict=True))
                yield row


def tag(
    catalog: Catalog,
    groups: dict[str, LabelPlan],
    eyes: Scorer,
    *,
    top_k: int = 1,
    multi: Collection[str] = (),
) -> Iterator[dict]:
    """Per image: for each group, its top label(s) with the eyes' score (every label past its
    threshold for the `multi` groups). Streamed: a chunk of stored embeddings at a time."""
    return Tagger(catalog, groups, eyes, multi=multi).rows(top_k)


def _chosen(scores: np.ndarray, yes: np.ndarray, labels) -> list[list[dict]]:
    """Each row's chosen labels, best score first (6 decimals): one sort for the chunk and
    only as many columns as the row with most labels, not numpy calls per row."""
    counts = yes.sum(axis=1)
    most = int(counts.max()) if len(counts) else 0
    order = np.argsort(-np.where(yes, scores, -np.inf), axis=1, kind="stable")[:, :most]
    best = np.round(np.take_along_axis(scores, order, axis=1), 6)
    return [
        [{"label": labels[i], "score": v} for i, v in zip(o[:c], b[:c], strict=True)]
        for o, b, c in zip(order.tolist(), best.tolist(), counts.tolist(), strict=True)
    ]


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
