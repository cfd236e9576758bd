"""What a multi-label group costs `tag` → benchmarks/results/tag_multi.json.

A synthetic catalog (random unit vectors in the real Parquet format, ConSE's width) tagged with
one 50-label group, single-label and multi-label (`--multi`: a calibration pass over the
catalog first, then every label's z per image), interleaved in blocks; all rows consumed. The
ratio is what to read; seconds depend on the machine.

    python -m benchmarks.speed.tag_multi [--stored 100000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import catalog_of, random_parts, time_blocks, write
from offline_vision.catalog.tag import tag
from offline_vision.config import Settings
from offline_vision.labels.plan import plan_of
from offline_vision.labels.sets import LabelSet
from offline_vision.models.loader import load_scorer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stored", type=int, default=100_000)
    ap.add_argument("--labels", type=int, default=50)
    args = ap.parse_args()
    eyes = load_scorer(Settings.from_env(threads=2), "conse")
    names = tuple(f"item {i}" for i in range(args.labels))
    plan = plan_of(LabelSet("custom", names), ("a photo of a {}",))
    eyes.encode_labels(list(names), ("a photo of a {}",))  # text embeddings cached first
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        dim = eyes.encode_labels(["x"])[0].shape[0]
        cat = catalog_of(Path(tmp) / "syn", eyes, random_parts(args.stored, dim, rng))

        def run(multi):
            return lambda: sum(1 for _ in tag(cat, {"g": plan}, eyes, multi=multi))

        times = time_blocks({"single": run(()), "multi": run(("g",))}, reps=1, rounds=3, warmup=1)
    result = {
        "stored": args.stored,
        "labels": args.labels,
        "times": times,
        "multi_over_single": times["multi"]["median_s"] / times["single"]["median_s"],
    }
    print(result)
    print(write("tag_multi", result))


if __name__ == "__main__":
    main()
