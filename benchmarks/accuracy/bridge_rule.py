"""When to bridge, and what a bridged label keeps → benchmarks/results/bridge_rule.json.

The ConSE stand-in eyes (not CLIP) on the shared CIFAR-10 images (cifar10-300 and the 632 dev
images), with the default 1.5B writing each set's names once (cached in --work). For the plain
names, the four dev sets and every check set (benchmarks/accuracy/label_sets; the Italian,
Portuguese, Dutch, Swedish, Polish, Turkish, Indonesian and British sets were written for this
benchmark and chosen on nothing): the eyes alone; the bridge's names alone; the bridge with each
label the eyes read kept among its read-as names (`own`); the same with the installed
dictionaries first (JMdict, FreeDict: `dictionaries`); and what `--knowledge auto` does under
the rule before (tokenizer only, 70 %, the reasoner alone) and now (`labels.readable`, the
dictionaries, the own text). Recovery = accuracy ÷ the
plain names' eyes-alone accuracy on the same images. Also how often each rule fires on random
10-name subsets of ImageNet's and CIFAR-100's class names (plain English).

    OVISION_DATA=../shared/data python -m benchmarks.accuracy.bridge_rule [--work DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.accuracy.label_bridge import CHECK, DEV, HERE, REASONERS, read_by, read_set
from benchmarks.common import cifar_embeddings, cifar_split, write
from offline_vision.config import Settings
from offline_vision.labels.dictionaries import installed
from offline_vision.labels.plan import keeps_own_text
from offline_vision.labels.readable import (
    looks_unfamiliar,
    unfamiliar,
    unreadable,
)
from offline_vision.labels.sets import CIFAR10, builtin_sets
from offline_vision.labels.writers.names import write_names
from offline_vision.models.loader import load_scorer
from offline_vision.models.reasoners import load_reasoner

NEW_CHECK = tuple(f"cifar10-{x}" for x in ("it", "pt", "nl", "sv", "pl", "tr", "id", "gb"))
WORK = Path("/tmp/bridge-rule")  # where the names files are written (bridge_names_k reads them)
OLD_SHARE = 0.7


def old_rule(labels, eyes) -> bool:
    return len(unreadable(labels, eyes)) >= OLD_SHARE * len(labels)


def fire_rates(eyes) -> dict:
    words = {
        "imagenet": list(builtin_sets()["imagenet"]),
        "cifar100": (HERE / "label_sets" / "cifar100-names.txt").read_text().split("\n")[:100],
    }
    out = {}
    for name, pool in words.items():
        rng = np.random.default_rng(0)
        subsets = [list(rng.choice(pool, 10, replace=False)) for _ in range(500)]
        out[name] = {
            "n": len(subsets),
            "before": int(sum(old_rule(s, eyes) for s in subsets)),
            "now": int(sum(looks_unfamiliar(s, eyes)[0] for s in subsets)),
        }
    return out


def eyes_and_accuracy(settings):
    """The ConSE eyes, and `accuracy(labels, names=None, keep=())`: the shared CIFAR-10
    images' accuracy ({"300": …, "632": …}) under a label set read by those names."""
    eyes = load_scorer(settings, "conse")
    ds, indices, truth, _s300, masks = cifar_split(settings)
    emb, _features = cifar_embeddings(eyes, ds, indices)

    def accuracy(labels, names=None, keep=()) -> dict:
        pred = read_by(eyes, labels, names, keep=keep).probabilities(emb).argmax(1)
        return {s: float((pred == truth)[m].mean()) for s, m in masks.items()}

    return eyes, accuracy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=WORK)
    args = ap.parse_args()
    settings = Settings.from_env(threads=2)
    eyes, accuracy = eyes_and_accuracy(settings)
    plain = accuracy(list(CIFAR10))
    llm = load_reasoner(settings, REASONERS["default"])
    books = installed()
    sets = {"plain": list(CIFAR10)} | {n: read_set(settings, n) for n in DEV + CHECK + NEW_CHECK}
    rows = {}
    for name, labels in sets.items():
        t = time.perf_counter()
        k, _p, cached = write_names(labels, llm, cache_dir=args.work, scorer=eyes)
        names = {lab: list(k.texts.get(lab) or [lab]) for lab in labels}
        bad = unfamiliar(labels, eyes)

        methods = {"eyes": accuracy(labels), "bridge": accuracy(labels, names)}
        own = keeps_own_text(labels, eyes)  # what labels.plan keeps
        methods["own"] = accuracy(labels, names, own)
        t2 = time.perf_counter()
        kd, _p, _c = write_names(labels, llm, cache_dir=args.work, scorer=eyes, dictionaries=books)
        dict_s = round(time.perf_counter() - t2, 1)
        by_dict = {lab: list(kd.texts.get(lab) or [lab]) for lab in labels}
        methods["dictionaries"] = accuracy(labels, by_dict, own)
        methods["auto_before"] = methods["bridge" if old_rule(labels, eyes) else "eyes"]
        fires = looks_unfamiliar(labels, eyes)[0]
        methods["auto_now"] = methods["dictionaries" if fires else "eyes"]
        rows[name] = {
            "kind": "plain" if name == "plain" else "dev" if name in DEV else "check",
            "labels": labels,
            "names": names,
            "unfamiliar": bad,
            "fires_before": old_rule(labels, eyes),
            "fires_now": fires,
            "methods": methods,
            "recovery": {m: {s: round(v[s] / plain[s], 3) for s in v} for m, v in methods.items()},
            "llm_s": None if cached else round(t2 - t, 1),
            "dictionaries": kd.prompts.get("dictionaries", {}),
            "names_with_dictionaries": by_dict,
            "with_dictionaries_s": dict_s,
        }
        print(name, {m: v["632"] for m, v in rows[name]["recovery"].items()}, flush=True)
    out = write(
        "bridge_rule",
        {
            "eyes": "conse-effnetlite2-minilm (the ConSE stand-in, not CLIP)",
            "reasoner": llm.describe(),
            "plain_eyes": plain,
            "sets": rows,
            "fire_rates": fire_rates(eyes),
        },
    )
    print(out)


if __name__ == "__main__":
    main()
