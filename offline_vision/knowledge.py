"""Label knowledge: texts a reasoner writes once per label set, and how the eyes use them.

- `descriptions` (CuPL; Menon & Vondrick): visual descriptions per label; a label's embedding is
  the mean over its template prompts and its descriptions.
- `subclasses` (CHiLS): kinds of each label; the eyes score every subclass, and a label's score
  is its own probability times its best subclass's (CHiLS's reweighting).
- `waffle` (WaffleCLIP): the control — random word pairs in place of descriptions, the same
  count per label, seeded. A description gain counts only if it beats this.
- differential follow-up (FuDD): where the eyes are unsure, descriptions that tell their top-K
  labels apart, written once per unordered set of labels and cached, re-score only those K.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from offline_vision.errors import BadInput
from offline_vision.files import write_atomic
from offline_vision.models.scorer import l2_normalize
from offline_vision.progress import bar as progress_bar
from offline_vision.prompts import KNOWLEDGE_PROMPTS, KNOWLEDGE_SYSTEM

log = logging.getLogger("ovision")

FORMAT = "ovision-knowledge/1"
PROMPT_VERSION = 1
STRATEGIES = ("descriptions", "subclasses", "waffle")
PER_LABEL = 8

DESCRIPTION_TEMPLATE = "a photo of a {label}, {text}"  # descriptions, waffle and differential
# A label's embedding: (1 − w) · its template mean + w · its description mean. w = 0.25 was the
# best of 0.25 / 0.5 / 0.75 / 1 and of equal weight per prompt on the 632 dev images (default
# 1.5B's descriptions, ConSE eyes); none of them beat the templates alone there.
DESCRIPTION_WEIGHT = 0.25
SUBCLASS_TEMPLATE = "{sub}, a kind of {label}"  # put into each of the label set's templates
_BULLET = re.compile(r"^\s*(?:[-*•·]+|\d+[.):]|[a-z][.)])\s*", re.IGNORECASE)


def label_set_hash(labels: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(labels)).encode()).hexdigest()


def reasoner_identity(reasoner) -> dict:
    """What makes two reasoners write the same texts (paths, threads, URLs left out)."""
    d = reasoner.describe()
    return {k: d[k] for k in ("reasoner", "name", "model", "sha256") if k in d}


def parse_items(text: str, limit: int) -> list[str]:
    """The items of a line-per-item answer: bullets, numbers and quotes stripped."""
    items = []
    for line in text.splitlines():
        # A model that writes prose instead of lines: one item per sentence.
        for part in re.split(r"(?<=[.!?])\s+", line):
            item = _BULLET.sub("", part).strip().strip("\"'`").strip().rstrip(".;,!?")
            if item and not item.endswith(":"):
                items.append(item[:120])
    return items[:limit]


def _names_other_label(text: str, label: str, labels: Sequence[str]) -> bool:
    words = set(re.findall(r"[a-z]+", text.lower()))
    return any(o != label and set(o.lower().split()) <= words for o in labels)


def _example_lines(strategy: str) -> set[str]:
    """The lines of the prompt's own example: a model that copies them has said nothing."""
    return {line.strip().lower() for line in KNOWLEDGE_PROMPTS[strategy].split("\n")[2:]}


def filter_items(
    items: list[str], label: str, labels: Sequence[str], strategy: str, dropped: dict
) -> list[str]:
    """Drops (and counts) empty and duplicate items, copies of the prompt's example, and
    subclasses naming another label."""
    kept, seen, example = [], set(), _example_lines(strategy)
    for item in items:
        key = item.lower()
        if not item.strip():
            dropped["empty"] = dropped.get("empty", 0) + 1
        elif key in example:
            dropped["example_copy"] = dropped.get("example_copy", 0) + 1
        elif key in seen:
            dropped["duplicate"] = dropped.get("duplicate", 0) + 1
        elif strategy == "subclasses" and _names_other_label(item, label, labels):
            dropped["other_label"] = dropped.get("other_label", 0) + 1
        else:
            seen.add(key)
            kept.append(item)
    return kept


