"""The bridge: label names the eyes cannot read → everyday English names they can.

A user's labels may be in another language (猫), a trade's jargon (moggy) or Latin (Felis);
CLIP and the ConSE stand-in read English captions, and under such names they fall towards
chance. A reasoner writes, once per label set and with the whole set as context, the everyday
English name of each label, asked two ways (the word; what it is, then the word). Where the two
answers differ, a name another label has settled is left out, and the reasoner's own token
odds pick between the rest. Labels that still share a name, or whose name the eyes cannot read,
are asked again with the problem stated; a clash left over is settled by the reasoner, the
loser taking its other answer or its own label (all recorded in `choices` and `conflicts`). The
result is a knowledge file of strategy `names`; the eyes score each label through its names,
while everything the user sees keeps the user's label.

When to bridge is `labels.readable`; what `--knowledge` asks for is decided in `labels.plan`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from offline_vision.labels.answers import normalise, singulars
from offline_vision.labels.dictionaries import Dictionary, naming, versions
from offline_vision.labels.readable import plain_english, unreadable
from offline_vision.labels.store import Knowledge, cache_path
from offline_vision.labels.writers.senses import (
    Domain,
    choosing,
    context_of,
    domain_line,
    from_dictionaries,
    pick,
)
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.models.scorer import Scorer
from offline_vision.progress import bar as progress_bar
from offline_vision.prompts import (
    BRIDGE_CHOOSE,
    BRIDGE_CLASH,
    BRIDGE_CONFLICT,
    BRIDGE_DOMAIN,
    BRIDGE_EXAMPLES,
    BRIDGE_OWNER,
    BRIDGE_PROMPTS,
    BRIDGE_SYSTEM,
    BRIDGE_TAKEN,
    BRIDGE_UNREAD,
)

log = logging.getLogger("ovision")

STRATEGY = "names"
VERSION = 5  # of the procedure (dictionaries, asks, picks, repairs): part of the cache key
CHUNK = 16  # labels per request: a JSON object of 16 names fits a small model's attention
_NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z -]{0,39}$", "maxLength": 40}
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)
_ALTERNATIVES = re.compile(r"\s+(?:or|and/or)\s+", re.IGNORECASE)


_MEANING = {
    "type": "object",
    "properties": {"meaning": {"type": "string", "maxLength": 60}, "word": _NAME},
    "required": ["meaning", "word"],
    "additionalProperties": False,
}
_ENTRY = {"direct": _NAME, "meaning": _MEANING}
_TOKENS = {"direct": 16, "meaning": 48}  # per label: a word; what it is, then a word


def _schema(kind: str, chunk: Sequence[str]) -> dict:
    return {
        "type": "object",
        "properties": {label: _ENTRY[kind] for label in chunk},
        "required": list(chunk),
        "additionalProperties": False,
    }


def _messages(kind: str, labels, chunk, domain: str = "") -> list[dict]:
    prompt = BRIDGE_PROMPTS[kind].format(
        labels=context_of(labels, chunk),
        domain=domain_line(domain),
        chunk=", ".join(chunk),
    )
    return [{"role": "system", "content": BRIDGE_SYSTEM}, {"role": "user", "content": prompt}]


def _ask(reasoner: Reasoner, kind: str, messages: list[dict], chunk: Sequence[str], seed: int):
    """({label: word}, completion) for one request of `kind` (direct | meaning)."""
    c = reasoner.complete(
        messages,
        schema=_schema(kind, chunk),
        max_tokens=_TOKENS[kind] * len(chunk) + 16,
        temperature=0.0,
        seed=seed,
    )
    word = (lambda v: v["word"]) if kind == "meaning" else (lambda v: v)
    return {label: _plain(str(word(c.value[label]))) for label in chunk}, c


def _plain(name: str) -> str:
    """A name as the eyes get it: spaces folded, no leading article ("a plane" → "plane"), and
    of a list of alternatives the first ("car or truck or motorcycle or …" → "car": a small
    model hedging fills the 40 characters with them)."""
    name = _ALTERNATIVES.split(" ".join(name.split()))[0]
    return _ARTICLE.sub("", name) or name.strip()


def _copied(name: str, label: str) -> bool:
    """A prompt example's word given for another label: the model copied, it did not answer."""
    return any(_same(name, w) and k != label for k, (_m, w) in BRIDGE_EXAMPLES.items())


def _same(a: str, b: str) -> bool:
    return bool(set(singulars(normalise(a))) & set(singulars(normalise(b))))


def _from_dictionary(k: Knowledge, label: str) -> bool:
    return bool(k.choices.get(label, {}).get("source"))


