"""The catalog against classify, on the 932 shared CIFAR-10 PNGs with the ConSE stand-in, and
tag at scale on synthetic stored embeddings → benchmarks/results/catalog.json.

Real images: the eyes' raw batch throughput on decoded images; `classify` (decode + embed +
score); `index` the first time and again unchanged; `tag` (stored embeddings only) with the
cifar10 label set — its T1 accuracy must be `eval clip`'s; search precision@10 for
"a photo of a {class}". Scale: random unit vectors in the real Parquet format, N stored × L
labels, tag's wall time (all rows consumed), the matrix product's own time and GFLOP/s, and
the process's peak RSS so far.

    OVISION_DATA=../shared/data python -m benchmarks.speed.catalog
"""

from __future__ import annotations

import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.common import catalog_of, cifar_split, peak_rss_mb, random_parts, write
from offline_vision.catalog.distributed import on_ray
from offline_vision.catalog.index import index
from offline_vision.catalog.store import Catalog
from offline_vision.catalog.tag import search, tag
from offline_vision.classification import classify_images
from offline_vision.config import Settings
from offline_vision.labels.plan import plan_of
from offline_vision.labels.sets import CIFAR10, LabelSet, default_templates
from offline_vision.models.loader import load_scorer


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def real(settings, eyes, work: Path) -> dict:
    ds, indices, truth, _s300, _masks = cifar_split(settings)
    paths = [ds.root / ds.item(i).source for i in indices]
    plan = plan_of(LabelSet("cifar10", CIFAR10), default_templates("cifar10", eyes.templates))
    images = [ds.image(i) for i in indices]
    t = time.perf_counter()
    for s in range(0, len(images), 32):
        eyes.encode_images(images[s : s + 32])
    eyes_s = time.perf_counter() - t
    t = time.perf_counter()
    results = list(classify_images(eyes, paths, plan, top_k=1))
    classify_s = time.perf_counter() - t
    cat = work / "cifar"
    first = index(paths, cat, eyes)
    again = index(paths, cat, eyes)
    c = Catalog.open(cat, eyes)
    t = time.perf_counter()
    tagged = {r["image"]: r["cifar10"][0]["label"] for r in tag(c, {"cifar10": plan}, eyes)}
    tag_s = time.perf_counter() - t
    want = {str(p.resolve()): CIFAR10[y] for p, y in zip(paths, truth, strict=True)}
    acc = float(np.mean([tagged[p] == want[p] for p in want]))
    classify_acc = float(
        np.mean(
            [r["labels"][0]["label"] == CIFAR10[y] for r, y in zip(results, truth, strict=True)]
        )
    )
    t = time.perf_counter()  # Ray Data: 2 actors of 1 thread, a local Ray started and stopped
    on_two = on_ray(partial(load_scorer, replace(settings, threads=1), "conse"), address=None, workers=2, threads=1)  # fmt: skip
    by_ray = index(paths, work / "cifar-ray", eyes, embedder=on_two)
    ray_s = time.perf_counter() - t
    half = work / "cifar16"  # float16 storage: the same images, half the bytes per value
    index(paths, half, eyes, dtype="float16")
    h = Catalog.open(half, eyes)
    tagged16 = {r["image"]: r["cifar10"][0]["label"] for r in tag(h, {"cifar10": plan}, eyes)}
    acc16 = float(np.mean([tagged16[p] == want[p] for p in want]))
    p10 = {}
    for cls in CIFAR10:
        hits = search(c, eyes, text=f"a photo of a {cls}", top=10)
        p10[cls] = sum(want[h["image"]] == cls for h in hits) / 10
    n = len(paths)
    return {
        "images": n,
        "eyes_raw_images_per_s": n / eyes_s,
        "classify_images_per_s": n / classify_s,
        "index_first": {
            **{k: first[k] for k in ("added", "failed")},
            "seconds": first["seconds"],
            "images_per_s": n / first["seconds"],
        },
        "index_again_unchanged_s": again["seconds"],
        "index_vs_eyes": (n / first["seconds"]) / (n / eyes_s),
        "reindex_share_of_first": again["seconds"] / first["seconds"],
        "tag_s": tag_s,
        "tag_accuracy": acc,
        "classify_accuracy": classify_acc,
        "search_precision_at_10": p10,
        "search_precision_at_10_mean": float(np.mean(list(p10.values()))),
        "bytes_per_image_fp32": sum(p.stat().st_size for p in c.parts()) / n,
        "bytes_per_image_fp16": sum(p.stat().st_size for p in h.parts()) / n,
        "index_ray_2x1": {"seconds": ray_s, "added": by_ray["added"], "images_per_s": n / ray_s},
        "tag_accuracy_fp16": acc16,
        "fp16_changed_top1": sum(tagged16[p] != tagged[p] for p in want),
    }