@dataclass
class Knowledge:
    """Texts per label, with everything needed to tell how they were made."""

    strategy: str
    labels: list[str]
    texts: dict[str, list[str]] = field(default_factory=dict)
    per_label: int = PER_LABEL
    seed: int = 0
    reasoner: dict | None = None
    prompts: dict = field(default_factory=dict)
    prompt_version: int = PROMPT_VERSION
    dropped: dict = field(default_factory=dict)
    transcripts: dict[str, str] = field(default_factory=dict)
    llm_seconds: float = 0.0
    complete: bool = False
    format: str = FORMAT
    label_set_hash: str = ""

    def __post_init__(self) -> None:
        self.label_set_hash = label_set_hash(self.labels)

    @property
    def digest(self) -> str:
        """sha256 of the texts and their provenance: what records cite."""
        return hashlib.sha256(self.dumps().encode()).hexdigest()

    def dumps(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        write_atomic(path, self.dumps())

    @classmethod
    def load(cls, path: Path) -> Knowledge:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise BadInput(f"{path}: not a readable knowledge file ({e})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise BadInput(f"{path}: not an ovision knowledge file (format {FORMAT})")
        texts = d.get("texts")
        if d.get("strategy") not in STRATEGIES or not isinstance(texts, dict):
            raise BadInput(f"{path}: malformed knowledge file")
        if not all(
            isinstance(v, list) and all(isinstance(t, str) for t in v) for v in texts.values()
        ):
            raise BadInput(f"{path}: texts must be lists of strings")
        known = {f for f in cls.__dataclass_fields__ if f != "label_set_hash"}
        return cls(**{k: v for k, v in d.items() if k in known})


def resolve(
    value: str,
    labels: Sequence[str],
    *,
    cache_dir: Path,
    reasoner_factory,
    per_label: int = PER_LABEL,
    seed: int = 0,
) -> tuple[Knowledge, Path]:
    """`--knowledge FILE|STRATEGY`: a knowledge file, or the cached (else newly written) one."""
    if value in STRATEGIES:
        reasoner = reasoner_factory() if value != "waffle" else None
        k, path, _cached = expand(
            labels, value, reasoner, cache_dir=cache_dir, per_label=per_label, seed=seed
        )
        return k, path
    path = Path(value)
    if not path.is_file():
        raise BadInput(f"--knowledge {value!r}: neither a file nor one of {', '.join(STRATEGIES)}")
    return Knowledge.load(path), path


def cache_path(cache_dir: Path, strategy: str, labels, reasoner, per_label: int, seed: int) -> Path:
    key = json.dumps(
        [
            label_set_hash(labels),
            strategy,
            reasoner_identity(reasoner) if reasoner else None,
            PROMPT_VERSION,
            KNOWLEDGE_PROMPTS.get(strategy),
            per_label,
            seed,
        ],
        sort_keys=True,
    )
    return (
        cache_dir / "knowledge" / f"{strategy}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    )


def _ask(reasoner, prompt: str, seed: int) -> tuple[str, float]:
    messages = [
        {"role": "system", "content": KNOWLEDGE_SYSTEM},
        {"role": "user", "content": prompt},
    ]
    c = reasoner.complete(messages, max_tokens=320, temperature=0.0, seed=seed)
    return c.text, c.latency_s


def expand(
    labels: Sequence[str],
    strategy: str,
    reasoner,
    *,
    cache_dir: Path,
    per_label: int = PER_LABEL,
    seed: int = 0,
) -> tuple[Knowledge, Path, bool]:
    """The label set's knowledge, from the cache or written now (saved after every label, so an
    interrupted expansion resumes). Returns (knowledge, its file, whether it was cached)."""
    if strategy not in STRATEGIES:
        raise BadInput(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    labels = list(labels)
    path = cache_path(cache_dir, strategy, labels, reasoner, per_label, seed)
    if strategy == "waffle":
        k = waffle(labels, per_label=per_label, seed=seed)
        k.save(path)
        return k, path, False
    k = Knowledge.load(path) if path.exists() else None
    if k is not None and k.complete:
        return k, path, True
    if k is None:
        k = Knowledge(
            strategy,
            labels,
            per_label=per_label,
            seed=seed,
            reasoner=reasoner_identity(reasoner),
            prompts={"system": KNOWLEDGE_SYSTEM, "user": KNOWLEDGE_PROMPTS[strategy]},
        )
    todo = [lab for lab in labels if lab not in k.texts]
    with progress_bar(
        len(labels), f"writing {strategy}", unit="label", initial=len(labels) - len(todo)
    ) as bar:
        for label in todo:
            prompt = KNOWLEDGE_PROMPTS[strategy].format(
                labels=", ".join(labels), label=label, n=per_label
            )
            text, seconds = _ask(reasoner, prompt, seed)
            items = filter_items(parse_items(text, per_label), label, labels, strategy, k.dropped)
            k.texts[label], k.transcripts[label] = items, text
            k.llm_seconds += seconds
            k.save(path)
            bar.update(1)
    k.complete = True
    k.save(path)
    return k, path, False


def waffle(labels: Sequence[str], *, per_label: int = PER_LABEL, seed: int = 0) -> Knowledge:
    """WaffleCLIP's control: the same `per_label` random-character word pairs for every label
    (seeded); random characters carry no knowledge of any label."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))

    pairs = [f"which has {word()} {word()}" for _ in range(per_label)]
    k = Knowledge("waffle", list(labels), per_label=per_label, seed=seed, complete=True)
    k.texts = {label: list(pairs) for label in labels}
    k.prompts = {"note": "random character sequences (WaffleCLIP); no reasoner"}
    return k


# --- using knowledge ----------------------------------------------------------------------------


def description_embeddings(
    scorer, texts: dict[str, list[str]], labels, templates, weight: float = DESCRIPTION_WEIGHT
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
    """The eyes' probabilities over `labels`, with label knowledge applied where given."""

    def __init__(self, scorer, labels, templates, knowledge: Knowledge | None = None):
        self.scorer, self.labels, self.templates = scorer, list(labels), tuple(templates)
        self.knowledge = knowledge
        if knowledge is not None and set(knowledge.labels) != set(self.labels):
            raise BadInput("the knowledge file was written for another label set")
        self.plain = scorer.encode_labels(self.labels, self.templates)
        if knowledge is None:
            return
        if knowledge.strategy == "subclasses":
            self.sub_texts, owner = [], []
            for j, label in enumerate(self.labels):
                for sub in [label, *knowledge.texts.get(label, [])]:
                    name = SUBCLASS_TEMPLATE.format(sub=sub, label=label) if sub != label else label
                    self.sub_texts.append(name)
                    owner.append(j)
            self.owner = np.array(owner)
            self.sub_emb = scorer.encode_labels(self.sub_texts, self.templates)
        else:
            self.emb = description_embeddings(scorer, knowledge.texts, self.labels, self.templates)

    def probabilities(self, image_embeddings: np.ndarray) -> np.ndarray:
        if self.knowledge is not None and self.knowledge.strategy != "subclasses":
            return self.scorer.probabilities(image_embeddings, self.emb)
        base = self.scorer.probabilities(image_embeddings, self.plain)
        if self.knowledge is None:
            return base
        sub = self.scorer.probabilities(image_embeddings, self.sub_emb)
        best = np.stack([sub[:, self.owner == j].max(axis=1) for j in range(len(self.labels))], 1)
        score = base * best  # CHiLS's reweighting: the label's own probability × its best kind
        return score / score.sum(axis=1, keepdims=True)


class FollowUp:
    """FuDD: where the top probability is below `threshold`, differential descriptions of the
    top-K labels (written once per unordered set, cached on disk) re-score only those K."""

    def __init__(
        self,
        scorer,
        reasoner,
        *,
        k: int,
        threshold: float,
        cache_dir: Path,
        per_label: int = 4,
        seed: int = 0,
    ):
        if k < 2:
            raise BadInput("--follow-up needs K ≥ 2 labels to tell apart")
        self.scorer, self.reasoner, self.k, self.threshold = scorer, reasoner, k, threshold
        self.per_label, self.seed = per_label, seed
        self.dir = cache_dir / "knowledge" / "differential"
        self.requests = 0  # reasoner calls made (tests and benchmarks read it)
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
        """{label: texts} for this set of labels, and whether they came from the cache."""
        path = self._path(tuple(labels))
        if path.exists():
            try:
                return json.loads(path.read_text(encoding="utf-8"))["texts"], True
            except (OSError, ValueError, KeyError):
                log.warning("%s unreadable; writing it again", path)
        texts, raw, dropped = {}, {}, {}
        for label in sorted(labels):
            others = " or ".join(f"a {o}" for o in sorted(labels) if o != label)
            prompt = KNOWLEDGE_PROMPTS["differential"].format(
                label=label, others=others, n=self.per_label
            )
            raw[label], seconds = _ask(self.reasoner, prompt, self.seed)
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
        write_atomic(path, json.dumps(record, indent=1, ensure_ascii=False))
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
        texts, cached = self.descriptions(classes)
        emb = description_embeddings(self.scorer, texts, classes, ())
        p = self.scorer.probabilities(image_embedding[None], emb)[0]
        return {
            "classes": list(classes),
            "ran": True,
            "cached": cached,
            "probabilities": [round(float(x), 5) for x in p],
            "prediction": classes[int(np.argmax(p))],
        }