def _held_by_others(k: Knowledge, label: str) -> list[str]:
    return [n[0] for other, n in k.texts.items() if other != label and n]


def _settle(
    k: Knowledge, reasoner: Reasoner, labels, chunk, asked: dict, seed: int, scorer: Scorer | None
) -> None:
    """Each label's name from its two answers: the one both gave; else, leaving out names other
    labels have settled, the one left or the one the reasoner's own odds prefer."""
    options = {}
    for lab in chunk:
        opts = list(dict.fromkeys(a[lab] for a in asked.values()))
        if scorer is not None and unreadable([lab], scorer):  # its own word is no bridge
            opts = [o for o in opts if not _same(o, lab)] or opts
        opts = [o for o in opts if not _copied(o, lab)] or opts
        options[lab] = opts[:1] if len(opts) > 1 and _same(*opts[:2]) else opts
    for lab in chunk:  # agreed first: what they settle, the others do not take
        if len(options[lab]) == 1:
            k.texts[lab] = options[lab]
    for lab in chunk:
        opts = options[lab]
        if len(opts) == 1:
            continue
        settled = _held_by_others(k, lab)
        free = [o for o in opts if not any(_same(o, n) for n in settled)] or opts
        odds: dict[str, float] = {}
        if len(free) == 1:
            chosen = free[0]
        else:
            chosen, odds = pick(reasoner, choosing(labels, lab, k.domain), free, seed)
        k.choices[lab] = {"options": opts, "odds": odds, "chosen": chosen}
        k.texts[lab] = [chosen]


def _fallback(k: Knowledge, label: str) -> list[str]:
    """A clash's loser: its other answer where no other label has it, else its own label."""
    others = _held_by_others(k, label)
    for option in k.choices.get(label, {}).get("options", []):
        if not any(_same(option, n) for n in others):
            return [option]
    return [label]


def clashes(texts: dict[str, list[str]]) -> list[list[str]]:
    """Groups of labels whose first names are one name (case, articles and plurals aside)."""
    group_of: dict[str, list[str]] = {}  # each spelling (cats, cat) → the group that has it
    groups: list[list[str]] = []
    for label, names in texts.items():
        forms = singulars(normalise(names[0] if names else label))
        hit = next((group_of[f] for f in forms if f in group_of), None)
        if hit is None:
            hit = []
            groups.append(hit)
        hit.append(label)
        for f in forms:
            group_of.setdefault(f, hit)
    return [g for g in groups if len(g) > 1]


def _repair(k: Knowledge, reasoner: Reasoner, labels, seed: int, scorer: Scorer | None) -> None:
    """Ask again, with the problem stated, the labels whose names clash or that the eyes still
    cannot read (a dictionary's name is not asked again); a clash left over goes to the label
    the reasoner ties to the name, the others taking `_fallback`. Every clash is recorded."""
    groups = clashes(k.texts)
    unread = [
        lab
        for lab in labels
        if not _from_dictionary(k, lab)
        and (
            _copied(k.texts[lab][0], lab) or (scorer and not plain_english(k.texts[lab][0], scorer))
        )
    ]
    before = {lab: k.texts[lab][0] for lab in [*(lab for g in groups for lab in g), *unread]}
    asked = [lab for g in groups for lab in g if not _from_dictionary(k, lab)]
    involved = list(dict.fromkeys([*asked, *unread]))
    if involved:
        _ask_again(k, reasoner, labels, involved, groups, unread, seed)
    left = clashes(k.texts)
    for group in left:
        name = k.texts[group[0]][0]
        keeper, _odds = pick(reasoner, BRIDGE_OWNER.format(name=name), group, seed)
        for lab in group:
            if lab != keeper:
                k.texts[lab] = _fallback(k, lab)
        k.conflicts.append({"name": name, "labels": group, "kept_by": keeper})
    still = [set(g) for g in left]
    for g in groups:  # each first clash: renamed by asking again, unless it stayed whole
        if not any(set(g) <= s for s in still):
            renamed = {lab: k.texts[lab][0] for lab in g}
            k.conflicts.append({"name": before[g[0]], "labels": g, "renamed": renamed})
    settled = {lab for g in left for lab in g}
    for lab in unread:
        if lab not in settled:
            k.conflicts.append({"unreadable": before[lab], "label": lab, "now": k.texts[lab][0]})


