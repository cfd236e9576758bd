"""Graph rewrites tried on the exported ViT-B/32 image tower, timed against the graph the
product ships → benchmarks/results/clip_fusions.json. None of them is adopted (see README).

    python benchmarks/clip_speed.py      # first: builds and exports the random-weight ViT-B/32
    python benchmarks/clip_fusions.py

Variants (ONNX Runtime, CPU, same thread count, interleaved rounds, one process):
- `shipped`: the exporter's fp32 graph (ORT applies its own level-3 fusions at load).
- `bias_in_gemm`: every MatMul(X[..., K], W[K, N]) + Add(b[N]) rewritten as
  Reshape → Gemm(X, W, b) → Reshape, so the bias is added inside the GEMM, not in a pass of
  its own.
- `skip_layernorm`: onnxruntime.transformers' CLIP optimizer (residual Add + LayerNorm →
  SkipLayerNormalization; its attention fusion does not match this graph).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from clip_speed import WORK
from common import write


def bias_in_gemm(model):
    """The rewrite described above; returns (model, number of MatMul+Add pairs rewritten)."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    # The TorchScript exporter routes shared parameters through Identity nodes: look through.
    alias = {
        n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity" and n.input[0] in inits
    }
    nodes = [n for n in g.node if n.output[0] not in alias]
    for n in nodes:
        for j, name in enumerate(n.input):
            n.input[j] = alias.get(name, name)
    consumers = collections.defaultdict(list)
    for n in nodes:
        for name in n.input:
            consumers[name].append(n)
    out, dropped, extra, k = [], set(), [], 0
    for n in nodes:
        if id(n) in dropped:
            continue
        add = consumers[n.output[0]][0] if len(consumers[n.output[0]]) == 1 else None
        if (
            n.op_type == "MatMul"
            and n.input[1] in inits
            and add is not None
            and add.op_type == "Add"
        ):
            bias = [i for i in add.input if i != n.output[0]]
            w = numpy_helper.to_array(inits[n.input[1]])
            if len(bias) == 1 and bias[0] in inits and w.ndim == 2:
                k += 1
                p = f"bias_in_gemm_{k}"
                out += [
                    helper.make_node("Shape", [n.input[0]], [p + "_shape"]),
                    helper.make_node("Slice", [p + "_shape", "big_0", "big_m1"], [p + "_lead"]),
                    helper.make_node("Concat", [p + "_lead", p + "_n"], [p + "_out"], axis=0),
                    helper.make_node("Reshape", [n.input[0], p + "_flat"], [p + "_x"]),
                    helper.make_node("Gemm", [p + "_x", n.input[1], bias[0]], [p + "_y"]),
                    helper.make_node("Reshape", [p + "_y", p + "_out"], [add.output[0]]),
                ]
                extra += [
                    numpy_helper.from_array(np.array([-1, w.shape[0]], np.int64), p + "_flat"),
                    numpy_helper.from_array(np.array([w.shape[1]], np.int64), p + "_n"),
                ]
                dropped.add(id(add))
                continue
        out.append(n)
    extra += [
        numpy_helper.from_array(np.array([0], np.int64), "big_0"),
        numpy_helper.from_array(np.array([-1], np.int64), "big_m1"),
    ]
    del g.node[:]
    g.node.extend(out)
    g.initializer.extend(extra)
    return model, k


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    from offline_vision.models import runtime

    src = WORK / "home" / "models" / "clip-vit-base-patch32" / "vision_model.onnx"
    if not src.exists():
        sys.exit(f"{src} not found: run python benchmarks/clip_speed.py first")
    tmp = Path(tempfile.mkdtemp(prefix="ovision-fusions-"))
    rewritten, pairs = bias_in_gemm(onnx.load(str(src)))
    onnx.save(rewritten, str(tmp / "bias_in_gemm.onnx"))
    sln = optimize_model(
        str(src),
        model_type="clip",
        num_heads=12,
        hidden_size=768,
        optimization_options=FusionOptions("clip"),
        opt_level=0,
    )
    sln.save_model_to_file(str(tmp / "skip_layernorm.onnx"))
    fused = collections.Counter(n.op_type for n in sln.model.graph.node)["SkipLayerNormalization"]
    paths = {
        "shipped": src,
        "bias_in_gemm": tmp / "bias_in_gemm.onnx",
        "skip_layernorm": tmp / "skip_layernorm.onnx",
    }
    sessions = {  # the product's session options (spinning off), on the CPU
        name: ort.InferenceSession(
            str(path), runtime.session_options(args.threads), providers=["CPUExecutionProvider"]
        )
        for name, path in paths.items()
    }
    result = {"threads": args.threads, "bias_in_gemm_pairs": pairs, "skip_layernorm_fused": fused}
    for bs in (1, 32):
        x = np.random.default_rng(0).normal(size=(bs, 3, 224, 224)).astype(np.float32)
        ref = sessions["shipped"].run(None, {"pixel_values": x})[0]
        times = {k: [] for k in sessions}
        for _ in range(args.rounds):
            for name, s in sessions.items():
                t = time.perf_counter()
                s.run(None, {"pixel_values": x})
                times[name].append((time.perf_counter() - t) / bs * 1e3)
        med = {k: float(np.median(v)) for k, v in times.items()}
        result[f"batch_{bs}"] = {
            "ms_per_image_median": med,
            "ratio_to_shipped": {k: v / med["shipped"] for k, v in med.items()},
            "max_abs_diff_to_shipped": {
                k: float(np.abs(s.run(None, {"pixel_values": x})[0] - ref).max())
                for k, s in sessions.items()
            },
        }
        print(bs, {k: round(v, 2) for k, v in med.items()})
    print("wrote", write("clip_fusions", result))


if __name__ == "__main__":
    main()
