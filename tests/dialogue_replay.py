"""Deterministic dialogues for the refactor lock: a scripted reasoner whose answers are a pure
function of what it is shown, and a numpy scorer whose embeddings are a pure function of the
text, over CIFAR-10's labels. `transcripts()` runs every policy × mode on a few images."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from fakes import FakeScorer

from offline_vision.dialogue import DialogueConfig, run_dialogue
from offline_vision.labels.sets import CIFAR10, LabelSet
from offline_vision.models.reasoners.scripted import ScriptedReasoner

VOCAB = [*CIFAR10, "plane", "boat", "animal", "vehicle", "kitten", "puppy", "jet", "lorry"]
DIM = 16


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _vec(text: str) -> np.ndarray:
    rng = np.random.default_rng(_h(text.lower()) % 2**32)
    return rng.normal(size=DIM)


def HashScorer() -> FakeScorer:
    """Text → a seeded random vector; an image is a vector too. Deterministic everywhere."""
    image = lambda im: _vec(f"image {im}")  # noqa: E731
    return FakeScorer(
        _vec, image, logit_scale=10.0, key="hash-v1", kind="hash", templates=("a photo of a {}.",)
    )


def answer(messages, choices, schema) -> str:
    h = _h(json.dumps(messages, sort_keys=True))
    if choices is not None:
        return choices[h % len(choices)]
    props = (schema or {}).get("properties", {})
    if "candidates" in props:
        if h % 11 == 0:
            return "not json at all"  # exercises the repair turn and the broad fallback
        n = 2 + h % 3
        cands = [VOCAB[(h >> (4 * k)) % len(VOCAB)] for k in range(n)]
        if h % 4 == 0:
            cands = ["airplane", "automobile"]  # asked again and again: the repeat path
        out = {"candidates": cands}
        if "guess" in props and h % 3:
            out["guess"] = cands[0]
        return json.dumps(out)
    if "label" in props:
        return json.dumps({"label": VOCAB[h % len(VOCAB)]})
    return VOCAB[h % len(VOCAB)]


def transcripts() -> list[dict]:
    scorer, out = HashScorer(), []
    for policy in ("seed", "adaptive"):
        for known in (True, False):
            for image in range(10):
                cfg = DialogueConfig(policy=policy, rounds=4, trust=1.0 if image % 2 else 0.5)
                d = run_dialogue(
                    image,
                    scorer,
                    ScriptedReasoner(answer),
                    LabelSet("cifar10", CIFAR10, known=known),
                    config=cfg,
                )
                for c in d["calls"]:
                    c.pop("latency_s")
                d.pop("probe_s")
                out.append({"policy": policy, "known": known, "image": image, "dialogue": d})
    return out


if __name__ == "__main__":
    # Rewrites the lock that tests/test_dialogue_replay.py compares with. Only for a change of
    # behaviour that is meant, named in its commit:  .venv/bin/python tests/dialogue_replay.py
    from pathlib import Path

    out = Path(__file__).parent / "data" / "dialogue_transcripts.json"
    out.write_text(json.dumps(transcripts(), indent=0, sort_keys=True))