def _ask_again(k: Knowledge, reasoner: Reasoner, labels, involved, groups, unread, seed) -> None:
    """One request for the `involved` labels, with their clashes and unreadable names stated."""
    said = "; ".join(", ".join(g) + f" were all called '{k.texts[g[0]][0]}'" for g in groups)
    problems = BRIDGE_CLASH.format(clashes=said) if groups else ""
    if unread:
        problems += BRIDGE_UNREAD.format(words=", ".join(k.texts[lab][0] for lab in unread))
    others = [k.texts[lab][0] for lab in labels if lab not in involved]
    taken = BRIDGE_TAKEN.format(names=", ".join(others)) if others else ""
    conflict = BRIDGE_CONFLICT.format(problems=problems, taken=taken, chunk=", ".join(involved))
    messages = _messages("direct", labels, involved, k.domain)
    messages += [
        {"role": "assistant", "content": json.dumps({lab: k.texts[lab][0] for lab in involved})},
        {"role": "user", "content": conflict},
    ]
    names, c = _ask(reasoner, "direct", messages, involved, seed)
    k.llm_seconds += c.latency_s
    k.transcripts["asked again"] = c.text
    for lab in involved:
        k.texts[lab] = [names[lab]]


class _Ticking:
    """The reasoner, ticking a progress bar once per request (each takes seconds on a CPU)."""

    def __init__(self, reasoner: Reasoner, tick) -> None:
        self._reasoner, self._tick = reasoner, tick
        self.name = reasoner.name

    def complete(self, messages, **kwargs):
        try:
            return self._reasoner.complete(messages, **kwargs)
        finally:
            self._tick()

    def choice_probabilities(self, messages, choices):
        try:
            return self._reasoner.choice_probabilities(messages, choices)
        finally:
            self._tick()

    def describe(self) -> dict:
        return self._reasoner.describe()

    def count_tokens(self, text: str) -> int:
        return self._reasoner.count_tokens(text)


def write_names(
    labels: Sequence[str],
    reasoner: Reasoner,
    *,
    cache_dir: Path,
    seed: int = 0,
    scorer: Scorer | None = None,
    dictionaries: Sequence[Dictionary] = (),
    domain: str | None = None,
) -> tuple[Knowledge, Path, bool]:
    """The label set's English names, from the cache or written now (saved after every
    request, so an interrupted run resumes). Labels a dictionary knows are named from its
    glosses, its senses weighed by `domain` (what the labels are: "clothing"; asked of the
    reasoner where not given and a dictionary's senses need it); with `scorer` (the eyes the
    names are for), a name they cannot read is no answer. Returns (knowledge, its file,
    whether cached)."""
    labels = list(labels)
    domain = " ".join(domain.split()) if domain else None
    named = naming(labels, dictionaries)
    used = versions(named, dictionaries)
    prompts = {
        "system": BRIDGE_SYSTEM,
        **BRIDGE_PROMPTS,
        "choose": BRIDGE_CHOOSE,
        "conflict": BRIDGE_CONFLICT,
        "owner": BRIDGE_OWNER,
        "dictionaries": used,
        "domain": domain or BRIDGE_DOMAIN,  # given, or asked with this prompt
    }
    eyes = scorer.text_model_key if scorer else None  # the names are chosen for these eyes
    key = [prompts, eyes, VERSION]
    path = cache_path(cache_dir, STRATEGY, labels, reasoner, 1, seed, prompt=key)
    k = Knowledge.begin(path, STRATEGY, labels, reasoner, per_label=1, seed=seed, prompts=prompts)
    if k.complete:
        return k, path, True
    todo = [lab for lab in labels if lab not in k.texts]
    with progress_bar(None, "bridging label names", unit="request") as bar:
        llm = _Ticking(reasoner, bar.update)  # every request ticks: the domain, picks, asks
        context = Domain(k, domain, llm, labels, seed, scorer)
        if used:
            ordered = {d.name: d.ordered for d in dictionaries}
            todo = from_dictionaries(k, labels, todo, named, ordered, scorer, llm, seed, context)
            k.save(path)
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            asked = {}
            for kind in BRIDGE_PROMPTS:
                bar.set_postfix_str(f"{kind}: {', '.join(chunk)}"[:60])
                messages = _messages(kind, labels, chunk, context.text())
                asked[kind], c = _ask(llm, kind, messages, chunk, seed)
                k.transcripts[f"{kind} {start // CHUNK + 1}"] = c.text
                k.llm_seconds += c.latency_s
            _settle(k, llm, labels, chunk, asked, seed, scorer)
            k.save(path)
        bar.set_postfix_str("clashes and unreadable names")
        _repair(k, llm, labels, seed, scorer)
    k.complete = True
    k.save(path)
    return k, path, False
