"""Multi-label tagging on CIFAR-10 → benchmarks/results/multi_label.json (its table in
docs/results.md).

The ConSE stand-in eyes (not CLIP), "a photo of a {}". Two groups tagged multi-label over a
catalog of the 632 dev images and one of cifar10-300: CIFAR-10's ten classes as yes/no tags (one
yes per image) and seven attributes, each image's read from its class (animal, vehicle, pet,
wings, wheels, water, fur). Macro-F1 per group of `ovision tag --multi`'s rule (z of the cosine
against the catalog's mean for the label, ≥ k, or the top label) for k in a grid, and of the
rules it was chosen over: a fixed probability, a share of the top one, the top one alone, a
two-Gaussian mixture per label. k is chosen on the 632 (mean of the two groups).

    OVISION_DATA=../shared/data python -m benchmarks.accuracy.multi_label
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import catalog_of, cifar_embeddings, cifar_split, write
from offline_vision.catalog import tag as tagging
from offline_vision.catalog.store import Catalog
from offline_vision.config import Settings
from offline_vision.labels.plan import plan_of
from offline_vision.labels.sets import CIFAR10, LabelSet
from offline_vision.models.loader import load_scorer

TEMPLATES = ("a photo of a {}",)
ATTRIBUTES = {
    "animal": "bird cat deer dog frog horse",
    "vehicle": "airplane automobile ship truck",
    "pet": "cat dog",
    "wings": "airplane bird",
    "wheels": "automobile truck",
    "water": "ship",
    "fur": "cat deer dog horse",
}
KS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def macro_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp, fp, fn = (pred & truth).sum(0), (pred & ~truth).sum(0), (~pred & truth).sum(0)
    return float(np.mean(2 * tp / np.maximum(2 * tp + fp + fn, 1)))


def mixture(sim: np.ndarray, iters: int = 100) -> np.ndarray:
    """Per column, the posterior of the higher of two Gaussians fitted by EM: a rule compared."""
    out = np.zeros_like(sim)
    for j in range(sim.shape[1]):
        x = sim[:, j]
        mu, sd, w = np.percentile(x, [25, 90]), np.array([x.std()] * 2), np.array([0.8, 0.2])
        for _ in range(iters):
            ll = -0.5 * ((x[:, None] - mu) / sd) ** 2 - np.log(sd) + np.log(w)
            r = np.exp(ll - ll.max(1, keepdims=True))
            r /= r.sum(1, keepdims=True)
            n = r.sum(0)
            w, mu = n / len(x), (r * x[:, None]).sum(0) / n
            sd = np.sqrt((r * (x[:, None] - mu) ** 2).sum(0) / n) + 1e-6
        out[:, j] = r[:, np.argmax(mu)]
    return out


def rules(cat: Catalog, eyes, labels, truth: np.ndarray) -> dict[str, float]:
    plan = plan_of(LabelSet("custom", tuple(labels)), TEMPLATES)
    out = {}
    for k in KS:  # the product's own rule, through the Tagger
        tagging.MULTI_Z = k
        rows = list(tagging.Tagger(cat, {"g": plan}, eyes, multi=["g"]).rows())
        pred = np.array([[x in {t["label"] for t in r["g"]} for x in labels] for r in rows])
        out[f"z >= {k} or top"] = macro_f1(pred, truth)
    emb = np.stack(cat.rows().embeddings)
    label_emb = eyes.encode_labels(list(labels), TEMPLATES)
    p = eyes.probabilities(emb, label_emb)
    top = p == p.max(1, keepdims=True)
    out["top label only"] = macro_f1(top, truth)
    out["p >= 1/N"] = macro_f1(p >= 1 / len(labels), truth)
    out["p >= 0.5"] = macro_f1(p >= 0.5, truth)
    out["p >= half the top"] = macro_f1(p >= 0.5 * p.max(1, keepdims=True), truth)
    out["two-Gaussian mixture or top"] = macro_f1((mixture(emb @ label_emb.T) >= 0.5) | top, truth)
    return out


def main() -> None:
    settings = Settings.from_env(threads=2)
    eyes = load_scorer(settings, "conse")
    ds, indices, truth, _s300, masks = cifar_split(settings)
    emb, _feats = cifar_embeddings(eyes, ds, indices)
    classes = list(CIFAR10)
    groups = {
        "CIFAR-10 classes as yes/no tags": (classes, np.eye(10, dtype=bool)[truth]),
        "7 attributes": (
            list(ATTRIBUTES),
            np.array([[classes[t] in v.split() for v in ATTRIBUTES.values()] for t in truth]),
        ),
    }
    default = tagging.MULTI_Z
    result: dict = {
        "eyes": "conse-effnetlite2-minilm (the ConSE stand-in, not CLIP)",
        "attributes": ATTRIBUTES,
        "product_k": default,
        "splits": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for split in ("632", "300"):
            m = masks[split]
            cat = catalog_of(Path(tmp) / split, eyes, [emb[m]])
            result["splits"][split] = {
                g: rules(cat, eyes, labels, y[m]) for g, (labels, y) in groups.items()
            }
    tagging.MULTI_Z = default
    dev = result["splits"]["632"]
    mean = {k: float(np.mean([dev[g][f"z >= {k} or top"] for g in groups])) for k in KS}
    result["dev_mean_by_k"] = mean
    result["chosen_k_on_632"] = max(KS, key=lambda k: (round(mean[k], 4), -k))
    print(write("multi_label", result))


if __name__ == "__main__":
    main()
