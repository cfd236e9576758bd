"""ConSE, the stand-in scorer, on all 932 CIFAR-10 test images in the shared data: the Trial 1
accuracy over the 10 class names (through `ovision eval clip`), the hierarchy figures the
dialogue leans on, and per-image latency → benchmarks/results/conse_cifar.json.

    python -m benchmarks.accuracy.conse_cifar
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import write
from offline_vision.config import Settings
from offline_vision.eval.datasets import open_dataset
from offline_vision.eval.report import load_run
from offline_vision.labels.sets import default_templates
from offline_vision.models.loader import load_scorer

RUN = Path("runs/conse/clip-cifar10-all-conse")
VEHICLES = {"airplane", "automobile", "ship", "truck"}
GROUPS = {
    "bird": "bird",
    "cat": "mammal",
    "deer": "mammal",
    "dog": "mammal",
    "frog": "amphibian",
    "horse": "mammal",
}
# Reference figures from the prototype (MODELS.md / issue 7), for the ±3-point check.
REFERENCE = {
    "accuracy": 0.639,
    "vehicle_vs_animal": 0.946,
    "vertebrate_on_animals": 0.96,
    "five_groups_on_animals": 0.78,
}


def main() -> None:
    exe = Path(sys.executable).with_name("ovision")
    subprocess.run(
        [str(exe), "eval", "clip", "--scorer", "conse", "--dataset", "cifar10", "--out", str(RUN)],
        check=True,
    )
    run = load_run(RUN)
    settings = Settings.from_env()
    ds = open_dataset(settings.data_dir, "cifar10")
    scorer = load_scorer(settings, "conse")
    t = default_templates("custom", scorer.templates)
    images = [ds.image(i) for i in ds.indices]
    truth = [ds.item(i).label for i in ds.indices]
    start = time.perf_counter()
    emb = np.concatenate([scorer.encode_images(images[i : i + 1]) for i in range(len(images))])
    per_image_ms = (time.perf_counter() - start) / len(images) * 1e3

    def pick(labels):
        return [
            labels[k] for k in scorer.probabilities(emb, scorer.encode_labels(labels, t)).argmax(1)
        ]

    kind = pick(["vehicle", "animal"])
    vert = pick(["vertebrate animal", "invertebrate"])
    five = pick(["mammal", "bird", "fish", "reptile", "amphibian"])
    animal = [i for i, y in enumerate(truth) if y not in VEHICLES]
    figures = {
        "accuracy": run.summary["accuracy"],
        "vehicle_vs_animal": float(
            np.mean([(kind[i] == "vehicle") == (y in VEHICLES) for i, y in enumerate(truth)])
        ),
        "vertebrate_on_animals": float(np.mean([vert[i] == "vertebrate animal" for i in animal])),
        "five_groups_on_animals": float(np.mean([five[i] == GROUPS[truth[i]] for i in animal])),
    }
    result = {
        "scorer": run.summary["config"]["scorer"],
        "images": len(images),
        "ci95": run.summary["ci95"],
        "per_class": run.summary["per_class"],
        "figures": figures,
        "reference": REFERENCE,
        "within_3_points": {k: abs(figures[k] - REFERENCE[k]) <= 0.03 for k in REFERENCE},
        "per_image_ms_batch1": per_image_ms,
        "eval_clip_seconds_per_image": run.summary["latency_s"]["mean"],
        "label_prompt_template": t,
    }
    print(json.dumps(figures, indent=1), f"{per_image_ms:.1f} ms/image")
    print("wrote", write("conse_cifar", result))


if __name__ == "__main__":
    main()
