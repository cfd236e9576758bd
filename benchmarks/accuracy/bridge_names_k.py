"""How many names a bridged label should be read by → benchmarks/results/bridge_names_k.json.

The names files `benchmarks.accuracy.bridge_rule` wrote into its --work folder (the default
1.5B, the installed dictionaries), read back without asking anything: each label read by its
bridged name alone (K = 1, what the plan does), or by the mean of its first K names (the name,
then the bridge's other answer or the dictionary's other glosses). ConSE stand-in eyes (not
CLIP); recovery on the 632 dev images. K is chosen on the dev sets; the check sets are shown.

    OVISION_DATA=../shared/data python -m benchmarks.accuracy.bridge_names_k [--work DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.accuracy.bridge_rule import NEW_CHECK, WORK, eyes_and_accuracy
from benchmarks.accuracy.label_bridge import CHECK, DEV, read_set
from benchmarks.common import write
from offline_vision.config import Settings
from offline_vision.labels.plan import keeps_own_text
from offline_vision.labels.sets import CIFAR10

KS = (1, 2, 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=WORK)
    args = ap.parse_args()
    settings = Settings.from_env(threads=2)
    eyes, accuracy = eyes_and_accuracy(settings)
    plain = accuracy(list(CIFAR10))["632"]
    files = [json.loads(f.read_text()) for f in (args.work / "knowledge").glob("names-*.json")]
    rows = {}
    for name in DEV + CHECK + NEW_CHECK:
        labels = read_set(settings, name)
        written = [k for k in files if k["labels"] == labels]
        if not written:
            raise SystemExit(f"{name}: no names file in {args.work}; run bridge_rule first")
        k = max(written, key=lambda k: len(k["prompts"].get("dictionaries") or {}))
        own = keeps_own_text(labels, eyes)
        rows[name] = {"kind": "dev" if name in DEV else "check"}
        for n in KS:
            names = {
                lab: list(
                    dict.fromkeys(k["texts"][lab] + k["choices"].get(lab, {}).get("options", []))
                )[:n]
                for lab in labels
            }
            rows[name][f"k{n}"] = round(accuracy(labels, names, own)["632"] / plain, 3)
        print(name, rows[name], flush=True)
    dev_mean = {
        f"k{n}": round(sum(r[f"k{n}"] for r in rows.values() if r["kind"] == "dev") / len(DEV), 3)
        for n in KS
    }
    print(write("bridge_names_k", {"sets": rows, "dev_mean": dev_mean}))


if __name__ == "__main__":
    main()
