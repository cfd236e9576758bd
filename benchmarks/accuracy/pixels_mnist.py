"""Pixel prompting on the same seeded 200 MNIST test digits: every strategy, both GGUFs, the
hosted path, and the knn / majority baselines → benchmarks/results/pixels_mnist.json.

Runs go to runs/pixels/<row>/ through `ovision eval pixels`, which appends and resumes: stop
this script at any time and start it again to continue.

    python -m benchmarks.accuracy.pixels_mnist [--limit 200] [--only ROW ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.common import llama_server, write
from offline_vision.config import Settings
from offline_vision.eval.datasets import Mnist
from offline_vision.eval.report import load_run, paired
from offline_vision.models.provision import registry, store
from offline_vision.pixels import ENCODINGS, encode, to_grid

RUNS = Path("runs/pixels")
BIG, FAST = f"local:{registry.GGUF}", f"local:{registry.GGUF_FAST}"
ASCII = ["--encoding", "ascii"]
ROWS = {
    "knn": ["--strategy", "knn"],
    "majority": ["--strategy", "majority"],
    "seed": ["--strategy", "seed", "--reasoner", BIG],
    "zero-shot": ["--strategy", "zero-shot", *ASCII, "--reasoner", BIG],
    "few-shot": ["--strategy", "few-shot", "--shots", "5", *ASCII, "--reasoner", BIG],
    "retrieved": ["--strategy", "retrieved", "--shots", "5", *ASCII, "--reasoner", BIG],
    "feedback": ["--strategy", "feedback", *ASCII, "--reasoner", BIG],
    "retrieved-0.5b": ["--strategy", "retrieved", "--shots", "5", *ASCII, "--reasoner", FAST],
    "retrieved-0.5b-server": [
        "--strategy",
        "retrieved",
        "--shots",
        "5",
        *ASCII,
        "--reasoner",
        "openai:qwen-0.5b",
    ],
    # The same prompts with one digit 0-9 a cell (4.6x the tokens of ascii).
    "zero-shot-digits": ["--strategy", "zero-shot", "--encoding", "digits", "--reasoner", BIG],
    "few-shot-digits": [
        "--strategy",
        "few-shot",
        "--shots",
        "5",
        "--encoding",
        "digits",
        "--reasoner",
        BIG,
    ],
}


def ovision(*args: str) -> None:
    exe = Path(sys.executable).with_name("ovision")
    subprocess.run([str(exe), *args], check=True)


def token_counts(settings: Settings, n: int = 50) -> dict:
    from offline_vision.models.reasoners import load_reasoner

    r = load_reasoner(settings, BIG)
    test = Mnist(settings.data_dir / "mnist", "test")
    grids = [to_grid(test.images[i]) for i in range(n)]
    return {e: float(np.mean([r.count_tokens(encode(g, e)) for g in grids])) for e in ENCODINGS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--only", nargs="*", choices=list(ROWS))
    args = ap.parse_args()
    settings = Settings.from_env()
    common = ["eval", "pixels", "--limit", str(args.limit), "--seed", "0"]
    for row in args.only or ROWS:
        out = RUNS / row
        if "server" in row:
            gguf = store.load(settings.models_dir, registry.GGUF_FAST).file("model.gguf")
            with llama_server(gguf, settings.threads) as url:
                ovision(*common, *ROWS[row], "--base-url", url, "--out", str(out))
        else:
            ovision(*common, *ROWS[row], "--out", str(out))

    runs = {row: load_run(RUNS / row) for row in ROWS if (RUNS / row / "summary.json").exists()}
    table = {}
    train = Mnist(settings.data_dir / "mnist", "train")
    for row, run in runs.items():
        s = run.summary
        entry = {
            "accuracy": s["accuracy"],
            "ci95": s["ci95"],
            "n": s["n"],
            "seconds_per_digit": s["latency_s"]["mean"],
            "tokens_per_digit": {k: v["per_item"] for k, v in s["tokens"].items()},
            "config": {k: v for k, v in s["config"].items() if k != "reasoner"},
            "reasoner": (s["config"].get("reasoner") or {}).get("name"),
        }
        if "knn" in runs and row != "knn":
            entry["vs_knn"] = paired(run, runs["knn"])
        shown = [r for r in run.records if len(r.get("examples") or []) > 1]
        if shown and s["config"].get("strategy") == "retrieved":
            # How much of the answer is the retrieval's: the label most of the K examples carry.
            def vote(r):
                return Counter(str(train.labels[i]) for i in r["examples"]).most_common(1)[0][0]

            entry["answer_equals_majority_label_of_examples"] = sum(
                r["prediction"] == vote(r) for r in shown
            ) / len(shown)
            entry["answer_is_one_of_the_example_labels"] = sum(
                r["prediction"] in {str(train.labels[i]) for i in r["examples"]} for r in shown
            ) / len(shown)
        table[row] = entry
    ovision("report", *[str(RUNS / r) for r in runs], "--out", str(RUNS / "report"))
    result = {
        "digits": args.limit,
        "seed": 0,
        "rows": table,
        "prompt_tokens_per_grid_by_encoding": token_counts(settings),
    }
    print(
        json.dumps(
            {
                r: (round(t["accuracy"], 3), round(t["seconds_per_digit"], 2))
                for r, t in table.items()
            }
        )
    )
    print("wrote", write("pixels_mnist", result))


if __name__ == "__main__":
    main()
