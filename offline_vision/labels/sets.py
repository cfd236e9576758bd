"""Label sets and prompt templates (data, not code): built-in sets, comma lists, @files."""

from __future__ import annotations

import json
import logging
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from offline_vision.errors import BadInput
from offline_vision.files import is_control, read_text, shown
from offline_vision.prompts import SINGLE_TEMPLATE

log = logging.getLogger("ovision")

CIFAR10 = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@cache
def _data(name: str) -> str:
    return resources.files("offline_vision").joinpath("data", name).read_text(encoding="utf-8")


@cache
def templates() -> dict[str, tuple[str, ...]]:
    """Named template ensembles: `cifar10` (CLIP's 18), `imagenet` (open_clip's 7 simple)."""
    raw = json.loads(_data("templates.json"))
    named = {k: tuple(v) for k, v in raw.items() if not k.startswith("_")}
    named["single"] = (SINGLE_TEMPLATE,)
    return named


def builtin_sets() -> dict[str, tuple[str, ...]]:
    imagenet = tuple(line for line in _data("imagenet_classes.txt").splitlines() if line)
    return {"imagenet": imagenet, "cifar10": CIFAR10}


@dataclass(frozen=True)
class LabelSet:
    name: str  # a built-in set's name, or "custom"
    labels: tuple[str, ...]
    known: bool = True  # the dialogue: the LLM is told the labels (False: it names the object)
    # A bridged set: each label → the everyday English names the eyes read it by (bridge.py).
    names: Mapping[str, Sequence[str]] | None = field(default=None, compare=False)

    @property
    def default_templates(self) -> tuple[str, ...]:
        """CLIP's published ensemble for the built-in sets; one plain template otherwise."""
        return templates().get(self.name, (SINGLE_TEMPLATE,))


def default_templates(label_set_name: str, own: tuple[str, ...] | None) -> tuple[str, ...]:
    """The templates a label set is read in: the eyes' `own` where they have them (ConSE's
    one), else the set's published ensemble (CLIP's for the built-in sets), else one plain."""
    return own or LabelSet(label_set_name, ()).default_templates


def _dedupe(labels: list[str]) -> tuple[str, ...]:
    """The labels, each once; one given twice (as written, or once composed and once
    decomposed: NFC makes them one) is refused in one line — which of the two did the user
    mean to tag with?"""
    seen: dict[str, None] = {}
    for label in labels:
        if label in seen:
            raise BadInput(f"label {shown(label)!r} is given twice; each label once")
        seen[label] = None
    return tuple(seen)


def read_label_file(name: str) -> str:
    """A label file's text (files.read_text: a regular file, UTF-8, no control characters)."""
    return read_text(Path(name), what="label file")


# Invisible characters that make two labels look alike or reorder a printed line: bidi
# embeddings, overrides, isolates and marks, zero-width spaces and joiners, word joiners.
_INVISIBLE = frozenset(
    [*"\u061c\u200b\u200c\u200d\u200e\u200f\u2060\ufeff", *map(chr, range(0x202A, 0x202F)),
     *map(chr, range(0x2066, 0x206A))]
)  # fmt: skip


def check_label(label: str) -> str:
    """A label as every entry point takes it: NFC (a composed é and e + ◌́ are one label), a
    byte-order mark or carriage return dropped; a control character (a newline would forge an
    output line) or an invisible bidi or zero-width character refused in one line."""
    label = unicodedata.normalize("NFC", label.replace("\ufeff", "", 1).replace("\r", "")).strip()
    if any(is_control(ch) for ch in label):
        raise BadInput(f"label {shown(label)!r} holds a control character")
    hidden = sorted({f"U+{ord(ch):04X}" for ch in label if ch in _INVISIBLE})
    if hidden:
        raise BadInput(
            f"label {label.encode('ascii', 'backslashreplace').decode()!r} holds invisible "
            f"characters ({', '.join(hidden)}) that make labels look alike; remove them"
        )
    return label


def parse_labels(spec: str) -> LabelSet:
    """`imagenet` | `cifar10` | `a,b,c` | `@file.txt` (one label a line) → a LabelSet."""
    spec = spec.strip()
    sets = builtin_sets()
    if spec in sets:
        return LabelSet(spec, sets[spec])
    if spec.startswith("@"):
        raw = [line.strip() for line in read_label_file(spec[1:]).splitlines()]
    else:
        raw = [part.strip() for part in spec.split(",")]
    labels = [x for x in (check_label(label) for label in raw if label) if x]
    if not labels:
        raise BadInput(
            f"empty label list {spec!r}: give a built-in set ({', '.join(sets)}), "
            "a comma list or @file.txt"
        )
    return LabelSet("custom", _dedupe(labels))


def parse_list(labels: Sequence[str]) -> LabelSet:
    """A list of labels (the Python API) → a custom LabelSet, checked as `parse_labels` does."""
    checked = [x for x in (check_label(str(label)) for label in labels) if x]
    if not checked:
        raise BadInput("empty label list")
    return LabelSet("custom", _dedupe(checked))


def parse_template(spec: str | None, label_set: LabelSet) -> tuple[str, ...]:
    """`--template`: an ensemble's name or one template containing `{}`; default per label set."""
    if spec is None:
        return label_set.default_templates
    named = templates()
    if spec in named:
        return named[spec]
    return (check_template(spec, named),)


def check_template(spec: str, named=()) -> str:
    """A template with exactly one `{}` and no other replacement field (`{1}`, `{x}`, `{`)."""
    try:
        fields = [f for _text, f, _spec, _conv in string.Formatter().parse(spec) if f is not None]
    except ValueError as e:
        fields = [f"invalid ({e})"]
    if fields != [""]:
        raise BadInput(
            f"template {spec!r} must contain '{{}}' exactly once and no other braces"
            + (f", or be one of: {', '.join(named)}" if named else "")
        )
    return spec
