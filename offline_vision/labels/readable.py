"""Can the eyes read these labels? The test that decides when a label set is bridged.

A label the eyes cannot read has a letter outside the Latin script, or no word that the eyes'
own tokenizer holds as one token (`Scorer.knows_word`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from offline_vision.models.scorer import Scorer

# A custom set is bridged when at least this share of its labels is unreadable. Chosen on the
# four dev label sets and on plain English (benchmarks/accuracy/label_bridge.py, `rule`): the dev
# sets are 80–100 % unreadable, the plain names 0 %; of 500 random 10-name subsets of ImageNet's
# class names (plain but rare English: goldfinch, hammerhead) 78 reach 50 % and 6 reach 70 %.
UNFAMILIAR_SHARE = 0.7
# A name is plain English at this wordfreq Zipf frequency or more (a word in ~3 per 10 million).
# Chosen on the fashion dev lists (fashion-ja/answers.json): the rarest accepted name, knitwear,
# is at 2.56, so none of the 66 is refused; the dev sets' bad answers stay refused (moggy 1.7,
# passerine 1.7, anuran 1.2, cervid 1.0).
ENGLISH_ZIPF = 2.5
_WORD = re.compile(r"[^\W\d_]+")


def _non_latin(label: str) -> bool:
    return any(ch.isalpha() and "LATIN" not in unicodedata.name(ch, "") for ch in label)


def unreadable(labels: Sequence[str], scorer: Scorer) -> list[str]:
    """The labels the eyes cannot read: a letter outside the Latin script, or no word that the
    eyes' own tokenizer holds as one token (split into pieces, a word is one the text tower
    never learnt whole: moggy, Felis, oiseau; "fixed-wing aircraft" has words it knows)."""
    out = []
    for label in labels:
        words = _WORD.findall(label)
        known = [scorer.knows_word(w) for w in words]  # None: the eyes cannot tell
        if _non_latin(label) or (words and all(k is False for k in known)):
            out.append(label)
    return out


def plain_english(name: str, scorer: Scorer) -> bool:
    """Whether a name the reasoner or a dictionary gives is one the eyes can read: Latin
    letters, and a word their tokenizer holds whole or that English uses often enough
    (wordfreq's Zipf frequency ≥ ENGLISH_ZIPF) — sandal, cardigan and sleeveless are split by
    MiniLM's tokenizer yet plain English. Eyes that cannot tell (no tokenizer) take any."""
    words = _WORD.findall(name)
    if _non_latin(name) or not words:
        return False
    known = [scorer.knows_word(w) for w in words]
    if any(k is None for k in known):
        return True
    return any(known) or any(_zipf(w) >= ENGLISH_ZIPF for w in words)


def _zipf(word: str) -> float:
    """wordfreq's English Zipf frequency (0 without wordfreq: then the tokenizer alone)."""
    try:
        from wordfreq import zipf_frequency  # the llm extra, with the bridge
    except ImportError:
        return 0.0
    return zipf_frequency(word.lower(), "en")


def looks_unfamiliar(labels: Sequence[str], scorer: Scorer) -> tuple[bool, list[str]]:
    bad = unreadable(labels, scorer)
    return bool(labels) and len(bad) >= UNFAMILIAR_SHARE * len(labels), bad
