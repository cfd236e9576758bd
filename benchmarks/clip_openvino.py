"""A lead for the fp32 target, not the product: the same exported ViT-B/32 image tower on ONNX
Runtime's OpenVINO execution provider, against PyTorch eager and ORT's CPU provider, one run,
same thread count → benchmarks/results/clip_openvino.json.

`onnxruntime-openvino` installs the same `onnxruntime` module as `onnxruntime`, so it needs a
virtual environment of its own (offline_vision is not installed there; its ORT session options
are imported from this checkout):

    python benchmarks/clip_speed.py     # first, in the project's venv: builds and exports the model
    python3 -m venv /tmp/ovvenv
    /tmp/ovvenv/bin/pip install onnxruntime-openvino numpy torch==2.13.0 transformers==4.57.6
    /tmp/ovvenv/bin/python benchmarks/clip_openvino.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from clip_speed import CKPT, REPO, VISION_ONNX
from common import time_blocks, write


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import onnxruntime as ort
    import torch
    from transformers import CLIPModel

    sys.path.insert(0, str(REPO))
    from offline_vision.export.clip_layers import vision_tower
    from offline_vision.models import runtime

    if "OpenVINOExecutionProvider" not in ort.get_available_providers():
        sys.exit("no OpenVINOExecutionProvider: run this in a venv with onnxruntime-openvino")
    src = VISION_ONNX
    if not src.exists():
        sys.exit(f"{src} not found: run python benchmarks/clip_speed.py first")
    torch.set_num_threads(args.threads)
    vision = vision_tower(CLIPModel.from_pretrained(str(CKPT)).eval())

    def session(provider):  # the product's session options (spinning off)
        opts = runtime.session_options(args.threads)
        return ort.InferenceSession(str(src), opts, providers=[provider])

    sessions = {
        "ort_cpu_ep": session("CPUExecutionProvider"),
        "ort_openvino_ep": session(
            (
                "OpenVINOExecutionProvider",
                {"device_type": "CPU", "num_of_threads": str(args.threads), "precision": "FP32"},
            )
        ),
    }
    result = {"threads": args.threads, "onnxruntime": ort.__version__, "torch": torch.__version__}
    for bs, reps in ((1, 15), (32, 2)):
        x = np.random.default_rng(0).normal(size=(bs, 3, 224, 224)).astype(np.float32)
        pt = torch.from_numpy(x)

        def eager(pt=pt):
            with torch.inference_mode():
                return vision(pixel_values=pt).image_embeds

        ref = eager().numpy()
        ref /= np.linalg.norm(ref, axis=1, keepdims=True)

        def cosine(y, ref=ref):
            return float((y / np.linalg.norm(y, axis=1, keepdims=True) * ref).sum(1).min())

        fns = {"pytorch_eager": eager}
        fns |= {k: (lambda s=s, x=x: s.run(None, {"pixel_values": x})) for k, s in sessions.items()}
        t = time_blocks(fns, reps=reps)
        ms = {k: v["median_s"] / bs * 1e3 for k, v in t.items()}
        result[f"batch_{bs}"] = {
            "ms_per_image": ms,
            "ratio_to_pytorch": {k: v / ms["pytorch_eager"] for k, v in ms.items()},
            "cosine_to_pytorch_min": {
                k: cosine(s.run(None, {"pixel_values": x})[0]) for k, s in sessions.items()
            },
        }
        print(bs, {k: round(v, 2) for k, v in ms.items()}, flush=True)
    print("wrote", write("clip_openvino", result))


if __name__ == "__main__":
    main()
