"""Bilingual dictionaries the bridge reads before it asks a reasoner to name a label.

A small LLM does not know many everyday words (ワンピース → "pants"); a published dictionary
does, offline. Where one knows a label, its glosses, commonest sense first, are the label's
names (the bridge takes the first: `labels.writers.names`); where none does, the reasoner names
the label alone. JMdict (Japanese, through `jamdict` + `jamdict-data`, installed with the `llm`
extra) and FreeDict's X→English dictionaries (Debian's `dict-freedict-XXX-eng`, dictd files in
`$OVISION_DICTD_DIR`, default /usr/share/dictd), with the English→X ones (`dict-freedict-eng-XXX`)
read backwards for the words those lack and for languages with no X→English one (Indonesian);
`scripts/install.sh` installs both with the `llm` extra. `OVISION_DICTIONARIES=none` turns them
off.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from offline_vision.labels.freedict import DICTD_DIR, freedicts

log = logging.getLogger("ovision")

MAX_GLOSSES = 8  # candidates offered to the reasoner for one label
_NAME = re.compile(r"^[A-Za-z][A-Za-z -]{0,39}$")  # what the bridge accepts as a name
_PAREN = re.compile(r"\s*\([^()]*\)")


@dataclass(frozen=True)
class Gloss:
    """One English candidate for a label: the name the eyes would read, and the dictionary's
    wording of its sense (shown to the reasoner that picks)."""

    name: str
    sense: str
    meaning: int = 0  # which of the label's senses (0: the commonest)


class Dictionary(Protocol):
    name: str
    version: str
    ordered: bool  # whether its senses come commonest first (else the reasoner picks one)

    def covers(self, label: str, labels: Sequence[str]) -> bool:
        """Whether `label`, in the set `labels`, is written in this dictionary's language."""
        ...

    def senses(self, label: str) -> list[str]:
        """The label's senses, as English glosses separated by '/', commonest first."""
        ...


def _kana(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(("HIRAGANA", "KATAKANA"))


def _japanese(ch: str) -> bool:
    return _kana(ch) or unicodedata.name(ch, "").startswith(("CJK UNIFIED", "CJK COMPATIBILITY"))


class JMdict:
    """Jim Breen's JMdict through jamdict (EDRDG licence, CC BY-SA 4.0)."""

    name = "JMdict"
    ordered = True

    def __init__(self) -> None:
        from jamdict import Jamdict  # the llm extra

        self._jam: Any = Jamdict()
        self.version = f"jamdict-data {metadata.version('jamdict-data')}"

    def covers(self, label: str, labels: Sequence[str]) -> bool:
        """A label in Japanese script, in a set with kana somewhere: a set of kanji alone may
        be Chinese, whose words JMdict does not hold (汽车, a car, is not 汽車, a steam train)."""
        return any(_japanese(ch) for ch in label) and any(_kana(ch) for lab in labels for ch in lab)

    def senses(self, label: str) -> list[str]:
        found = self._jam.lookup(label, strict_lookup=True, lookup_chars=False)
        # Common words first: JMdict marks them with priority tags (news1, ichi1, gai1, …).
        entries = sorted(found.entries, key=lambda e: not _common(e, label))
        return [
            "/".join(str(g) for g in sense.gloss)
            for entry in entries
            for sense in entry.senses
            if sense.gloss
        ]


def _common(entry: Any, label: str) -> bool:
    forms = [*entry.kanji_forms, *entry.kana_forms]
    return any(f.pri for f in forms if f.text == label)


@cache
def installed() -> tuple[Dictionary, ...]:
    """The dictionaries this machine has (none under OVISION_DICTIONARIES=none)."""
    if os.environ.get("OVISION_DICTIONARIES", "auto") == "none":
        return ()
    out: list[Dictionary] = []
    try:
        out.append(JMdict())
    except Exception as e:  # not installed, or its database unreadable: the reasoner alone
        log.debug("JMdict unavailable: %s", e)
    return (*out, *freedicts(Path(os.environ.get("OVISION_DICTD_DIR", DICTD_DIR))))


def glosses(
    label: str, labels: Sequence[str], dictionaries: Sequence[Dictionary]
) -> tuple[str, list[Gloss]]:
    """(the dictionary's name, its candidates) for the first dictionary that knows `label` (of
    the set `labels`), or ("", []). A compound no dictionary has whole (迷彩柄) is read as two
    words it has."""
    for d in dictionaries:
        if not d.covers(label, labels):
            continue
        found = _clean(d.senses(label)) or _compound(d, label)
        if found:
            return d.name, found
    return "", []


def naming(
    labels: Sequence[str], dictionaries: Sequence[Dictionary]
) -> dict[str, tuple[str, list[Gloss]]]:
    """label → (the dictionary that names it, its candidates), for the labels one knows: the
    first that knows it, as `glosses` takes them (a set JMdict names whole never reads
    FreeDict)."""
    found = {lab: glosses(lab, labels, dictionaries) for lab in labels}
    return {lab: named for lab, named in found.items() if named[1]}


def versions(
    named: dict[str, tuple[str, list[Gloss]]], dictionaries: Sequence[Dictionary]
) -> dict[str, str]:
    """name → version of the dictionaries that named labels in `named` (`naming`)."""
    sources = {source for source, _glosses in named.values()}
    return {d.name: d.version for d in dictionaries if d.name in sources}


def _clean(senses: list[str]) -> list[Gloss]:
    """Names the bridge can use, each once: parentheses dropped from the name (kept as its
    sense), at most three words, letters only."""
    out: dict[str, Gloss] = {}
    for meaning, sense in enumerate(senses):
        for part in sense.split("/"):
            part = part.strip()
            name = part
            while (shorter := _PAREN.sub("", name)) != name:  # nested: (Canis (lupus) …)
                name = shorter
            name = name.strip()
            name = re.sub(r"^(?:to|a|an|the) ", "", name)
            if _NAME.match(name) and len(name.split()) <= 3 and name.lower() not in out:
                out[name.lower()] = Gloss(name, part, meaning)
    return list(out.values())[:MAX_GLOSSES]


def _compound(d: Dictionary, label: str) -> list[Gloss]:
    """A label read as head + tail where the dictionary has both (迷彩 + 柄): each head name
    before each tail name, the longest known head first."""
    for cut in range(len(label) - 1, 0, -1):
        head, tail = _clean(d.senses(label[:cut])), _clean(d.senses(label[cut:]))
        if head and tail:
            names = [
                Gloss(f"{h.name} {t.name}", f"{h.sense} + {t.sense}")
                for h in head[:2]
                for t in tail
            ]
            return [g for g in names if _NAME.match(g.name)][:MAX_GLOSSES]
    return []
