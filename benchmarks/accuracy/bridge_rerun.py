"""The CIFAR-10 label sets bridged again by the current writer (dictionaries included) with one
reasoner, on the 932 shared images with the ConSE stand-in: each set's `bridge` accuracy now
against the one recorded in benchmarks/results/label_bridge.json (the writer before).

    OVISION_DATA=../shared/data python -m benchmarks.accuracy.bridge_rerun [--reasoner default]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.accuracy.label_bridge import REASONERS, read_by
from benchmarks.common import RESULTS, cifar_embeddings, cifar_split
from offline_vision.config import Settings
from offline_vision.labels import plan
from offline_vision.labels.sets import LabelSet
from offline_vision.models.loader import load_scorer
from offline_vision.models.reasoners import load_reasoner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reasoner", default="default", choices=("default", "fast"))
    ap.add_argument("--sets", help="Comma list of the sets to bridge again (default: all).")
    args = ap.parse_args()
    settings = Settings.from_env(threads=2)
    eyes = load_scorer(settings, "conse")
    ds, indices, truth, _s300, masks = cifar_split(settings)
    emb, _features = cifar_embeddings(eyes, ds, indices)
    recorded = json.loads((RESULTS / "label_bridge.json").read_text())["reasoners"][args.reasoner]
    llm = load_reasoner(settings, REASONERS[args.reasoner])
    rows, work = {}, Path(tempfile.mkdtemp(prefix="bridge-rerun-"))
    for name, row in recorded["sets"].items():
        if args.sets and name not in args.sets.split(","):
            continue
        labels, t = row["labels"], time.perf_counter()
        k, _p, _c = plan.write(
            LabelSet("custom", tuple(labels)), "names", eyes, llm, cache_dir=work
        )
        names = {lab: list(k.texts.get(lab) or [lab]) for lab in labels}
        pred = read_by(eyes, labels, names).probabilities(emb).argmax(1)
        now = {s: float((pred == truth)[m].mean()) for s, m in masks.items()}
        before = {s: row["methods"]["bridge"][s]["accuracy"] for s in now}
        rows[name] = {
            "names": names,
            "before_names": row["names"],
            "now": now,
            "before": before,
            "points": {s: round(100 * (now[s] - before[s]), 1) for s in now},
            "dictionaries": k.prompts.get("dictionaries", {}),
            "wall_s": round(time.perf_counter() - t, 1),
        }
        print(name, rows[name]["points"], flush=True)
    print(json.dumps({"reasoner": llm.describe(), "sets": rows}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
