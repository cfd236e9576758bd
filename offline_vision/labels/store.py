"""The one store for what a reasoner writes about labels: sealed, resumable cache files.

Every text a reasoner writes about a label set (the bridge's names, descriptions, subclasses,
the waffle control) is a `Knowledge` record, saved after every request under one cache key
(`cache_path`), sealed with the sha256 of its content (`seal`/`unsealed`): an altered or
damaged file is a miss, written again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jsonschema

from offline_vision.errors import BadInput
from offline_vision.files import read_text, write_atomic
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.prompts import KNOWLEDGE_PROMPTS

log = logging.getLogger("ovision")

FORMAT = "ovision-knowledge/1"
PROMPT_VERSION = 1
PER_LABEL = 8
KINDS = (
    "descriptions",
    "subclasses",
    "waffle",
    "names",
    "candidates",
)  # what a knowledge file holds

_STRINGS = {"type": "array", "items": {"type": "string"}}
KNOWLEDGE_SCHEMA = {
    "type": "object",
    "required": ["format", "strategy", "labels", "texts"],
    "properties": {
        "format": {"const": FORMAT},
        "strategy": {"enum": list(KINDS)},
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
        "domain": {"type": "string"},
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
    domain: str = ""  # what the labels are, given or inferred (the bridge's dictionary senses)
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
    def begin(
        cls, path: Path, strategy: str, labels, reasoner: Reasoner | None, **fields
    ) -> Knowledge:
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
    reasoner: Reasoner | None,
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
