"""Replays the names each reasoner wrote in benchmarks/results/label_bridge.json through the label
plan, on the 932 shared CIFAR-10 images with the ConSE stand-in, and compares each set's `eyes`
and `bridge` accuracy with the recorded one — the label path checked without running an LLM.

    OVISION_DATA=../shared/data python -m benchmarks.accuracy.bridge_replay
"""

from __future__ import annotations

import json

from benchmarks.accuracy.label_bridge import TEMPLATES, read_by
from benchmarks.common import RESULTS, cifar_embeddings, cifar_split
from offline_vision.config import Settings
from offline_vision.models.loader import load_scorer


def main() -> None:
    settings = Settings.from_env(threads=2)
    eyes = load_scorer(settings, "conse")
    ds, indices, truth, _s300, masks = cifar_split(settings)
    emb, _features = cifar_embeddings(eyes, ds, indices)
    recorded = json.loads((RESULTS / "label_bridge.json").read_text())
    rows, worst = [], 0.0
    for rname, r in recorded["reasoners"].items():
        for set_name, row in r["sets"].items():
            labels = row["labels"]
            for method, names in (("eyes", None), ("bridge", row["names"])):
                pred = read_by(eyes, labels, names).probabilities(emb).argmax(1)
                got = {s: float((pred == truth)[m].mean()) for s, m in masks.items()}
                want = {s: row["methods"][method][s]["accuracy"] for s in got}
                diff = max(abs(got[s] - want[s]) for s in got)
                worst = max(worst, diff)
                rows.append(
                    {
                        "reasoner": rname,
                        "set": set_name,
                        "method": method,
                        "now": got,
                        "recorded": want,
                        "max_abs_diff": diff,
                    }
                )
    print(json.dumps({"templates": TEMPLATES, "rows": rows, "max_abs_diff": worst}, indent=1))


if __name__ == "__main__":
    main()
