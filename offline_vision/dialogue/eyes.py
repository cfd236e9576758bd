"""The dialogue's eyes: the scorer bound to one image, the shortlist they allow the answer to
come from, and the mapping of a free answer onto a label."""

from __future__ import annotations

import math
from dataclasses import dataclass

from offline_vision.labels.answers import calibrate_threshold, map_answer
from offline_vision.labels.scoring import named_embeddings
from offline_vision.labels.sets import LabelSet, default_templates
from offline_vision.models.scorer import Scorer
from offline_vision.prompts import CHECK

Scores = list[tuple[str, float]]  # (label, probability), highest first


def format_scores(scores: Scores) -> str:
    """Highest first, one a line — the models read sorted lists far better than unsorted."""
    return "\n".join(f"  {label}: {p:.1%}" for label, p in scores)


def flatness(probs: list[float]) -> tuple[float, float]:
    """(normalised entropy, top-2 margin) of one round's probabilities."""
    n = len(probs)
    h = -sum(p * math.log(p) for p in probs if p > 0)
    top = sorted(probs, reverse=True)
    return (h / math.log(n) if n > 1 else 0.0), (top[0] - top[1] if n > 1 else 1.0)


class Eyes:
    """The scorer bound to one image: embedded once, then any candidate list → sorted probs."""

    def __init__(self, scorer: Scorer, image, templates=None, names=None):
        self.scorer, self.names = scorer, names  # names: a bridged label → its English names
        self.embedding = scorer.encode_images([image])
        self.templates = tuple(templates or default_templates("custom", scorer.templates))

    def score(self, candidates: list[str], templates=None) -> Scores:
        tmpl = tuple(templates or self.templates)
        label_emb = named_embeddings(self.scorer, candidates, tmpl, self.names)
        probs = self.scorer.probabilities(self.embedding, label_emb)[0]
        return sorted(zip(candidates, map(float, probs), strict=True), key=lambda x: -x[1])


@dataclass(frozen=True)
class Shortlist:
    """Known labels, adaptive policy: the eyes' scores over the whole label set, and the top
    `size` of them that the answer must come from (all of them at size 0). Empty (`gated`
    False) where the eyes do not go first."""

    gated: bool
    options: Scores  # every label, scored with the set's templates
    shown: Scores  # the shortlist (or every label)
    answers: list[str] | None  # what the final answer may be (None: any label)
    check: str  # the eyes' scores over the shortlist, shown before the final question

    @classmethod
    def of(cls, eyes: Eyes, labels: LabelSet, gated: bool, size: int, show_check: bool):
        if not gated:
            return cls(False, [], [], None, "")
        tmpl = default_templates(labels.name, eyes.scorer.templates)
        options = eyes.score(list(labels.labels), tmpl)
        shown = options[:size] if size else options
        answers = [lab for lab, _ in shown] if size else None
        check = CHECK.format(scores=format_scores(shown)) if show_check else ""
        return cls(True, options, shown, answers, check)

    def renormalised(self) -> Scores:
        """The shortlist with the eyes' probabilities, renormalised over it."""
        total = sum(p for _, p in self.shown) or 1.0
        return [(lab, p / total) for lab, p in self.shown]


_CALIBRATIONS: dict[str, dict] = {}


def _text_embedder(scorer: Scorer):
    """Plain texts → the scorer's text embeddings (through its cache), for answer mapping."""
    return lambda texts: scorer.encode_labels(texts, ("{}",))


def map_calibration(scorer: Scorer) -> dict:
    """The open-answer embedding threshold for this scorer's text embedder (once a process)."""
    key = scorer.text_model_key
    if key not in _CALIBRATIONS:
        _CALIBRATIONS[key] = calibrate_threshold(_text_embedder(scorer))
    return _CALIBRATIONS[key]


def mapped(raw: str, labels: LabelSet, scorer: Scorer) -> dict:
    """An answer as a record: known labels are constrained already; open ones are mapped."""
    if labels.known:
        return {"raw": raw, "label": raw, "rule": "choice"}
    m = map_answer(
        raw,
        list(labels.labels),
        label_set=labels.name,
        embed=_text_embedder(scorer),
        threshold=map_calibration(scorer)["threshold"],
    )
    return {"raw": raw, "label": m.label, "rule": m.rule, "score": m.score}
