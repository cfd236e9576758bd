"""FreeDict's X→English dictionaries in dictd format (Debian's `dict-freedict-XXX-eng`): an
`.index` of `headword<TAB>offset<TAB>length` (base 64) and a dictzip'd `.dict.dz` (gzip).

A label set's language is the installed dictionary that holds most of its labels (at least
half); only that one is read for it. A label's senses are its entries' lines, in each entry's
order, the entry whose commonest English word is commoner first (German Hund: dog before mine
car).
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("ovision")

DICTD_DIR = "/usr/share/dictd"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TAG = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}")  # [zool.], <n>, {see also}
_NUMBER = re.compile(r"^\d+\.\s*")
_SKIP = ('"', "Note:", "Synonym", "see:", "Syn.", "Antonym")
_WORD = re.compile(r"[A-Za-z]+")
MAX_ENTRY = 1 << 16  # bytes of one entry read at most


def _b64(text: str) -> int:
    n = 0
    for ch in text:
        n = n * 64 + _B64.index(ch)
    return n


class FreeDict:
    """One X→English dictionary; `siblings` are every installed one, to tell the set's
    language."""

    def __init__(self, index: Path, data: Path, language: str) -> None:
        self.index, self.data, self.language = index, data, language
        self.name = f"FreeDict {language}-eng"
        self.ordered = False  # cavalo: knight, then horse
        self.version = _edition(index, data)
        self.siblings: Sequence[FreeDict] = (self,)
        self._found: dict[tuple[str, ...], dict[str, list[tuple[int, int]]]] = {}

    def holds(self, labels: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
        """label → its entries' (offset, length), for the labels this dictionary holds (one
        pass over the index per set; headwords compared without case)."""
        key = tuple(labels)
        if key not in self._found:
            wanted = {lab.strip().lower(): lab for lab in labels}
            found: dict[str, list[tuple[int, int]]] = {}
            try:
                with open(self.index, encoding="utf-8", errors="replace") as f:
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
                log.warning("%s: unreadable (%s); not used", self.index, e)
            self._found[key] = found
        return self._found[key]

    def covers(self, label: str, labels: Sequence[str]) -> bool:
        """`label` is in this dictionary, and of the installed ones this holds most of the set
        (at least half of it): the set's language."""
        mine = len(self.holds(labels))
        if label not in self.holds(labels) or 2 * mine < len(labels):
            return False
        best = max(self.siblings, key=lambda d: len(d.holds(labels)))
        return best is self or len(best.holds(labels)) == mine

    def senses(self, label: str) -> list[str]:
        """The label's senses as '/'-separated English glosses: an entry's in its own order
        (gato: cat, then jack), the entry whose commonest gloss is commoner first (Hund: dog
        before mine car)."""
        spans = next((f[label] for f in self._found.values() if label in f), [])
        entries: list[list[str]] = []
        try:
            with gzip.open(self.data, "rb") as f:
                for off, length in sorted(spans):
                    f.seek(off)
                    text = f.read(min(length, MAX_ENTRY)).decode("utf-8", "replace")
                    entries.append(_sense_lines(text))
        except (OSError, EOFError) as e:
            log.warning("%s: unreadable (%s); not used", self.data, e)
            return []
        entries = [e for e in entries if e]
        entries.sort(key=lambda e: -max(map(_commonest, e)))
        return [line for e in entries for line in e]


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
        line = raw.strip()
        if not line or line.startswith(_SKIP):
            continue
        line = _NUMBER.sub("", _TAG.sub("", line))
        glosses = [g.strip(" ;.") for g in line.split(",")]
        glosses = [g for g in glosses if g]
        if glosses:
            out.append("/".join(glosses))
    return out


def _commonest(sense: str) -> float:
    """The English Zipf frequency of the sense's commonest one-word gloss (0 without wordfreq)."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        return 0.0
    words = [g for g in sense.split("/") if _WORD.fullmatch(g)]
    return max((zipf_frequency(w.lower(), "en") for w in words), default=0.0)


def freedicts(folder: Path) -> list[FreeDict]:
    """Every `freedict-XXX-eng` dictionary in `folder`, each told of the others."""
    found = []
    for index in sorted(folder.glob("freedict-*-eng.index")):
        data = index.with_name(index.name.removesuffix(".index") + ".dict.dz")
        language = index.name.removeprefix("freedict-").removesuffix("-eng.index")
        if data.is_file():
            found.append(FreeDict(index, data, language))
    for d in found:
        d.siblings = found
    return found
