"""FreeDict's dictionaries in dictd format (Debian's `dict-freedict-XXX-eng` and
`dict-freedict-eng-XXX`): an `.index` of `headword<TAB>offset<TAB>length` (base 64) and a
dictzip'd `.dict.dz` (gzip).

A label set's language is the installed dictionary that holds most of its labels (at least
half); only that one is read for it. A label's senses are its entries' lines, in each entry's
order, the entry whose commonest English word is commoner first (German Hund: dog before mine
car). A label the X→English dictionary lacks is looked up backwards in the English→X one: the
English headwords that give it as a whole translation (Turkish geyik: deer), the entry giving
it soonest (first sense, first word) first.
Where no X→English dictionary holds half the set, the English→X ones name its language too
(Indonesian has only eng-ind).
"""

from __future__ import annotations

import gzip
import logging
import re
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("ovision")

DICTD_DIR = "/usr/share/dictd"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TAG = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}")  # [zool.], <n>, {see also}
_NUMBER = re.compile(r"^\d+\.\s*")
_SKIP = ('"', "Note:", "Synonym", "see:", "Syn.", "Antonym")
_WORD = re.compile(r"[A-Za-z]+")
_PARENS = re.compile(r"\([^)]*\)")  # (müz.) la notası
_STRAY = re.compile(r"^[^()]*\)|\s\d+$")  # "(çoğ.) deer) geyik", "kuda 2."
MAX_ENTRY = 1 << 16  # bytes of one entry read at most
MAX_TEXT = 1 << 28  # bytes of an English→X dictionary read backwards (eng-deu: 80 MB)


def _b64(text: str) -> int:
    n = 0
    for ch in text:
        n = n * 64 + _B64.index(ch)
    return n


class Backward:
    """An English→X dictionary read backwards: for a label, the English headwords whose entry
    gives it as one whole translation (Turkish geyik: deer, stag). A label that is an English
    headword itself is not read so (English labels stay English)."""

    def __init__(self, index: Path, data: Path) -> None:
        self.index, self.data = index, data
        self.version = _edition(index, data)

    def find(self, labels: Sequence[str]) -> dict[str, list[str]]:
        """label → English headwords, for the labels it gives: the entries giving it soonest
        (the first sense's first word) first."""
        offsets, heads = _entries(self.index)
        english = {h.lower() for h in heads}
        wanted = [lab for lab in labels if lab.strip() and lab.strip().lower() not in english]
        if not wanted:
            return {}
        try:
            with gzip.open(self.data, "rb") as f:
                text = f.read(MAX_TEXT + 1).lower()  # ASCII only: offsets stay the index's
        except (OSError, EOFError) as e:
            log.warning("%s: unreadable (%s); not used", self.data, e)
            return {}
        if len(text) > MAX_TEXT:
            log.warning("%s: over %d MB unpacked; not read", self.data, MAX_TEXT >> 20)
            return {}
        out = {}
        for lab in wanted:
            found = [heads[i] for i in _giving(text, offsets, lab.strip())]
            if found:
                out[lab] = list(dict.fromkeys(found))
        return out


def _giving(text: bytes, offsets: list[int], label: str) -> list[int]:
    """The entries (by number) with a sense line holding `label` as a whole item, those that
    give it soonest (first sense, first word: dog's "anjing, asu") first."""
    key, hits, seen = label.lower(), dict[int, tuple[int, int]](), set()
    for needle in {key.encode().lower(), (key[:1].upper() + key[1:]).encode().lower()}:
        at = text.find(needle)
        while at >= 0:
            start = text.rfind(b"\n", 0, at) + 1
            end = text.find(b"\n", at)
            entry = bisect_right(offsets, start) - 1
            if start not in seen and entry >= 0 and offsets[entry] != start:  # not a headword
                seen.add(start)
                line = text[start : end if end >= 0 else len(text)].decode("utf-8", "replace")
                items = [i for item in _items(line.strip()) for i in item.split(";")]
                where = [n for n, i in enumerate(items) if key == _bare(i)]
                if where:
                    rank = (text.count(b"\n", offsets[entry], start), where[0])
                    hits[entry] = min(hits.get(entry, rank), rank)
            at = text.find(needle, at + 1)
    return sorted(hits, key=lambda e: hits[e])


