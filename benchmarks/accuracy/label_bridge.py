"""The bridge on renamed CIFAR-10 label sets, with the ConSE stand-in eyes (not CLIP) →
benchmarks/results/label_bridge.json (its tables in docs/results.md).

For the plain names, the four dev label sets ($OVISION_DATA/label_sets) and four check sets
(benchmarks/accuracy/label_sets, chosen on nothing), on cifar10-300 and on the 632 dev images:
the eyes alone; the bridge (`--knowledge names`); the bridge + descriptions; today's
descriptions and subclasses over the raw names; random names (one random word per label, the
bridge's size, knowing nothing); and what the default (`--knowledge auto`) does. Recovery =
accuracy ÷ the plain names' eyes-alone accuracy on the same images. Also: the unfamiliar-label
rule on every set and on random 10-name subsets of ImageNet's class names (plain English that
should not fire), and the dialogue (T2, adaptive, default settings) on the 300 under cifar10-ja.
Every image is embedded once; knowledge is written into --work (resumable), so LLM seconds are
what a first run pays.

    python -m benchmarks.accuracy.label_bridge [--reasoners default,fast,server] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, cifar_embeddings, cifar_split, open_reasoner, write
from offline_vision.config import Settings
from offline_vision.dialogue import DialogueConfig, run_dialogue
from offline_vision.eval.stats import mcnemar_exact, wilson
from offline_vision.labels.plan import plan_of
from offline_vision.labels.readable import UNFAMILIAR_SHARE, looks_unfamiliar
from offline_vision.labels.scoring import LabelScorer
from offline_vision.labels.sets import CIFAR10, LabelSet, builtin_sets
from offline_vision.labels.store import Knowledge
from offline_vision.labels.writers.names import write_names
from offline_vision.labels.writers.texts import expand
from offline_vision.models.loader import load_scorer
from offline_vision.models.provision import registry

HERE = Path(__file__).parent
DEV = ("cifar10-ja", "cifar10-fr", "cifar10-latin", "cifar10-jargon")
CHECK = ("cifar10-de", "cifar10-es", "cifar10-zh", "cifar10-jargon2")
REASONERS = {
    "default": f"local:{registry.GGUF}",
    "fast": f"local:{registry.GGUF_FAST}",
    "server": "openai:qwen-0.5b",  # the 0.5B through llama_cpp.server on 127.0.0.1
}
TEMPLATES = ("a photo of a {}",)  # ConSE's one template, for every label set


def read_set(settings: Settings, name: str) -> list[str]:
    folder = settings.data_dir / "label_sets" if name in DEV else HERE / "label_sets"
    return [x.strip() for x in (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines()]


def random_names(labels, seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)
    word = lambda: "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 8)))  # noqa: E731
    return {label: [word()] for label in labels}


def stats(pred, truth, mask, base, plain_acc) -> dict:
    ok, other = pred == truth, base == truth
    k, n = int(ok[mask].sum()), int(mask.sum())
    lo, hi = wilson(k, n)
    wins, losses = int((ok & ~other)[mask].sum()), int((~ok & other)[mask].sum())
    return {
        "n": n,
        "accuracy": k / n,
        "ci95": [lo, hi],
        "recovery": (k / n) / plain_acc,
        "vs_eyes": {"wins": wins, "losses": losses, "p": mcnemar_exact(wins, losses)},
    }


def rule_table(settings, eyes, sets: dict) -> dict:
    """What the unfamiliar-label rule says of each set, and how often it fires on plain English
    (random 10-name subsets of ImageNet's class names, which include many rare words)."""
    out = {"share": UNFAMILIAR_SHARE, "sets": {}}
    for name, labels in sets.items():
        fires, bad = looks_unfamiliar(labels, eyes)
        out["sets"][name] = {"fires": fires, "unreadable": bad}
    plain = {
        "imagenet": list(builtin_sets()["imagenet"]),
        "cifar100": (HERE / "label_sets" / "cifar100-names.txt").read_text().split("\n")[:100],
    }
    rng = np.random.default_rng(0)
    for name, words in plain.items():
        subsets = [list(rng.choice(words, 10, replace=False)) for _ in range(500)]
        out[f"{name}_subsets"] = {
            "n": len(subsets),
            "fired": int(sum(looks_unfamiliar(s, eyes)[0] for s in subsets)),
            "unreadable_share": len(looks_unfamiliar(words, eyes)[1]) / len(words),
        }
    return out


def read_by(eyes, labels, names=None, knowledge=None, keep=()) -> LabelScorer:
    """The eyes over `labels`, each read by its `names` (a bridge's; after its own text for the
    labels in `keep`), with `knowledge` mixed in."""
    bridge = Knowledge("names", list(labels), texts=names) if names else None
    label_set = LabelSet("custom", tuple(labels))
    plan = plan_of(label_set, TEMPLATES, bridge=bridge, knowledge=knowledge, keep=keep)
    return LabelScorer(eyes, plan)


def run_reasoner(llm, eyes, emb, truth, masks, sets, plain_acc, work: Path) -> dict:
    res: dict = {"reasoner": llm.describe(), "sets": {}}
    for name, labels in sets.items():
        t = time.perf_counter()
        bridge, _, _ = write_names(labels, llm, cache_dir=work, scorer=eyes)
        names = plan_of(LabelSet("custom", tuple(labels)), TEMPLATES, bridge=bridge).names
        eye = [names[lab][0] for lab in labels]
        know = {"bridge": (None, names)}
        seconds = {"bridge": bridge.llm_seconds}
        if name in DEV:  # the knowledge strategies: on the dev sets (the plain: knowledge_cifar)
            k, _, _ = expand(eye, "descriptions", llm, cache_dir=work)
            know["bridge+descriptions"], seconds["bridge+descriptions"] = (k, names), k.llm_seconds
            for strategy in ("descriptions", "subclasses"):
                k, _, _ = expand(labels, strategy, llm, cache_dir=work)
                know[strategy], seconds[strategy] = (k, None), k.llm_seconds
        preds = {"eyes": read_by(eyes, labels).probabilities(emb).argmax(1)}
        preds["random names"] = (
            read_by(eyes, labels, random_names(labels)).probabilities(emb).argmax(1)
        )
        for method, (k, nm) in know.items():
            preds[method] = read_by(eyes, labels, nm, k).probabilities(emb).argmax(1)
        fires = looks_unfamiliar(labels, eyes)[0]
        preds["default (auto)"] = preds["bridge"] if fires else preds["eyes"]
        row = {
            "labels": labels,
            "names": names,
            "conflicts": bridge.conflicts,
            "choices": bridge.choices,
            "rule_fires": fires,
            "llm_seconds": seconds,
            "methods": {},
        }
        for method, pred in preds.items():
            row["methods"][method] = {
                s: stats(pred, truth, masks[s], preds["eyes"], plain_acc[s]) for s in ("300", "632")
            }
        res["sets"][name] = row
        print(f"  {name}: {time.perf_counter() - t:.0f} s; names {eye}", flush=True)
    return res


def dialogue_ja(llm, eyes, ds, indices, labels, names, eyes_pred, truth, work: Path) -> dict:
    """T2 (adaptive, default settings) under cifar10-ja with the bridge, resumable per image."""
    path = work / "dialogue-ja.jsonl"
    done = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            done[r["index"]] = r
    cfg = DialogueConfig(policy="adaptive")
    bridged = LabelSet("custom", tuple(labels), names=names)
    t = time.perf_counter()
    with path.open("a", encoding="utf-8") as f:
        for i in indices:
            if i in done:
                continue
            d = run_dialogue(ds.image(i), eyes, llm, bridged, config=cfg)
            r = {"index": i, "label": d["answer"]["label"], "by_eyes": d["stopped_after"] == 0}
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            done[i] = r
    pred = np.array([labels.index(done[i]["label"]) for i in indices])
    ok, other = pred == truth, eyes_pred == truth
    wins, losses = int((ok & ~other).sum()), int((~ok & other).sum())
    lo, hi = wilson(int(ok.sum()), len(ok))
    return {
        "n": len(ok),
        "accuracy": float(ok.mean()),
        "ci95": [lo, hi],
        "answered_by_eyes": sum(done[i]["by_eyes"] for i in indices),
        "vs_bridged_eyes": {"wins": wins, "losses": losses, "p": mcnemar_exact(wins, losses)},
        "seconds_this_run": time.perf_counter() - t,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reasoners", default="default,fast,server")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("runs/label_bridge"))
    ap.add_argument("--no-dialogue", action="store_true")
    args = ap.parse_args()
    settings = Settings.from_env(threads=args.threads)
    eyes = load_scorer(settings, "conse")
    ds, indices, truth, s300, masks = cifar_split(settings)
    emb, _features = cifar_embeddings(eyes, ds, indices)
    sets = {"plain": list(CIFAR10), **{n: read_set(settings, n) for n in DEV + CHECK}}
    plain = read_by(eyes, list(CIFAR10)).probabilities(emb).argmax(1)
    plain_acc = {s: float((plain == truth)[m].mean()) for s, m in masks.items()}
    out = RESULTS / "label_bridge.json"
    result = json.loads(out.read_text()) if out.exists() else {}
    result.update(
        scorer=eyes.describe(),
        note="ConSE stand-in eyes, not CLIP",
        images={"300": int(masks["300"].sum()), "632": int(masks["632"].sum())},
        plain_eyes=plain_acc,
        rule=rule_table(settings, eyes, sets),
    )
    result.setdefault("reasoners", {})
    print(f"rule: {json.dumps(result['rule']['imagenet_subsets'])}", flush=True)
    with ExitStack() as stack:
        for rname in args.reasoners.split(","):
            llm = open_reasoner(stack, settings, REASONERS[rname], args.threads, 4096)
            print(f"{rname}:", flush=True)
            work = args.work / rname
            t = time.perf_counter()
            r = run_reasoner(llm, eyes, emb, truth, masks, sets, plain_acc, work)
            if not args.no_dialogue:
                ja = sets["cifar10-ja"]
                names = r["sets"]["cifar10-ja"]["names"]
                m = masks["300"]
                bridged = read_by(eyes, ja, names).probabilities(emb[m])
                r["dialogue_ja_300"] = dialogue_ja(
                    llm, eyes, ds, s300, ja, names, bridged.argmax(1), truth[m], work
                )
            r["wall_s"] = time.perf_counter() - t
            result["reasoners"][rname] = r
            write("label_bridge", result)  # after every reasoner: nothing measured is lost
            print(f"{rname}: done in {r['wall_s']:.0f} s", flush=True)
    print("docs/results.md: python scripts/make_results.py")


if __name__ == "__main__":
    main()