# A fresh process that tags a catalog with N labels (all rows consumed) and prints its seconds:
# its peak RSS is tag's own (the eyes loaded, no images decoded), not this benchmark's.
CHILD = """
import sys, time
from pathlib import Path
from offline_vision.catalog.store import Catalog
from offline_vision.catalog.tag import tag
from offline_vision.config import Settings
from offline_vision.labels.plan import plan_of
from offline_vision.labels.sets import LabelSet
from offline_vision.models.loader import load_scorer
eyes = load_scorer(Settings.from_env(threads=2), "conse")
names = tuple(f"item {i}" for i in range(int(sys.argv[2])))
plan = plan_of(LabelSet("custom", names), ("a photo of a {}",))
cat = Catalog.open(Path(sys.argv[1]), eyes)
t = time.perf_counter()
n = sum(1 for _ in tag(cat, {"g": plan}, eyes)) if sys.argv[2] != "0" else 0
print(time.perf_counter() - t, n)
"""


def fresh_tag(cat: Path, n_labels: int) -> dict:
    """tag in a process of its own: its seconds and peak RSS, and the peak RSS of the same
    process opening the catalog without tagging (its "eyes_alone_rss_mb": ConSE's sessions
    load lazily, so little more than Python and pyarrow)."""
    _w, base_mb, _ = peak_rss_mb([sys.executable, "-c", CHILD, str(cat), "0"])
    _w, rss_mb, out = peak_rss_mb([sys.executable, "-c", CHILD, str(cat), str(n_labels)])
    seconds, rows = out.split()
    return {
        "labels": n_labels,
        "rows": int(rows),
        "tag_s": float(seconds),
        "peak_rss_mb": rss_mb,
        "eyes_alone_rss_mb": base_mb,
    }


def scale(
    eyes, work: Path, sizes=(10_000, 100_000, 1_000_000), label_counts=(10, 50, 100, 1000)
) -> list[dict]:
    rng = np.random.default_rng(0)
    dim = eyes.encode_labels(["x"])[0].shape[0]
    out = []
    for n in sizes:
        cat = catalog_of(work / f"syn{n}", eyes, random_parts(n, dim, rng))
        for n_labels in label_counts:
            names = tuple(f"item {i}" for i in range(n_labels))
            plan = plan_of(LabelSet("custom", names), ("a photo of a {}",))
            eyes.encode_labels(list(names), ("a photo of a {}",))  # text embeddings cached first
            t = time.perf_counter()
            rows = sum(1 for _ in tag(cat, {"g": plan}, eyes))
            wall = time.perf_counter() - t
            lab = eyes.encode_labels(list(names), ("a photo of a {}",))
            mm = 0.0
            for _paths, emb in cat.chunks():  # the matrix products alone, on the same chunks
                t = time.perf_counter()
                _ = emb @ lab.T
                mm += time.perf_counter() - t
            out.append({
                "stored": n, "labels": n_labels, "rows": rows, "tag_s": wall, "matmul_s": mm,
                "matmul_gflops": 2 * n * dim * n_labels / mm / 1e9, "peak_rss_mb_so_far": _rss_mb(),
            })  # fmt: skip
            print(out[-1], flush=True)
        if n == max(sizes):
            out.append({"stored": n, "fresh_process": fresh_tag(work / f"syn{n}", 50)})
            print(out[-1], flush=True)
    return out


def main() -> None:
    settings = Settings.from_env(threads=2)
    eyes = load_scorer(settings, "conse")
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        r = real(settings, eyes, work)
        print(r, flush=True)
        s = scale(eyes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(
        "catalog",
        {"scorer": eyes.describe(), "note": "ConSE stand-in eyes, not CLIP", "real": r, "scale": s},
    )


if __name__ == "__main__":
    main()
