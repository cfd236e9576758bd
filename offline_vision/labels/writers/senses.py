"""The bridge's dictionary names: a label a dictionary knows is named from its glosses — the
commonest sense, or a later one much nearer the label set's domain (given, or asked of the
reasoner once), or for a dictionary whose senses come in no order, the one the reasoner picks
with the set as context. Also the two ways the bridge asks with the set as context."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from offline_vision.errors import ReasonerError
from offline_vision.labels.dictionaries import Gloss
from offline_vision.labels.store import Knowledge
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.models.scorer import Scorer
from offline_vision.prompts import (
    BRIDGE_CHOOSE,
    BRIDGE_DOMAIN,
    BRIDGE_DOMAIN_LINE,
    BRIDGE_SYSTEM,
)

log = logging.getLogger("ovision")

MAX_SENSES = 4  # of an unordered dictionary's senses, the reasoner picks among the first
CONTEXT_LABELS = 64  # up to this many labels, every request lists the whole set as context
# A dictionary that lists a word's senses commonest first (JMdict) is followed unless another
# sense is nearer the label set's domain by this much (each sense: its gloss nearest the domain,
# by cosine in the eyes' text tower). Chosen on the fashion dev lists and cifar10-ja, with the
# domain the 1.5B inferred for each ("clothing"; "animals"): of 0 / 0.05 / 0.1 / 0.15 / 0.2 /
# 0.25, 0.1 and 0.15 named 30 of 30 dev fashion labels (29 by the first sense alone; 0.2 lost
# 水玉 polka dots again) and left cifar10-ja as it was (0 made 船 a "tank"). Of the plateau, the
# larger: the dictionary's order kept more often.
SENSE_MARGIN = 0.15
_DOMAIN = {
    "type": "object",
    "properties": {"domain": {"type": "string", "maxLength": 40}},
    "required": ["domain"],
    "additionalProperties": False,
}


def context_of(labels: Sequence[str], chunk: Sequence[str]) -> str:
    return ", ".join(labels if len(labels) <= CONTEXT_LABELS else chunk)


def domain_line(domain: str) -> str:
    """What every request says of the set after its labels (" They are animals."), if known."""
    return BRIDGE_DOMAIN_LINE.format(domain=domain) if domain else ""


def choosing(labels: Sequence[str], label: str, domain: str) -> str:
    """The request to pick `label`'s name, the set (and its domain, where known) as context."""
    return BRIDGE_CHOOSE.format(
        labels=context_of(labels, [label]), domain=domain_line(domain), label=label
    )


def pick(reasoner: Reasoner, prompt: str, options: list[str], seed: int) -> tuple[str, dict]:
    """The option the reasoner itself finds likeliest after `prompt`: its token probabilities
    where it gives them (returned too), else a constrained answer."""
    messages = [{"role": "system", "content": BRIDGE_SYSTEM}, {"role": "user", "content": prompt}]
    odds = reasoner.choice_probabilities(messages, options)
    if odds:
        return max(options, key=lambda o: odds.get(o, 0.0)), odds
    return reasoner.complete(messages, choices=options, max_tokens=16, seed=seed).value, {}


