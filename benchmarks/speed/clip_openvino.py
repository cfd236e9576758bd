"""A lead for the fp32 target, not the product: the exported ViT-B/32 image tower on ONNX
Runtime's OpenVINO execution provider, against PyTorch eager and ORT's CPU provider, one run,
same thread count → benchmarks/results/clip_openvino.json.

`onnxruntime-openvino` installs the same `onnxruntime` module as `onnxruntime`, so it needs a
virtual environment of its own (offline_vision is not installed there; its ORT session options
are imported from this checkout):

    python -m benchmarks.speed.clip_speed     # first, in the project's venv: builds and exports the model
    python3 -m venv /tmp/ovvenv
    /tmp/ovvenv/bin/pip install onnxruntime-openvino numpy torch==2.13.0 transformers==4.57.6
    /tmp/ovvenv/bin/python -m benchmarks.speed.clip_openvino

As in clip_speed.py, the engines are timed in processes of their own: PyTorch, ORT's CPU
provider, and OpenVINO (its worker threads outlive a run, so it shares a process with no other
engine). At batch 32 the JSON also has two OpenVINO streams (one thread each) running the two
halves of the batch at once, and ORT's CPU provider doing the same with two single-thread
sessions. The ORT in that venv (onnxruntime-openvino) is an older release than the product's,
so compare its providers with each other, not with clip_speed.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.common import time_blocks_isolated, write
from benchmarks.speed.clip_speed import CKPT, REPO, VISION_ONNX, torch_engines

sys.path.insert(0, str(REPO))  # spawned engine processes import offline_vision from here too


def _sessions(threads: int, provider: str, *, split: bool) -> dict:
    """ORT sessions on the exported graph with classify's options (spinning), on the CPU
    provider or on OpenVINO's CPU device in fp32; with `split`, also a way to run the two
    halves of a batch at once (two single-thread CPU sessions; two OpenVINO streams)."""
    import onnxruntime as ort

    from offline_vision.models import runtime

    def make(ep, threads=threads, spin=True):
        opts = runtime.session_options(threads, spin=spin)
        return ort.InferenceSession(str(VISION_ONNX), opts, providers=[ep])

    def openvino(streams=1):
        opts = {"device_type": "CPU", "num_of_threads": str(threads), "precision": "FP32"}
        return ("OpenVINOExecutionProvider", opts | {"num_streams": str(streams)})

    if provider == "cpu":
        sessions = {"ort_cpu_ep": make("CPUExecutionProvider")}
        if split:
            sessions["ort_cpu_ep_2_sessions"] = tuple(
                make("CPUExecutionProvider", threads=1, spin=False) for _ in range(2)
            )
    else:
        sessions = {"ort_openvino_ep": make(openvino())}
        if split:
            two = make(openvino(2), spin=False)
            sessions["ort_openvino_ep_2_streams"] = (two, two)
    return sessions


def ort_engines(threads: int, provider: str, pixels: np.ndarray) -> dict:
    """One provider's engines, in a process of its own: OpenVINO's worker threads outlive a
    run, so they must not share a process (or a block's turn) with another engine."""
    split = len(pixels) > 1
    pool, halves = ThreadPoolExecutor(2), np.array_split(pixels, 2)

    def run(s, x):
        return s.run(None, {"pixel_values": x})

    fns = {}
    for name, s in _sessions(threads, provider, split=split).items():
        if isinstance(s, tuple):
            fns[name] = functools.partial(lambda pair: list(pool.map(run, pair, halves)), s)
        else:
            fns[name] = functools.partial(run, s, pixels)
    return fns


_MEMORY = """
import json, sys
import numpy as np
sys.path[:0] = sys.argv[3:]
from clip_openvino import _sessions
from offline_vision.models import runtime
def mb(key):
    return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) / 1024
(s,) = _sessions(int(sys.argv[1]), sys.argv[2], split=False).values()
s.run(None, {"pixel_values": np.zeros((1, 3, 224, 224), np.float32)})
runtime.trim_heap()
print(json.dumps({"peak_rss_mb": mb("VmHWM"), "resident_mb_after_trim": mb("VmRSS")}))
"""


def session_memory(threads: int, provider: str) -> dict:
    """Peak and trimmed resident MB of a fresh process holding one image session (batch 1 run):
    the figures `ovision classify` would see with that provider."""
    paths = [str(Path(__file__).parent), str(REPO)]
    cmd = [sys.executable, "-c", _MEMORY, str(threads), provider, *paths]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import onnxruntime as ort
    import torch
    from transformers import CLIPModel

    from offline_vision.export.clip_layers import vision_tower

    if "OpenVINOExecutionProvider" not in ort.get_available_providers():
        sys.exit("no OpenVINOExecutionProvider: run this in a venv with onnxruntime-openvino")
    if not VISION_ONNX.exists():
        sys.exit(f"{VISION_ONNX} not found: run python -m benchmarks.speed.clip_speed first")
    vision = vision_tower(CLIPModel.from_pretrained(str(CKPT)).eval())
    result = {"threads": args.threads, "onnxruntime": ort.__version__, "torch": torch.__version__}
    for bs, reps in ((1, 15), (32, 2)):
        x = np.random.default_rng(0).normal(size=(bs, 3, 224, 224)).astype(np.float32)
        with torch.inference_mode():
            ref = vision(pixel_values=torch.from_numpy(x)).image_embeds.numpy()
        ref /= np.linalg.norm(ref, axis=1, keepdims=True)
        cosine = {}
        for provider in ("cpu", "openvino"):
            for name, s in _sessions(args.threads, provider, split=False).items():
                y = s.run(None, {"pixel_values": x})[0]
                y /= np.linalg.norm(y, axis=1, keepdims=True)
                cosine[name] = float((y * ref).sum(1).min())
        del s  # no OpenVINO threads in this process while the engines are timed
        t = time_blocks_isolated(
            [
                functools.partial(torch_engines, args.threads, x),
                functools.partial(ort_engines, args.threads, "cpu", x),
                functools.partial(ort_engines, args.threads, "openvino", x),
            ],
            reps=reps,
        )
        ms = {k: v["median_s"] / bs * 1e3 for k, v in t.items()}
        result[f"batch_{bs}"] = {
            "ms_per_image": ms,
            "ratio_to_pytorch": {k: v / ms["pytorch_eager"] for k, v in ms.items()},
            "ratio_to_ort_cpu_ep": {k: v / ms["ort_cpu_ep"] for k, v in ms.items()},
            "cosine_to_pytorch_min": cosine,
        }
        print(bs, {k: round(v, 2) for k, v in ms.items()}, flush=True)
    result["memory"] = {p: session_memory(args.threads, p) for p in ("cpu", "openvino")}
    print("wrote", write("clip_openvino", result))


if __name__ == "__main__":
    main()
