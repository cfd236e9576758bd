"""How the eyes use label knowledge and bridged names: a label's embedding from its names,
templates and descriptions (CuPL), CHiLS's subclass reweighting, and FuDD's follow-up.

Where a label set is bridged (`labels.writers.names`), `names` maps each user label to the English names
the eyes read it by; everything returned still names the user's labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from offline_vision.files import write_atomic
from offline_vision.labels.adapters import Adapter, choose
from offline_vision.labels.plan import KnowledgeOptions, LabelPlan, ReasonerFactory
from offline_vision.labels.store import PROMPT_VERSION, reasoner_identity, seal, unsealed
from offline_vision.labels.writers.texts import ask_lines, filter_items, parse_items
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.models.scorer import Scorer, l2_normalize
from offline_vision.prompts import KNOWLEDGE_PROMPTS

log = logging.getLogger("ovision")

DESCRIPTION_TEMPLATE = "a photo of a {label}, {text}"  # descriptions, waffle and differential
# A label's embedding: (1 − w) · its template mean + w · its description mean. w = 0.25 was the
# best of 0.25 / 0.5 / 0.75 / 1 and of equal weight per prompt on the 632 dev images (default
# 1.5B's descriptions, ConSE eyes); none of them beat the templates alone there.
DESCRIPTION_WEIGHT = 0.25
SUBCLASS_TEMPLATE = "{sub}, a kind of {label}"  # put into each of the label set's templates


def first_names(labels, names: dict[str, list[str]] | None) -> list[str]:
    """Each label's first English name (itself where it has none): what knowledge of a bridged
    set is written about."""
    return [(names or {}).get(label, [label])[0] for label in labels]


def named_embeddings(scorer: Scorer, labels, templates, names: dict[str, list[str]] | None = None):
    """One embedding per label: the mean over its names (itself where it has none) of the
    template-mean embedding."""
    if not names:
        return scorer.encode_labels(list(labels), tuple(templates))
    texts = [names.get(label) or [label] for label in labels]
    flat = scorer.encode_labels([t for group in texts for t in group], tuple(templates))
    rows, at = [], 0
    for group in texts:
        rows.append(flat[at : at + len(group)].mean(axis=0))
        at += len(group)
    return l2_normalize(np.stack(rows)).astype(np.float32)


def description_embeddings(
    scorer: Scorer,
    texts: dict[str, list[str]],
    labels,
    templates,
    weight: float = DESCRIPTION_WEIGHT,
) -> np.ndarray:
    """Per label: the template mean and the description mean, mixed by `weight`. Without
    templates (the follow-up) or without descriptions, the one that is there."""
    rows = []
    for label in labels:
        described = [DESCRIPTION_TEMPLATE.format(label=label, text=t) for t in texts.get(label, [])]
        parts = []
        if templates:
            parts.append((1 - weight, scorer.encode_labels([label], templates)[0]))
        if described:
            parts.append((weight, l2_normalize(scorer.encode_labels(described, ("{}",)).mean(0))))
        if not parts:
            parts.append((1.0, scorer.encode_labels([label], ("{}",))[0]))
        rows.append(sum(w * v for w, v in parts) / sum(w for w, _ in parts))
    return l2_normalize(np.stack(rows)).astype(np.float32)


class LabelScorer:
    """The eyes' probabilities over a plan's labels: each read by its names in the plan's
    templates, with the texts a reasoner wrote mixed in where the plan has them, and the
    plan's example images blended in (`labels.adapters`) where it has some."""

    def __init__(self, scorer: Scorer, plan: LabelPlan, *, features: bool = True):
        """`features`: examples read through the eyes' richer image features where they have
        them (then `probabilities` needs each image's); False for stored embeddings alone."""
        self.scorer, self.labels, self.templates = scorer, list(plan.labels), plan.templates
        self.knowledge = knowledge = plan.knowledge
        self.plain = named_embeddings(scorer, self.labels, self.templates, plan.names)
        if knowledge is not None:
            self._knowledge(plan)
        self.adapter: Adapter | None = None
        self.uses_features = False
        if plan.examples is not None:
            ex = plan.examples
            x = ex.features if features and ex.features is not None else ex.embeddings
            self.uses_features = x is not ex.embeddings
            zero_shot = self._zero_shot(ex.embeddings)
            self.adapter = choose(x, ex.label_ids(self.labels), zero_shot)
            _announce_adapter(self.adapter, ex.counts(), len(self.labels), self.uses_features)

    def _knowledge(self, plan: LabelPlan) -> None:
        knowledge, scorer = plan.knowledge, self.scorer
        assert knowledge is not None
        eye = plan.read_as
        if knowledge.strategy == "subclasses":
            self.sub_texts, owner = [], []
            for j, label in enumerate(eye):
                for sub in [label, *knowledge.texts.get(label, [])]:
                    name = SUBCLASS_TEMPLATE.format(sub=sub, label=label) if sub != label else label
                    self.sub_texts.append(name)
                    owner.append(j)
            self.owner = np.array(owner)
            self.sub_emb = scorer.encode_labels(self.sub_texts, self.templates)
        else:
            self.emb = description_embeddings(scorer, knowledge.texts, eye, self.templates)

    def _zero_shot(self, image_embeddings: np.ndarray) -> np.ndarray:
        score = self._combined(self.scorer.probabilities, image_embeddings)
        return score / score.sum(axis=1, keepdims=True)

    def probabilities(
        self, image_embeddings: np.ndarray, features: np.ndarray | None = None
    ) -> np.ndarray:
        """Softmax probabilities over the labels (with the examples' where the plan has some;
        `features`: the images' own, where the examples are read through them)."""
        zero_shot = self._zero_shot(image_embeddings)
        if self.adapter is None:
            return zero_shot
        if self.uses_features:
            if features is None:
                raise ValueError("these examples are read through image features: pass them")
            return self.adapter.probabilities(features, zero_shot)
        return self.adapter.probabilities(image_embeddings, zero_shot)

    def scores(
        self, image_embeddings: np.ndarray, features: np.ndarray | None = None
    ) -> np.ndarray:
        """Each label's score as the eyes give it (`scorer.score_kind`): the probabilities, or
        SigLIP's per-label sigmoids (CHiLS: the label's own × its best kind's, not renormalised).
        Taught by examples, the probabilities."""
        if self.scorer.score_kind == "softmax" or self.adapter is not None:
            return self.probabilities(image_embeddings, features)
        return self._combined(self.scorer.scores, image_embeddings)

    def similarities(self, image_embeddings: np.ndarray) -> np.ndarray:
        """Each image's cosine to each label's embedding (its names, templates and written
        descriptions): what a multi-label threshold is calibrated on (`catalog.tag`)."""
        described = self.knowledge is not None and self.knowledge.strategy != "subclasses"
        return image_embeddings @ (self.emb if described else self.plain).T

    def _combined(self, score, image_embeddings: np.ndarray) -> np.ndarray:
        if self.knowledge is not None and self.knowledge.strategy != "subclasses":
            return score(image_embeddings, self.emb)
        base = score(image_embeddings, self.plain)
        if self.knowledge is None:
            return base
        sub = score(image_embeddings, self.sub_emb)
        best = np.stack([sub[:, self.owner == j].max(axis=1) for j in range(len(self.labels))], 1)
        return base * best  # CHiLS's reweighting: the label's own probability × its best kind


