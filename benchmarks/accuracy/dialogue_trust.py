"""Choosing the adaptive dialogue's `trust` on images outside cifar10-300
→ benchmarks/results/dialogue_trust.json.

The gate answers with the eyes when their top label scores ≥ trust and runs the dialogue
otherwise; a dialogue does not depend on the trust that let it run. So one run at the highest
trust of interest gives the result at every lower one: eyes' answer where their top ≥ t, the
recorded dialogue's answer below.

    ovision eval clip --dataset cifar10 --sample benchmarks/accuracy/cifar10-non300.txt \\
        --out runs/dev/t1-non300
    ovision eval dialogue --dataset cifar10 --sample benchmarks/accuracy/cifar10-non300.txt \\
        --policy adaptive --trust 0.6 --no-probe --out runs/dev/t2-trust0.6-non300
    python -m benchmarks.accuracy.dialogue_trust

Images the dialogue run has not reached yet (it resumes) are left out of every figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import write
from offline_vision.eval.records import RECORDS, read_records
from offline_vision.eval.stats import mcnemar_exact


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dialogue", default="runs/dev/t2-trust0.6-non300")
    ap.add_argument("--baseline", default="runs/dev/t1-non300")
    args = ap.parse_args()
    dialogue = {r.id: r.to_json() for r in read_records(Path(args.dialogue) / RECORDS)}
    eyes = {r.id: r.to_json() for r in read_records(Path(args.baseline) / RECORDS)}
    ran_at = json.loads((Path(args.dialogue) / "config.json").read_text())["dialogue"]["trust"]
    ids = [i for i in dialogue if i in eyes]

    def tally(pick) -> dict:
        """Accuracy and wins/losses against the eyes when `pick(eyes_record, dialogue_record)`
        says whether the dialogue's answer stands (else the eyes' top label is the answer)."""
        right = wins = losses = asked = 0
        for i in ids:
            e, d = eyes[i], dialogue[i]
            if not pick(e, d):
                right += e["correct"]
                continue
            asked += 1
            right += d["correct"]
            wins += d["correct"] and not e["correct"]
            losses += e["correct"] and not d["correct"]
        return {"asked": asked, "accuracy": right / len(ids), "wins": wins, "losses": losses}

    rows = []
    for k in range(round(ran_at / 0.05) + 1):
        t = round(0.05 * k, 2)
        r = tally(lambda e, d, t=t: e["top"][0][1] < t)
        rows.append(
            {
                "trust": t,
                "asked": r["asked"],
                "accuracy": r["accuracy"],
                "wins_vs_eyes": r["wins"],
                "losses_vs_eyes": r["losses"],
                "mcnemar_p": mcnemar_exact(r["wins"], r["losses"]),
            }
        )
    # A variant that was tried and not adopted: the LLM may overrule the eyes only in a close
    # call, i.e. its answer stands when the eyes give it ≥ ratio × their top label's score.
    close_calls = []
    for t in (0.3, 0.4, 0.5, 0.6):
        for ratio in (0.5, 0.7, 0.8, 0.9, 0.95):

            def close(e, d, t=t, ratio=ratio):
                top = e["top"][0][1]
                return (
                    t <= ran_at
                    and top < t
                    and dict(e["top"]).get(d["prediction"], 0.0) >= ratio * top
                )

            r = tally(close)
            close_calls.append(
                {
                    "trust": t,
                    "ratio": ratio,
                    "accuracy": r["accuracy"],
                    "wins": r["wins"],
                    "losses": r["losses"],
                }
            )
    eyes_acc = sum(eyes[i]["correct"] for i in ids) / len(ids)
    # The most accurate trust; on a tie the higher one: the dialogue is asked as often as it
    # can be without costing accuracy on these images.
    best = max(rows, key=lambda r: (r["accuracy"], r["trust"]))
    out = {
        "dialogue_run": args.dialogue,
        "baseline_run": args.baseline,
        "n": len(ids),
        "eyes_accuracy": eyes_acc,
        "by_trust": rows,
        "close_calls_only": close_calls,
        "best": best,
    }
    for r in rows:
        print(
            f"trust {r['trust']:.2f}: asked {r['asked']:3d}  acc {r['accuracy']:.3f}  "
            f"wins {r['wins_vs_eyes']}  losses {r['losses_vs_eyes']}"
        )
    print(f"n {len(ids)}, eyes alone {eyes_acc:.3f}; best trust {best['trust']}")
    print("wrote", write("dialogue_trust", out))


if __name__ == "__main__":
    main()
