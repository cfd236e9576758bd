"""Label knowledge: texts a reasoner writes once per label set (`label_scoring` applies them).

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

import jsonschema

from offline_vision.errors import BadInput
from offline_vision.files import read_text, write_atomic
from offline_vision.models.reasoners.base import Reasoner
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


_STRINGS = {"type": "array", "items": {"type": "string"}}
KNOWLEDGE_SCHEMA = {
    "type": "object",
    "required": ["format", "strategy", "labels", "texts"],
    "properties": {
        "format": {"const": FORMAT},
        "strategy": {"enum": [*STRATEGIES, "names"]},
        "labels": _STRINGS,
        "texts": {"type": "object", "additionalProperties": _STRINGS},
        "transcripts": {"type": "object", "additionalProperties": {"type": "string"}},
        "per_label": {"type": "integer"},
        "seed": {"type": "integer"},
        "llm_seconds": {"type": "number"},
        "complete": {"type": "boolean"},
        "reasoner": {"type": ["object", "null"]},
        "dropped": {"type": "object"},
        "prompts": {"type": "object"},
        "conflicts": {"type": "array", "items": {"type": "object"}},
        "choices": {"type": "object"},
    },
}


def seal(record: dict) -> str:
    """`record` as JSON carrying the sha256 of its own content (a cache file)."""
    body = json.dumps(record, sort_keys=True, ensure_ascii=False)
    sealed = {**record, "sha256": hashlib.sha256(body.encode()).hexdigest()}
    return json.dumps(sealed, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def unsealed(path: Path) -> dict | None:
    """A cache file's record, or None (said once) where it is unreadable or its content is
    not what its digest says: a cache miss, written again."""
    try:
        d = json.loads(read_text(path, what="cache file"))
        rest = {k: v for k, v in d.items() if k != "sha256"}
        body = json.dumps(rest, sort_keys=True, ensure_ascii=False)
        if d.get("sha256") == hashlib.sha256(body.encode()).hexdigest():
            return rest
        if "sha256" not in d:
            return None  # written before caches were sealed: a quiet miss
    except (BadInput, ValueError, AttributeError):
        pass
    log.warning("%s: damaged or altered cache file; writing it again", path)
    return None


def label_set_hash(labels: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(labels)).encode()).hexdigest()


def reasoner_identity(reasoner: Reasoner) -> dict:
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
    conflicts: list[dict] = field(default_factory=list)  # the bridge's name clashes (bridge.py)
    choices: dict[str, dict] = field(default_factory=dict)  # the bridge's picks between answers
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
        write_atomic(path, seal(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Knowledge:
        try:
            d = json.loads(read_text(Path(path), what="knowledge file"))
        except ValueError as e:
            raise BadInput(f"{path}: not a readable knowledge file ({e})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise BadInput(f"{path}: not an ovision knowledge file (format {FORMAT})")
        return cls.from_dict(d, path)

    @classmethod
    def from_dict(cls, d: dict, path: Path) -> Knowledge:
        try:
            jsonschema.validate(d, KNOWLEDGE_SCHEMA)
        except jsonschema.ValidationError as e:
            where = "/".join(map(str, e.absolute_path)) or "the file"
            raise BadInput(f"{path}: malformed knowledge file ({where}: {e.message})") from None
        known = {f for f in cls.__dataclass_fields__ if f != "label_set_hash"}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def begin(cls, path: Path, strategy: str, labels, reasoner: Reasoner, **fields) -> Knowledge:
        """The cache file at `path` (complete, or an interrupted one to resume), else a new,
        empty Knowledge for `reasoner` to fill."""
        k = cls.cached(path)
        if k is None:
            ident = reasoner_identity(reasoner) if reasoner else None
            k = cls(strategy, list(labels), reasoner=ident, **fields)
        return k

    @classmethod
    def cached(cls, path: Path) -> Knowledge | None:
        """The cache file at `path` if it is there, intact and valid; else None (a miss)."""
        if not path.exists():
            return None
        d = unsealed(path)
        try:
            return None if d is None else cls.from_dict(d, path)
        except BadInput as e:
            log.warning("%s; writing it again", e)
            return None


def cache_path(
    cache_dir: Path,
    strategy: str,
    labels,
    reasoner: Reasoner,
    per_label: int,
    seed: int,
    prompt=None,
) -> Path:
    key = json.dumps(
        [
            label_set_hash(labels),
            strategy,
            reasoner_identity(reasoner) if reasoner else None,
            PROMPT_VERSION,
            prompt or KNOWLEDGE_PROMPTS.get(strategy),
            per_label,
            seed,
        ],
        sort_keys=True,
    )
    return (
        cache_dir / "knowledge" / f"{strategy}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    )


def ask_lines(reasoner: Reasoner, prompt: str, seed: int) -> tuple[str, float]:
    messages = [
        {"role": "system", "content": KNOWLEDGE_SYSTEM},
        {"role": "user", "content": prompt},
    ]
    c = reasoner.complete(messages, max_tokens=320, temperature=0.0, seed=seed)
    return c.text, c.latency_s


def expand(
    labels: Sequence[str],
    strategy: str,
    reasoner: Reasoner,
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
    prompts = {"system": KNOWLEDGE_SYSTEM, "user": KNOWLEDGE_PROMPTS[strategy]}
    k = Knowledge.begin(
        path, strategy, labels, reasoner, per_label=per_label, seed=seed, prompts=prompts
    )
    if k.complete:
        return k, path, True
    todo = [lab for lab in labels if lab not in k.texts]
    with progress_bar(
        len(labels), f"writing {strategy}", unit="label", initial=len(labels) - len(todo)
    ) as bar:
        for label in todo:
            prompt = KNOWLEDGE_PROMPTS[strategy].format(
                labels=", ".join(labels), label=label, n=per_label
            )
            text, seconds = ask_lines(reasoner, prompt, seed)
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