def from_dictionaries(
    k: Knowledge,
    labels,
    todo,
    named: dict[str, tuple[str, list[Gloss]]],
    ordered: dict[str, bool],
    scorer: Scorer | None,
    reasoner: Reasoner,
    seed: int,
    domain: Domain | None = None,
) -> list[str]:
    """Names for the labels a dictionary knows (`named`, from `labels.dictionaries.naming`;
    `ordered`: each dictionary's name → whether its senses come commonest first): of its
    commonest sense's glosses, the first the eyes' tokenizer holds a word of whole (airplane,
    not aeroplane), else its first; the other glosses kept (a clash's loser takes the next).
    Returns the labels left to ask.

    Chosen on the fashion dev lists and cifar10-ja's 632 dev images (default 1.5B, ConSE):
    of the 18 fashion labels JMdict gives several glosses for, the dictionary's first is
    accepted for 17; the 1.5B picking among them (its token odds, the set as context) for 14,
    15 told the set's domain, never more than 17 with a prior towards the dictionary's order
    or the embedding nearest the other labels' names; the commonest English word of the first
    sense lifted cifar10-ja (aircraft) but lost 紺 (deep blue). The first gloss gave
    'aeroplane' (cifar10-ja 63.4 %); the first the tokenizer reads, 'airplane' (63.9 %).
    An ordered dictionary's later sense is taken where it is nearer the set's `domain` (an
    embedding, asked for only here) by SENSE_MARGIN: 水玉 polka dots, not a drop of water."""
    rest = []
    for lab in todo:
        source, found = named.get(lab, ("", []))
        if not found:
            rest.append(lab)
            continue
        senses = [
            [g for g in found if g.meaning == m] for m in dict.fromkeys(g.meaning for g in found)
        ]
        heads = [readable_first(s, scorer) for s in senses]
        chosen, odds = heads[0], dict[str, float]()
        near: dict[str, float] = {}
        if not ordered.get(source, True) and len(set(heads)) > 1:
            # FreeDict lists senses in no order of use (Portuguese cavalo: knight, then
            # horse): the reasoner picks one, the label set as context.
            prompt = choosing(labels, lab, domain.text() if domain else "")
            chosen, odds = pick(reasoner, prompt, list(dict.fromkeys(heads))[:MAX_SENSES], seed)
        elif len(set(heads)) > 1 and scorer and domain and (context := domain()) is not None:
            best, sims = _nearest_sense(senses[:MAX_SENSES], scorer, context)
            chosen, near = heads[best], dict(zip(heads, sims, strict=False))
        options = [chosen, *(g.name for g in found if g.name != chosen)]
        k.choices[lab] = {"options": options, "odds": odds, "chosen": chosen, "source": source}
        if near:
            k.choices[lab]["domain_cosine"] = near
        k.texts[lab] = [chosen]
    return rest


def _nearest_sense(senses: list[list], scorer: Scorer, context: np.ndarray):
    """(the sense to take, each sense's cosine to the domain): the first, unless another is
    nearer by SENSE_MARGIN; a sense's cosine is its nearest gloss's."""
    sims = [
        round(float((scorer.encode_labels([g.name for g in s], ("{}",)) @ context).max()), 4)
        for s in senses
    ]
    best = int(np.argmax(sims))
    return (best if sims[best] - sims[0] > SENSE_MARGIN else 0), sims


def _infer_domain(reasoner: Reasoner, labels, seed: int) -> tuple[str, float]:
    """What the labels are, in a few words, asked once per set: ("clothing", seconds)."""
    prompt = BRIDGE_DOMAIN.format(labels=context_of(labels, labels[:CONTEXT_LABELS]))
    c = reasoner.complete(
        [{"role": "user", "content": prompt}],
        schema=_DOMAIN,
        max_tokens=32,
        temperature=0.0,
        seed=seed,
    )
    return " ".join(str(c.value["domain"]).split())[:40], c.latency_s


class Domain:
    """What the set's labels are: `text()` is the domain given, else asked of the reasoner once
    (kept in `k.domain`, so a resumed run does not ask again; "" where it could not say);
    calling it gives the eyes' embedding of that text (None without eyes or text)."""

    def __init__(self, k: Knowledge, given, reasoner: Reasoner, labels, seed: int, scorer):
        self.k, self.given, self.reasoner, self.labels, self.seed = k, given, reasoner, labels, seed
        self.scorer, self.asked, self.embedded = scorer, False, False
        self.vector: np.ndarray | None = None

    def text(self) -> str:
        k = self.k
        if self.given is not None:
            k.domain = self.given
        elif not k.domain and not self.asked:
            self.asked = True
            try:
                k.domain, seconds = _infer_domain(self.reasoner, self.labels, self.seed)
            except ReasonerError as e:  # asked without it; the dictionary's order kept
                log.warning("no domain for these labels (%s)", str(e).splitlines()[0])
                k.domain, seconds = "", 0.0
            k.llm_seconds += seconds
        return k.domain

    def __call__(self) -> np.ndarray | None:
        if not self.embedded and self.scorer is not None and self.text():
            self.vector = self.scorer.encode_labels([self.k.domain], ("{}",))[0]
        self.embedded = True
        return self.vector


def readable_first(sense: list, scorer: Scorer | None) -> str:
    """A sense's first gloss the eyes' tokenizer holds a word of whole, else its first."""
    read = [g for g in sense if scorer and any(scorer.knows_word(w) for w in g.name.split())]
    return (read or sense)[0].name