def _announce_adapter(
    adapter: Adapter, counts: dict[str, int], n_labels: int, features: bool
) -> None:
    cv = adapter.cv
    shots = sum(counts.values())
    on = " on the eyes' image features" if features else ""
    how = (
        f"{adapter.method}{on} blended with zero-shot (α {adapter.alpha:g})"
        if adapter.expert is not None
        else "zero-shot kept: they did not show that a blend helps"
    )
    log.info(
        "examples: %d images for %d of %d labels; %s — cross-validated on them, %.0f %% against "
        "zero-shot's %.0f %%",
        shots,
        len(counts),
        n_labels,
        how,
        100 * cv["best"],
        100 * cv["zero_shot"],
    )


class FollowUp:
    """FuDD: where the top probability is below `threshold`, differential descriptions of the
    top-K labels (written once per unordered set, cached on disk) re-score only those K."""

    def __init__(
        self,
        scorer: Scorer,
        reasoner: Reasoner,
        *,
        k: int,
        threshold: float,
        cache_dir: Path,
        per_label: int = 4,
        seed: int = 0,
        names: dict[str, list[str]] | None = None,
    ):
        self.scorer, self.reasoner, self.k, self.threshold = scorer, reasoner, k, threshold
        self.per_label, self.seed = per_label, seed
        self.names = names or {}  # a bridged set: descriptions are written about English names
        self.dir = cache_dir / "knowledge" / "differential"
        self.requests = 0  # reasoner calls made (tests and benchmarks read it)
        self._guard = threading.Lock()
        self._locks: dict[Path, threading.Lock] = {}  # one lock per set of labels
        self.llm_seconds = 0.0

    def config(self) -> dict:
        return {
            "k": self.k,
            "threshold": self.threshold,
            "per_label": self.per_label,
            "prompt": KNOWLEDGE_PROMPTS["differential"],
            "prompt_version": PROMPT_VERSION,
            "reasoner": reasoner_identity(self.reasoner),
        }

    def _path(self, labels: tuple[str, ...]) -> Path:
        key = json.dumps(
            [
                sorted(labels),
                reasoner_identity(self.reasoner),
                PROMPT_VERSION,
                KNOWLEDGE_PROMPTS["differential"],
                self.per_label,
                self.seed,
            ],
            sort_keys=True,
        )
        return self.dir / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"

    def descriptions(self, labels: Sequence[str]) -> tuple[dict[str, list[str]], bool]:
        """{label: texts} for this set of labels, and whether they came from the cache. One
        writer per set at a time: concurrent items wait for it instead of writing it again."""
        path = self._path(tuple(labels))
        with self._guard:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            return self._descriptions(labels, path)

    def _descriptions(self, labels: Sequence[str], path: Path) -> tuple[dict, bool]:
        d = unsealed(path) if path.exists() else None
        if d is not None:
            cached = d.get("texts")
            if (
                isinstance(cached, dict)
                and set(cached) == set(labels)
                and all(
                    isinstance(v, list) and all(isinstance(t, str) for t in v)
                    for v in cached.values()
                )
            ):
                return cached, True
            log.warning("%s: not a differential cache for %s; writing it again", path, labels)
        texts: dict[str, list[str]] = {}
        raw: dict[str, str] = {}
        dropped: dict[str, int] = {}
        for label in sorted(labels):
            others = " or ".join(f"a {o}" for o in sorted(labels) if o != label)
            prompt = KNOWLEDGE_PROMPTS["differential"].format(
                label=label, others=others, n=self.per_label
            )
            raw[label], seconds = ask_lines(self.reasoner, prompt, self.seed)
            self.requests += 1
            self.llm_seconds += seconds
            texts[label] = filter_items(
                parse_items(raw[label], self.per_label), label, labels, "differential", dropped
            )
        record = {
            "labels": sorted(labels),
            "texts": texts,
            "transcripts": raw,
            "config": self.config(),
        }
        write_atomic(path, seal(record))
        return texts, False

    def __call__(self, image_embedding: np.ndarray, probs: np.ndarray, labels) -> dict:
        """The follow-up record for one image; `prediction` is set where it ran."""
        order = np.argsort(-probs)
        top = [labels[i] for i in order[: self.k]]
        if probs[order[0]] >= self.threshold:
            return {"classes": top, "ran": False}
        return self.rescore(image_embedding, top)

    def rescore(self, image_embedding: np.ndarray, classes: list[str]) -> dict:
        """Differential descriptions of `classes` (cached per set) re-score only them."""
        eye = first_names(classes, self.names)
        texts, cached = self.descriptions(eye)
        emb = description_embeddings(self.scorer, texts, eye, ())
        p = self.scorer.probabilities(image_embedding[None], emb)[0]
        return {
            "classes": list(classes),
            "ran": True,
            "cached": cached,
            "probabilities": [round(float(x), 5) for x in p],
            "prediction": classes[int(np.argmax(p))],
        }


def follow_up(
    plan: LabelPlan,
    eyes: Scorer,
    options: KnowledgeOptions,
    reasoner: ReasonerFactory,
    cache_dir: Path,
) -> FollowUp | None:
    """FuDD's follow-up where `--follow-up K` asks for it, about the plan's read-as names."""
    if not options.follow_up:
        return None
    return FollowUp(
        eyes,
        reasoner(),
        k=options.follow_up,
        threshold=options.follow_up_threshold,
        cache_dir=cache_dir,
        names=plan.names,
    )
