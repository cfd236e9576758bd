"""Label knowledge on CIFAR-10 with the ConSE stand-in eyes (not CLIP): T1 against descriptions,
subclasses (CHiLS), the waffle control, and the differential follow-up (FuDD, K = 2 and 3), with
the default GGUF, the 0.5B GGUF, and the 0.5B behind llama-cpp-python's OpenAI-compatible server
(the hosted stand-in) → benchmarks/results/knowledge_cifar.json (its table in docs/results.md).

Every image is embedded once (PNG, and again re-encoded as JPEG quality 75); each method then
scores the same embeddings through the product's own LabelScorer / FollowUp. Knowledge is written
into a fresh cache, so LLM seconds are what a first run pays. The follow-up threshold is chosen
per (reasoner, K) on the 632 dev images (benchmarks/accuracy/cifar10-non300.txt) and only applied to the
300. The dialogue ending in the follow-up and the fusion dialogue are not built yet: not measured.

    python -m benchmarks.accuracy.knowledge_cifar [--reasoners default,fast,server]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import cifar_split, open_reasoner, write
from offline_vision.config import Settings
from offline_vision.eval.stats import mcnemar_exact, wilson
from offline_vision.labels.plan import plan_of
from offline_vision.labels.scoring import FollowUp, LabelScorer
from offline_vision.labels.sets import CIFAR10, LabelSet, default_templates
from offline_vision.labels.writers.texts import expand, waffle
from offline_vision.models.loader import load_scorer
from offline_vision.models.provision import registry

HERE = Path(__file__).parent
THRESHOLDS = (0.3, 0.5, 0.7, 0.9, 1.01)  # 1.01: every image
REASONERS = {
    "default": f"local:{registry.GGUF}",
    "fast": f"local:{registry.GGUF_FAST}",
    "server": "openai:qwen-0.5b",  # the 0.5B through llama_cpp.server on 127.0.0.1
}


def jpeg75(img: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=75)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def embed(eyes, ds, indices, transform=None) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = []
    for start in range(0, len(indices), 64):
        imgs = [ds.image(i) for i in indices[start : start + 64]]
        out.append(eyes.encode_images([transform(im) for im in imgs] if transform else imgs))
    return np.concatenate(out), time.perf_counter() - t


def follow_preds(follow, emb, probs, mask) -> tuple[np.ndarray, int]:
    """Predictions with the follow-up applied to the images in `mask`; returns (pred, runs)."""
    pred, runs = probs.argmax(1).copy(), 0
    for i in np.where(mask)[0]:
        rec = follow(emb[i], probs[i], list(CIFAR10))
        if rec["ran"]:
            runs += 1
            pred[i] = CIFAR10.index(rec["prediction"])
    return pred, runs


def stats(pred, truth, mask, t1, waffle_pred) -> dict:
    ok, base, w = pred == truth, t1 == truth, waffle_pred == truth
    k, n = int(ok[mask].sum()), int(mask.sum())
    lo, hi = wilson(k, n)
    out = {"n": n, "correct": k, "accuracy": k / n, "ci95": [lo, hi]}
    for name, other in (("vs_t1", base), ("vs_waffle", w)):
        a, b = int((ok & ~other)[mask].sum()), int((~ok & other)[mask].sum())
        out[name] = {"wins": a, "losses": b, "p": mcnemar_exact(a, b)}
    return out


def run_reasoner(name, llm, eyes, emb, truth, masks, templates, t1, cache) -> dict:
    """Every method for one reasoner on both image sets; returns its part of the JSON."""
    res: dict = {"reasoner": llm.describe(), "methods": {}, "llm_seconds": {}}
    know = {}
    for strategy in ("descriptions", "subclasses"):
        k, _path, _ = expand(list(CIFAR10), strategy, llm, cache_dir=cache)
        know[strategy] = k
        res["llm_seconds"][strategy] = k.llm_seconds
        res[f"{strategy}_texts"] = {"texts": k.texts, "dropped": k.dropped}
    per = round(np.mean([len(v) for v in know["descriptions"].texts.values()]))
    know["waffle"] = waffle(list(CIFAR10), per_label=max(per, 1), seed=0)
    preds = {}
    for variant, (e, p1) in emb.items():
        preds[(variant, "T1")] = p1.argmax(1)
        for strategy, k in know.items():
            preds[(variant, strategy)] = (
                LabelScorer(eyes, plan_of(LabelSet("cifar10", CIFAR10), templates, knowledge=k))
                .probabilities(e)
                .argmax(1)
            )
    for K in (2, 3):
        follow = FollowUp(eyes, llm, k=K, threshold=1.01, cache_dir=cache)
        e, p1 = emb["png"]
        t = time.perf_counter()
        by_thr = {}
        for thr in THRESHOLDS:  # chosen on dev only
            follow.threshold = thr
            pred, _ = follow_preds(follow, e, p1, masks["dev"])
            by_thr[thr] = float((pred == truth)[masks["dev"]].mean())
        best = max(THRESHOLDS, key=lambda x: (by_thr[x], -x))
        follow.threshold = best
        for variant, (ev, pv) in emb.items():
            pred, runs = follow_preds(follow, ev, pv, np.ones(len(truth), bool))
            preds[(variant, f"follow-up K={K}")] = pred
            res.setdefault("follow_up_runs", {})[f"{variant} K={K}"] = runs
        res["llm_seconds"][f"follow-up K={K}"] = follow.llm_seconds
        res.setdefault("follow_up", {})[f"K={K}"] = {
            "dev_accuracy_by_threshold": by_thr,
            "threshold": best,
            "sets_written": follow.requests // K,
            "requests": follow.requests,
            "seconds": time.perf_counter() - t,
        }
    for (variant, method), pred in preds.items():
        t1v, wv = preds[(variant, "T1")], preds[(variant, "waffle")]
        sets = (
            {"jpeg75-932": masks["all"]}
            if variant == "jpeg75"
            else {s: masks[s] for s in ("300", "632")}
        )
        for set_name, m in sets.items():
            res["methods"].setdefault(method, {})[set_name] = stats(pred, truth, m, t1v, wv)
    return res


def _cell(x: dict, key: str) -> str:
    v = x[key]
    return f"{v['wins']}/{v['losses']}, p={v['p']:.2g}"


def table(result: dict) -> str:
    """The results page's table: one row per (reasoner, method)."""
    head = (
        "| reasoner | method | cifar10-300 | vs T1 | vs waffle | 632 dev | vs T1 | vs waffle "
        "| JPEG-75 (932) | vs T1 | LLM s |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for rname, r in result["reasoners"].items():
        for method, sets in r["methods"].items():
            a, b, j = sets["300"], sets["632"], sets["jpeg75-932"]
            cells = [f"{a['accuracy']:.1%}", _cell(a, "vs_t1"), _cell(a, "vs_waffle")]
            cells += [f"{b['accuracy']:.1%}", _cell(b, "vs_t1"), _cell(b, "vs_waffle")]
            cells += [f"{j['accuracy']:.1%}", _cell(j, "vs_t1")]
            secs = r["llm_seconds"].get(method)
            cells.append("—" if secs is None else f"{secs:.0f}")
            rows.append(f"| {rname} | {method} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reasoners", default="default,fast,server")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    settings = Settings.from_env(threads=args.threads)
    eyes = load_scorer(settings, "conse")
    ds, indices, truth, _s300, masks = cifar_split(settings)
    masks.update(all=np.ones(len(indices), bool), dev=masks["632"])
    templates = default_templates("cifar10", eyes.templates)
    base = eyes.encode_labels(list(CIFAR10), templates)
    emb, eyes_time = {}, {}
    for variant, tf in (("png", None), ("jpeg75", jpeg75)):
        e, secs = embed(eyes, ds, indices, tf)
        emb[variant] = (e, eyes.probabilities(e, base))
        eyes_time[variant] = {"seconds": secs, "images_per_s": len(indices) / secs}
    result = {
        "scorer": eyes.describe(),
        "note": "ConSE stand-in eyes, not CLIP",
        "images": {
            "300": int(masks["300"].sum()),
            "632": int(masks["632"].sum()),
            "all": len(indices),
        },
        "eyes": eyes_time,
        "reasoners": {},
    }
    with ExitStack() as stack:
        cache = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for rname in args.reasoners.split(","):
            llm = open_reasoner(stack, settings, REASONERS[rname], args.threads, 4096)
            t = time.perf_counter()
            result["reasoners"][rname] = run_reasoner(
                rname, llm, eyes, emb, truth, masks, templates, emb["png"][1], cache / rname
            )
            result["reasoners"][rname]["wall_s"] = time.perf_counter() - t
            print(f"{rname}: done in {time.perf_counter() - t:.0f} s", flush=True)
    write("knowledge_cifar", result)
    print(table(result))
    print("docs/results.md: python scripts/make_results.py")


if __name__ == "__main__":
    main()
