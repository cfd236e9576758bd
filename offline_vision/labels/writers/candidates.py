"""Several candidate English names per label (`--examples` on a bridged set): the reasoner
proposes, the eyes choose on the user's example images (`labels.naming`). Cached per label set
and reasoner, like every writer's knowledge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from offline_vision.labels.store import Knowledge, cache_path
from offline_vision.labels.writers.names import CHUNK, _plain
from offline_vision.labels.writers.senses import context_of
from offline_vision.models.reasoners.base import Reasoner
from offline_vision.progress import bar as progress_bar
from offline_vision.prompts import BRIDGE_CANDIDATES, BRIDGE_SYSTEM

STRATEGY = "candidates"
PER_LABEL = 3
_WORD = {"type": "string", "pattern": "^[A-Za-z][A-Za-z -]{0,39}$", "maxLength": 40}


def _schema(chunk: Sequence[str]) -> dict:
    entry = {"type": "array", "items": _WORD, "minItems": 1, "maxItems": PER_LABEL}
    return {
        "type": "object",
        "properties": {label: entry for label in chunk},
        "required": list(chunk),
        "additionalProperties": False,
    }


def write_candidates(
    labels: Sequence[str], reasoner: Reasoner, *, cache_dir: Path, seed: int = 0
) -> tuple[Knowledge, Path, bool]:
    """Up to PER_LABEL English names per label, from the cache or asked now (saved after every
    request). Returns (knowledge, its file, whether cached)."""
    labels = list(labels)
    prompts = {"system": BRIDGE_SYSTEM, "candidates": BRIDGE_CANDIDATES}
    path = cache_path(cache_dir, STRATEGY, labels, reasoner, PER_LABEL, seed, prompt=prompts)
    k = Knowledge.begin(
        path, STRATEGY, labels, reasoner, per_label=PER_LABEL, seed=seed, prompts=prompts
    )
    if k.complete:
        return k, path, True
    todo = [lab for lab in labels if lab not in k.texts]
    with progress_bar(None, "asking for candidate names", unit="request") as bar:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            prompt = BRIDGE_CANDIDATES.format(
                labels=context_of(labels, chunk), chunk=", ".join(chunk), n=PER_LABEL
            )
            messages = [
                {"role": "system", "content": BRIDGE_SYSTEM},
                {"role": "user", "content": prompt},
            ]
            c = reasoner.complete(
                messages,
                schema=_schema(chunk),
                max_tokens=12 * PER_LABEL * len(chunk) + 16,
                temperature=0.0,
                seed=seed,
            )
            for label in chunk:
                k.texts[label] = list(dict.fromkeys(_plain(str(w)) for w in c.value[label]))
            k.transcripts[f"candidates {start // CHUNK + 1}"] = c.text
            k.llm_seconds += c.latency_s
            k.save(path)
            bar.update(1)
    k.complete = True
    k.save(path)
    return k, path, False
