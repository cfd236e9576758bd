"""Descriptions, subclasses and the waffle control: texts a reasoner writes about each label.

- `descriptions` (CuPL; Menon & Vondrick): visual descriptions per label; a label's embedding is
  the mean over its template prompts and its descriptions.
- `subclasses` (CHiLS): kinds of each label; the eyes score every subclass, and a label's score
  is its own probability times its best subclass's (CHiLS's reweighting).
- `waffle` (WaffleCLIP): the control — random word pairs in place of descriptions, the same
  count per label, seeded. A description gain counts only if it beats this.

How the eyes use them is `labels.scoring`; where they are kept is `labels.store`.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence
from pathlib import Path

from offline_vision.errors import BadInput
from offline_vision.labels.store import PER_LABEL, Knowledge, cache_path
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.progress import bar as progress_bar
from offline_vision.prompts import KNOWLEDGE_PROMPTS, KNOWLEDGE_SYSTEM

STRATEGIES = ("descriptions", "subclasses", "waffle")
_BULLET = re.compile(r"^\s*(?:[-*•·]+|\d+[.):]|[a-z][.)])\s*", re.IGNORECASE)


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
    reasoner: Reasoner | None,
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
    if reasoner is None:
        raise BadInput(f"{strategy} are written by a reasoner; none was given")
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