def _bare(item: str) -> str:
    return _STRAY.sub("", _PARENS.sub("", item).strip(" .")).strip().lower()


def _entries(index: Path) -> tuple[list[int], list[str]]:
    """A dictd index's entries in data order: (offsets, headwords)."""
    rows = []
    try:
        with open(index, encoding="utf-8", errors="replace") as f:
            for line in f:
                head, _, rest = line.rstrip("\n").partition("\t")
                off, _, _length = rest.partition("\t")
                try:
                    rows.append((_b64(off), head))
                except ValueError:
                    continue
    except OSError as e:
        log.warning("%s: unreadable (%s); not used", index, e)
    rows.sort()
    return [r[0] for r in rows], [r[1] for r in rows]


class FreeDict:
    """One language's FreeDict dictionaries: X→English (`index`, `data`) and English→X
    (`backward`), either of them optional; `siblings` are every installed language, to tell
    the set's."""

    def __init__(
        self,
        language: str,
        forward: tuple[Path, Path] | None,
        backward: Backward | None = None,
    ) -> None:
        self.language, self.forward, self.backward = language, forward, backward
        self.name = f"FreeDict {language}-eng" if forward else f"FreeDict eng-{language} reversed"
        self.ordered = False  # cavalo: knight, then horse
        editions = [_edition(*forward)] if forward else []
        if backward:
            editions.append(f"eng-{language} {backward.version}" if forward else backward.version)
        self.version = "; ".join(editions)
        self.siblings: Sequence[FreeDict] = (self,)
        self._found: dict[tuple[str, ...], dict[str, list[tuple[int, int]]]] = {}
        self._back: dict[tuple[str, ...], dict[str, list[str]]] = {}

    def holds(self, labels: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
        """label → its X→English entries' (offset, length), for the labels that dictionary
        holds (one pass over the index per set; headwords compared without case)."""
        key = tuple(labels)
        if key not in self._found:
            self._found[key] = _lookup(self.forward[0], labels) if self.forward else {}
        return self._found[key]

    def gives(self, labels: Sequence[str]) -> dict[str, list[str]]:
        """label → English headwords, for the labels the X→English dictionary lacks and the
        English→X one gives (read once per set, and only where asked)."""
        key = tuple(labels)
        if key not in self._back:
            held = self.holds(labels)
            rest = [lab for lab in labels if lab not in held]
            self._back[key] = self.backward.find(rest) if self.backward and rest else {}
        return self._back[key]

    def covers(self, label: str, labels: Sequence[str]) -> bool:
        """`label` is in this language's dictionaries, and of the installed languages this
        holds most of the set (at least half): read forwards, else (no X→English dictionary
        holds half of it) backwards too."""
        half = (len(labels) + 1) // 2
        forward = {d.language: len(d.holds(labels)) for d in self.siblings}
        if max(forward.values()) < half:
            forward = {
                d.language: len(d.holds(labels)) + len(d.gives(labels)) for d in self.siblings
            }
        if forward[self.language] < max(half, max(forward.values()), 1):
            return False
        return label in self.holds(labels) or label in self.gives(labels)

    def senses(self, label: str) -> list[str]:
        """The label's senses as '/'-separated English glosses: X→English entries in their
        own order (gato: cat, then jack), the entry whose commonest gloss is commoner first
        (Hund: dog before mine car); else the English headwords giving it soonest first."""
        spans = next((f[label] for f in self._found.values() if label in f), [])
        if not spans or not self.forward:
            return next((b[label] for b in self._back.values() if label in b), [])
        entries: list[list[str]] = []
        try:
            with gzip.open(self.forward[1], "rb") as f:
                for off, length in sorted(spans):
                    f.seek(off)
                    text = f.read(min(length, MAX_ENTRY)).decode("utf-8", "replace")
                    entries.append(_sense_lines(text))
        except (OSError, EOFError) as e:
            log.warning("%s: unreadable (%s); not used", self.forward, e)
            return []
        entries = [e for e in entries if e]
        entries.sort(key=lambda e: -max(map(_commonest, e)))
        return [line for e in entries for line in e]


def _lookup(index: Path, labels: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
    wanted = {lab.strip().lower(): lab for lab in labels}
    found: dict[str, list[tuple[int, int]]] = {}
    try:
        with open(index, encoding="utf-8", errors="replace") as f:
            for line in f:
                head, _, rest = line.partition("\t")
                lab = wanted.get(head.lower())
                if lab is None:
                    continue
                off, _, length = rest.strip().partition("\t")
                try:
                    found.setdefault(lab, []).append((_b64(off), _b64(length)))
                except ValueError:
                    continue
    except OSError as e:
        log.warning("%s: unreadable (%s); not used", index, e)
    return found


def _edition(index: Path, data: Path) -> str:
    """The dictionary's edition, from its 00databaseinfo entry ("Edition: 1.9-fd1"); else the
    size of its data file."""
    try:
        with open(index, encoding="utf-8", errors="replace") as f:
            for _n, line in zip(range(200), f, strict=False):
                head, _, rest = line.rstrip("\n").partition("\t")
                if head in ("00databaseinfo", "00-database-info"):
                    off, _, length = rest.partition("\t")
                    with gzip.open(data, "rb") as g:
                        g.seek(_b64(off))
                        info = g.read(min(_b64(length), 4096)).decode("utf-8", "replace")
                    found = re.search(r"Edition:\s*(\S+)", info)
                    if found:
                        return f"edition {found.group(1)}"
    except (OSError, EOFError, ValueError):
        pass
    try:
        return f"{data.stat().st_size} bytes"
    except OSError:
        return "unknown"


def _sense_lines(entry: str) -> list[str]:
    """An entry's sense lines (after its headword line), each as '/'-separated glosses: tags,
    numbering, examples, notes and cross-references dropped."""
    out = []
    for raw in entry.splitlines()[1:]:
        glosses = _items(raw.strip())
        if glosses:
            out.append("/".join(glosses))
    return out


def _items(line: str) -> list[str]:
    """A sense line's comma-separated glosses, without tags, numbering, examples or notes."""
    if not line or line.startswith(_SKIP):
        return []
    line = _NUMBER.sub("", _TAG.sub("", line))
    return [g for g in (g.strip(" ;.") for g in line.split(",")) if g]


def _commonest(sense: str) -> float:
    """The English Zipf frequency of the sense's commonest one-word gloss (0 without wordfreq)."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        return 0.0
    words = [g for g in sense.split("/") if _WORD.fullmatch(g)]
    return max((zipf_frequency(w.lower(), "en") for w in words), default=0.0)


def freedicts(folder: Path) -> list[FreeDict]:
    """Every language with a `freedict-XXX-eng` or a `freedict-eng-XXX` dictionary in
    `folder` (or both), each told of the others."""

    def pairs(pattern: str) -> dict[str, tuple[Path, Path]]:
        out = {}
        for index in sorted(folder.glob(pattern)):
            data = index.with_name(index.name.removesuffix(".index") + ".dict.dz")
            language = index.name.removeprefix("freedict-").removesuffix(".index")
            language = language.removesuffix("-eng").removeprefix("eng-")
            if data.is_file() and language != "eng":
                out[language] = (index, data)
        return out

    forward, backward = pairs("freedict-*-eng.index"), pairs("freedict-eng-*.index")
    found = [
        FreeDict(lang, forward.get(lang), Backward(*backward[lang]) if lang in backward else None)
        for lang in sorted({*forward, *backward})
    ]
    for d in found:
        d.siblings = found
    return found
