"""Eyes of the user's choosing, speed: CLIP and SigLIP towers, tiny and full-size, each built with
random weights, exported by the project's exporter (the `hf:` / `models import` path), then
timed per image and per prompt on PyTorch eager vs ONNX Runtime fp32 vs int8, with the peak
memory of a process that loads one tower and runs one batch. One run, same threads → JSON.

Full size means transformers' config defaults: CLIPConfig = ViT-B/32 (224 px, 50 tokens),
SiglipConfig = SigLIP base patch16-224 (196 tokens; text always 64 tokens, padded so). Random
weights: same architecture and FLOPs as the released ones, so timings carry over; accuracy does
not and is not measured. Tokenizers are the tests' tiny ones, which does not move SigLIP's text
time (always 64 positions) and shortens CLIP's prompts a little (padded to the batch's longest).

    python -m benchmarks.speed.eyes_speed [--threads 2] [--only tiny]
        →  benchmarks/results/eyes_speed.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import give_constants_values, peak_rss_mb, time_blocks_isolated, write

REPO = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("OVISION_BENCH_WORK", Path(tempfile.gettempdir()) / "ovision-bench"))
PROMPTS = [f"a photo of the {w}." for w in ("cat", "dog", "ship", "frog", "truck", "bird", "deer")]
IMAGE_BATCH, TEXT_BATCH = 8, 32
PEAK = """
import sys, numpy as np
kind, path, tower, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
x = np.zeros((batch, 3, int(sys.argv[5]), int(sys.argv[5])), np.float32)
if kind == "torch":
    import torch
    from transformers import AutoModel
    torch.set_num_threads(int(sys.argv[6]))
    m = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        m.get_image_features(pixel_values=torch.from_numpy(x))
else:
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = int(sys.argv[6])
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    s.run(None, {s.get_inputs()[0].name: x})
"""


def build(kind: str, size: str, dest: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    if kind == "clip":
        from tiny_clip import build_tiny_clip as builder
    else:
        from tiny_siglip import build_tiny_siglip as builder
    ckpt = builder(dest, full=size == "full")
    _distinct_constants(ckpt)
    return ckpt


def _distinct_constants(ckpt: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(ckpt).eval()
    give_constants_values(model)
    model.save_pretrained(str(ckpt), safe_serialization=True)


def torch_engines(ckpt: Path, threads: int, pixels: np.ndarray, ids: np.ndarray) -> dict:
    import torch
    from transformers import AutoModel

    torch.set_num_threads(threads)
    model = AutoModel.from_pretrained(ckpt).eval()
    x, t = torch.from_numpy(pixels), torch.from_numpy(ids)

    def image():
        with torch.no_grad():
            model.get_image_features(pixel_values=x)

    def text():
        with torch.no_grad():
            model.get_text_features(input_ids=t)

    return {"torch image": image, "torch text": text}


def ort_engines(
    bundle: Path, onnx: dict, threads: int, pixels: np.ndarray, ids: np.ndarray
) -> dict:
    import onnxruntime as ort

    def sess(rel):
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        return ort.InferenceSession(str(bundle / rel), o, providers=["CPUExecutionProvider"])

    out = {}
    for precision, towers in onnx.items():
        v, t = sess(towers["vision"]), sess(towers["text"])
        feed = {"input_ids": ids}
        if "attention_mask" in {i.name for i in t.get_inputs()}:
            feed["attention_mask"] = np.ones_like(ids)
        out[f"onnx {precision} image"] = functools.partial(v.run, None, {"pixel_values": pixels})
        out[f"onnx {precision} text"] = functools.partial(t.run, None, feed)
    return out


def measure(kind: str, size: str, threads: int) -> dict:
    from offline_vision.export.checkpoints import export_checkpoint
    from offline_vision.models.clip import ClipTokenizer
    from offline_vision.models.preprocess import Preprocess

    ckpt = build(kind, size, WORK / f"eyes-{kind}-{size}")
    out = WORK / f"eyes-{kind}-{size}-onnx"
    _, files, meta = export_checkpoint(ckpt, out, photo_dir=None, source={"type": "benchmark"})
    text = meta["text"]
    tok = ClipTokenizer(
        (out / "tokenizer.json").read_text(),
        text["context_length"],
        text["pad_id"],
        max_length=text.get("padding") == "max_length",
    )
    ids = tok((PROMPTS * TEXT_BATCH)[:TEXT_BATCH])[0]
    pre = Preprocess.from_config(json.loads((out / "preprocessor_config.json").read_text()))
    edge = pre.out_size[0]
    pixels = np.random.default_rng(0).standard_normal((IMAGE_BATCH, 3, edge, edge), np.float32)
    factories = [
        functools.partial(torch_engines, ckpt, threads, pixels, ids),
        functools.partial(ort_engines, out, meta["onnx"], threads, pixels, ids),
    ]
    timed = time_blocks_isolated(factories, reps=3 if size == "full" else 20, rounds=3)
    per = {
        k: v["median_s"] * 1000 / (IMAGE_BATCH if "image" in k else TEXT_BATCH)
        for k, v in timed.items()
    }
    peaks = {}
    for engine, path in (
        ("torch", str(ckpt)),
        ("onnx fp32", str(out / meta["onnx"]["fp32"]["vision"])),
        ("onnx int8", str(out / meta["onnx"]["int8"]["vision"])),
    ):
        args = [sys.executable, "-c", PEAK, engine.split()[0], path, "image", str(IMAGE_BATCH)]
        peaks[engine] = peak_rss_mb([*args, str(edge), str(threads)])[1]
    return {
        "image_px": edge,
        "text_tokens": int(ids.shape[1]),
        "ms_per_image": {k.removesuffix(" image"): v for k, v in per.items() if "image" in k},
        "ms_per_prompt": {k.removesuffix(" text"): v for k, v in per.items() if "text" in k},
        "image_peak_rss_mb": peaks,
        "onnx_mb": {
            f: round(files[f].stat().st_size / 1e6, 1) for f in files if f.endswith("onnx")
        },
        "validation": {k: meta["validation"][k] for k in ("fp32_vs_pytorch", "int8_vs_fp32")},
        "timings": timed,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", choices=("tiny", "full"), help="only this size")
    args = p.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    sizes = [args.only] if args.only else ["tiny", "full"]
    results = {}
    for size in sizes:
        for kind in ("clip", "siglip"):
            print(f"{kind} {size}…", file=sys.stderr, flush=True)
            results[f"{kind} {size}"] = measure(kind, size, args.threads)
    path = write(
        "eyes_speed",
        {
            "command": " ".join(["python -m benchmarks.speed.eyes_speed", *sys.argv[1:]]),
            "threads": args.threads,
            "image_batch": IMAGE_BATCH,
            "text_batch": TEXT_BATCH,
            "results": results,
        },
    )
    print(path)


if __name__ == "__main__":
    main()
