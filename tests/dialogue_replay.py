"""Deterministic dialogues for the refactor lock: a scripted reasoner whose answers are a pure
function of what it is shown, and a numpy scorer whose embeddings are a pure function of the
text, over CIFAR-10's labels. `transcripts()` runs every policy × mode on a few images."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from offline_vision.dialogue import DialogueConfig, run_dialogue
from offline_vision.labels import CIFAR10, LabelSet
from offline_vision.models.reasoners.scripted import ScriptedReasoner
from offline_vision.models.scorer import l2_normalize, softmax

VOCAB = [*CIFAR10, "plane", "boat", "animal", "vehicle", "kitten", "puppy", "jet", "lorry"]
DIM = 16


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _vec(text: str) -> np.ndarray:
    rng = np.random.default_rng(_h(text.lower()) % 2**32)
    return rng.normal(size=DIM)


class HashScorer:
    """Text → a seeded random vector; an image is a vector too. Deterministic everywhere."""

    kind, standin, logit_scale, text_model_key = "hash", True, 10.0, "hash-v1"

    def describe(self) -> dict:
        return {"scorer": "hash", "standin": True}

    def default_templates(self, name: str) -> tuple[str, ...]:
        return ("a photo of a {}.",)

    def encode_images(self, images) -> np.ndarray:
        return l2_normalize(np.stack([_vec(f"image {im}") for im in images]))

    def encode_labels(self, labels, templates=("{}",)) -> np.ndarray:
        rows = [np.mean([_vec(t.format(lab)) for t in templates], axis=0) for lab in labels]
        return l2_normalize(np.stack(rows))

    def probabilities(self, image_embeddings, label_embeddings) -> np.ndarray:
        return softmax(self.logit_scale * image_embeddings @ label_embeddings.T)


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
