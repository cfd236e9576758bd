"""Can the eyes read these labels? The test that decides when a label set is bridged.

A label the eyes cannot read has a letter outside the Latin script, or no word that the eyes'
own tokenizer holds as one token (`Scorer.knows_word`), or is a word of another language that
happens to be spelt like an English one (gatto, cane, Hund: `foreign`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from offline_vision.models.scorer import Scorer

# A custom set is bridged when at least this share of its labels is unfamiliar. The costs are
# lopsided (benchmarks/results/bridge_rule.json): a foreign set left unbridged lost up to 70 % of
# its accuracy, plain English bridged lost under a point. The dev sets are 80–100 % unfamiliar,
# the plain names 0 %; 0.5 rather than 0.7 so that half a set of short foreign words that are
# also English tokens (Italian: cane, nave, rana) is enough. Of 500 random 10-name subsets of
# ImageNet's class names (plain but rare English: goldfinch, hammerhead) 88 reach it.
UNFAMILIAR_SHARE = 0.5
# A word is foreign where another Latin-script language uses it this much more often than English
# (wordfreq Zipf, small lists): cane 3.8 en / 4.9 it, Hund, gatto, kat. Of 0.5 / 1.0 / 1.5 on the
# dev sets and the plain names, the smallest that leaves every plain CIFAR-10 name English (0.5
# took automobile and dog for foreign); 1.0 and 1.5 find the same 80 % of cifar10-fr.
FOREIGN_MARGIN = 1.0
# wordfreq's Latin-script languages (Chinese, Japanese and Korean need tokenizers of their own;
# other scripts are caught before a word list is read)
_LATIN_LANGUAGES = [
    "ca",
    "cs",
    "da",
    "de",
    "es",
    "fi",
    "fil",
    "fr",
    "hu",
    "id",
    "is",
    "it",
    "lt",
    "lv",
    "ms",
    "nb",
    "nl",
    "pl",
    "pt",
    "ro",
    "sh",
    "sk",
    "sl",
    "sv",
    "tr",
    "vi",
]
# A name is plain English at this wordfreq Zipf frequency or more (a word in ~3 per 10 million).
# Chosen on the fashion dev lists (fashion-ja/answers.json): the rarest accepted name, knitwear,
# is at 2.56, so none of the 66 is refused; the dev sets' bad answers stay refused (moggy 1.7,
# passerine 1.7, anuran 1.2, cervid 1.0).
ENGLISH_ZIPF = 2.5
# A bridged label keeps its own text among its read-as names where the eyes read it and English
# uses it this often (mean Zipf of its words). Of 0 / 3.0 / 3.5 / 4.0 on the dev sets and the
# plain names (benchmarks/results/bridge_rule.json names, the 632 dev images): 3.5 was best or
# equal on each — 4.0 dropped automobile (plain 0.99 → 0.96 of its accuracy), below 3.5 jargon's
# saloon was kept (0.65 → 0.64), and German Hirsch (a surname in English, 3.1) read as itself.
OWN_TEXT_ZIPF = 3.5
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


def foreign(label: str) -> bool:
    """Whether a Latin-script label reads as another language's words rather than English: its
    words' mean Zipf frequency in one of wordfreq's Latin-script languages beats English's by
    FOREIGN_MARGIN (False without wordfreq)."""
    words = [w.lower() for w in _WORD.findall(label)]
    if not words or _non_latin(label):
        return False
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        return False
    english = sum(zipf_frequency(w, "en") for w in words) / len(words)
    return any(
        sum(zipf_frequency(w, lang, wordlist="small") for w in words) / len(words) - english
        >= FOREIGN_MARGIN
        for lang in _LATIN_LANGUAGES
    )


def unfamiliar(labels: Sequence[str], scorer: Scorer) -> list[str]:
    """The labels the eyes would misread: unreadable ones, and foreign words they hold as
    English tokens."""
    bad = set(unreadable(labels, scorer))
    return [lab for lab in labels if lab in bad or foreign(lab)]


def common_english(label: str) -> bool:
    """Whether English uses the label's words often (mean Zipf ≥ OWN_TEXT_ZIPF); True where
    wordfreq is missing (the tokenizer's word alone then)."""
    words = _WORD.findall(label)
    try:
        import wordfreq  # noqa: F401  (the llm extra)
    except ImportError:
        return True
    return bool(words) and sum(_zipf(w) for w in words) / len(words) >= OWN_TEXT_ZIPF


def looks_unfamiliar(labels: Sequence[str], scorer: Scorer) -> tuple[bool, list[str]]:
    """Whether `auto` bridges the set (UNFAMILIAR_SHARE of it unfamiliar), and the labels that
    are."""
    bad = unfamiliar(labels, scorer)
    return bool(labels) and len(bad) >= UNFAMILIAR_SHARE * len(labels), bad
