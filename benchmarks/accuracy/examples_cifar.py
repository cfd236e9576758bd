"""Teach by example on CIFAR-10 → benchmarks/results/examples_cifar.json (its table in
docs/results.md).

The ConSE stand-in eyes (not CLIP). K examples per class drawn from the 632 dev images, evaluated
on cifar10-300, 5 draws (seeds 0–4) per K: zero-shot; the default adapter (GDA, its α and
shrinkage cross-validated on the examples); each method alone (its α and parameter
cross-validated); cross-validation choosing among all three. The all-632 ceiling: GDA on every
dev image, its shrinkage by 5-fold cross-validation on them. Under opaque label codes (K-017 …):
examples alone. Under cifar10-jargon and cifar10-ja, bridged by the default 1.5B: the bridge's
names, the names 1 and 4 examples per label choose among the reasoner's candidates, and those
with the adapter. Seconds to choose and fit the adapter for
10 × 16 examples and to apply it to 1,000 images.

    OVISION_DATA=../shared/data python -m benchmarks.accuracy.examples_cifar
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.accuracy.label_bridge import REASONERS, read_set
from benchmarks.common import cifar_embeddings, cifar_split, write
from offline_vision.config import Settings
from offline_vision.labels import adapters
from offline_vision.labels.examples import Examples
from offline_vision.labels.plan import lazy, plan_of, resolve
from offline_vision.labels.scoring import LabelScorer
from offline_vision.labels.sets import CIFAR10, LabelSet
from offline_vision.labels.store import Knowledge
from offline_vision.models.loader import load_scorer
from offline_vision.models.reasoners import load_reasoner

KS = (1, 2, 4, 8, 16)
DRAWS = 5
TEMPLATES = ("a photo of a {}",)  # ConSE's one template
CODES = tuple(f"K-{n:03d}" for n in (17, 243, 508, 91, 376, 664, 130, 822, 455, 719))


def draw(truth, pool, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(pool[truth[pool] == c], k, replace=False) for c in range(len(CIFAR10))]
    )


def zero_shot_of(eyes, labels, names=None) -> LabelScorer:
    bridge = Knowledge("names", list(labels), texts=names) if names else None
    return LabelScorer(eyes, plan_of(LabelSet("custom", tuple(labels)), TEMPLATES, bridge=bridge))


def taught(scorer: LabelScorer, emb, x, truth, shots, methods) -> np.ndarray:
    """Predictions on every image with the adapter chosen on `shots`, read through `x` (the
    embeddings or the eyes' richer features)."""
    a = adapters.choose(x[shots], truth[shots], scorer.probabilities(emb[shots]), methods)
    return a.probabilities(x, scorer.probabilities(emb)).argmax(1), a.describe()


def curve(scorer, emb, truth, dev, test, variants: dict) -> dict:
    """Accuracy on the test images per variant (methods, what the examples are read through)
    and K: mean, spread and each draw."""
    zs = float((scorer.probabilities(emb[test]).argmax(1) == truth[test]).mean())
    out: dict = {"zero_shot": zs, "k": {}}
    for k in KS:
        row = {}
        for name, (methods, x) in variants.items():
            accs, chosen = [], []
            for seed in range(DRAWS):
                pred, how = taught(scorer, emb, x, truth, draw(truth, dev, k, seed), methods)
                accs.append(float((pred[test] == truth[test]).mean()))
                chosen.append(how["method"] if how["method"] == "zero-shot" else how)
            row[name] = {
                "mean": float(np.mean(accs)),
                "std": float(np.std(accs)),
                "draws": accs,
                "chosen": chosen,
            }
        out["k"][str(k)] = row
        print(k, {n: round(v["mean"], 3) for n, v in row.items()}, flush=True)
    return out


def ceiling(emb, truth, dev, test) -> dict:
    """GDA alone on all the dev images, shrinkage by 5-fold cross-validation on them."""
    fold = np.arange(len(dev)) % 5
    cv = {}
    for lam in adapters.PARAMS["gda"]:
        right = 0
        for f in range(5):
            ex = adapters.fit_expert("gda", lam, emb[dev[fold != f]], truth[dev[fold != f]])
            right += int((ex.logits(emb[dev[fold == f]]).argmax(1) == truth[dev[fold == f]]).sum())
        cv[lam] = right / len(dev)
    lam = max(cv, key=lambda x: cv[x])
    ex = adapters.fit_expert("gda", lam, emb[dev], truth[dev])
    return {
        "shrinkage": lam,
        "cv": cv,
        "accuracy": float((ex.logits(emb[test]).argmax(1) == truth[test]).mean()),
    }


def bridged(settings, eyes, emb, feats, truth, dev, test, work: Path, result: dict) -> dict:
    """cifar10-jargon and cifar10-ja bridged by the default 1.5B (`--knowledge names`, into
    `work`), then taught by 1 and 4 examples per label: the names they choose alone, and with
    the adapter on top. Recovery against the plain names' zero-shot on the 300."""
    llm = lazy(lambda: load_reasoner(settings, REASONERS["default"]))
    plain = result["plain"]["zero_shot"]
    out = {}
    for name in ("cifar10-jargon", "cifar10-ja"):
        labels = read_set(settings, name)
        label_set = LabelSet("custom", tuple(labels))
        kw = dict(knowledge="names", templates=TEMPLATES, cache_dir=work, reasoner=llm)
        base = resolve(label_set, eyes, **kw)
        acc = {"bridge": _accuracy(LabelScorer(eyes, base), emb, None, truth, test)}
        chosen = {}
        for k in (1, 4):
            by_names, with_adapter = [], []
            for seed in range(DRAWS):
                shots = draw(truth, dev, k, seed)
                refs = tuple((labels[truth[i]], f"image {i}") for i in shots)  # ids, not sha256
                origins = tuple(r[1] for r in refs)
                ex = Examples(f"{k} per class", refs, emb[shots], origins, feats[shots])
                plan = resolve(label_set, eyes, examples=ex, **kw)
                named = LabelScorer(eyes, replace(plan, examples=None))
                by_names.append(_accuracy(named, emb, None, truth, test))
                taught_ = LabelScorer(eyes, plan)
                with_adapter.append(_accuracy(taught_, emb, feats, truth, test))
                if seed == 0:
                    chosen[str(k)] = {
                        lab: list(r) for lab, r in zip(labels, plan.reads, strict=True)
                    }
            acc[f"names chosen by {k}"] = float(np.mean(by_names))
            acc[f"names chosen by {k} + adapter"] = float(np.mean(with_adapter))
        out[name] = {
            "bridge_names": {lab: list(r) for lab, r in zip(labels, base.reads, strict=True)},
            "chosen_names_seed0": chosen,
            **{m: {"accuracy": v, "recovery": v / plain} for m, v in acc.items()},
        }
        print(name, {m: round(v / plain, 3) for m, v in acc.items()}, flush=True)
    return out


def _accuracy(scorer: LabelScorer, emb, feats, truth, test) -> float:
    f = feats[test] if feats is not None else None
    return float((scorer.probabilities(emb[test], f).argmax(1) == truth[test]).mean())


def timing(scorer, emb, feats, truth, dev) -> dict:
    """The default adapter (GDA on the 1000 features) chosen and fitted for 10 × 16 examples,
    and applied to 1,000 images."""
    shots = draw(truth, dev, 16, 0)
    t = time.perf_counter()
    a = adapters.choose(feats[shots], truth[shots], scorer.probabilities(emb[shots]))
    fit = time.perf_counter() - t
    big, bigf = np.tile(emb, (2, 1))[:1000], np.tile(feats, (2, 1))[:1000]
    zs = scorer.probabilities(big)
    t = time.perf_counter()
    a.probabilities(bigf, zs)
    return {"choose_and_fit_10x16_s": fit, "apply_per_1000_s": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/examples-cifar"))
    args = ap.parse_args()
    settings = Settings.from_env(threads=2)
    eyes = load_scorer(settings, "conse")
    ds, indices, truth, _s300, masks = cifar_split(settings)
    emb, feats = cifar_embeddings(eyes, ds, indices)
    dev, test = np.flatnonzero(masks["632"]), np.flatnonzero(masks["300"])
    variants = {"default: gda, features": (adapters.DEFAULT, feats)}
    variants |= {"gda, embeddings (tag)": (adapters.DEFAULT, emb)}
    variants |= {"any of three, embeddings": (adapters.METHODS, emb)}
    variants |= {f"{m}, embeddings": ((m,), emb) for m in ("prototypes", "tip")}
    result: dict = {
        "eyes": "conse-effnetlite2-minilm (the ConSE stand-in, not CLIP)",
        "features": "ConSE's log ImageNet probabilities (1000), Scorer.encode_with_features",
    }
    plain = zero_shot_of(eyes, CIFAR10)
    result["plain"] = curve(plain, emb, truth, dev, test, variants)
    result["ceiling"] = ceiling(emb, truth, dev, test)
    result["ceiling_features"] = ceiling(feats, truth, dev, test)
    print("ceiling", result["ceiling"], result["ceiling_features"], flush=True)
    result["codes"] = curve(
        zero_shot_of(eyes, CODES), emb, truth, dev, test, {"default": (adapters.DEFAULT, feats)}
    )
    result["bridged"] = bridged(settings, eyes, emb, feats, truth, dev, test, args.work, result)
    result["timing"] = timing(plain, emb, feats, truth, dev)
    print(write("examples_cifar", result))


if __name__ == "__main__":
    main()
