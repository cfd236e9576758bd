"""Graph rewrites tried on the exported ViT-B/32 image tower, timed against the graph the
product ships → benchmarks/results/clip_fusions.json. None of them is adopted (see README).
The JSON also holds the shipped graph's kernel time per operator type (ORT's profiler).

    python benchmarks/clip_speed.py      # first: builds and exports the random-weight ViT-B/32
    python benchmarks/clip_fusions.py

Variants (ONNX Runtime, CPU, same thread count, interleaved rounds, one process):
- `shipped`: the exporter's fp32 graph (ORT applies its own level-3 fusions at load).
- `bias_in_gemm`: every MatMul(X[..., K], W[K, N]) + Add(b[N]) rewritten as
  Reshape → Gemm(X, W, b) → Reshape, so the bias is added inside the GEMM, not in a pass of
  its own.
- `fused_qkv`: the three projections that read the same LayerNorm output (q, k, v) become
  one MatMul against the concatenated [768, 2304] weight, one bias Add and a Split — one
  GEMM with three times the columns instead of three.
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
from clip_speed import VISION_ONNX
from common import write


def _resolved(g):
    """(initializers by name, nodes with Identity aliases of initializers looked through,
    consumers of each tensor). The TorchScript exporter routes shared parameters through
    Identity nodes."""
    inits = {i.name: i for i in g.initializer}
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
    return inits, nodes, consumers


def _linear(n, inits, consumers):
    """(W, bias name, Add node) when `n` is MatMul(X, W[K, N]) followed only by Add(bias), else None."""
    from onnx import numpy_helper

    if n.op_type != "MatMul" or n.input[1] not in inits or len(consumers[n.output[0]]) != 1:
        return None
    add = consumers[n.output[0]][0]
    bias = [i for i in add.input if i != n.output[0]]
    if add.op_type != "Add" or len(bias) != 1 or bias[0] not in inits:
        return None
    w = numpy_helper.to_array(inits[n.input[1]])
    return (w, bias[0], add) if w.ndim == 2 else None


def fused_qkv(model):
    """The q/k/v rewrite described above; returns (model, number of triples fused)."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits, nodes, consumers = _resolved(g)
    triples = []
    for x, readers in list(consumers.items()):
        lin = [(n, _linear(n, inits, consumers)) for n in readers]
        lin = [(n, li) for n, li in lin if li is not None and n.input[0] == x]
        if len(lin) == 3:
            triples.append(lin)
    first = {id(t[0][0]): t for t in triples}
    dropped = {id(n) for t in triples for n, li in t} | {id(li[2]) for t in triples for _, li in t}
    out, extra = [], []
    for k, n in enumerate(nodes):
        if id(n) in first:
            t = first[id(n)]
            p = f"fused_qkv_{k}"
            w = np.concatenate([li[0] for _, li in t], axis=1)
            b = np.concatenate([numpy_helper.to_array(inits[li[1]]) for _, li in t])
            extra += [
                numpy_helper.from_array(w, p + "_w"),
                numpy_helper.from_array(b, p + "_b"),
                numpy_helper.from_array(
                    np.array([li[0].shape[1] for _, li in t], np.int64), p + "_s"
                ),
            ]
            out += [
                helper.make_node("MatMul", [n.input[0], p + "_w"], [p + "_mm"]),
                helper.make_node("Add", [p + "_mm", p + "_b"], [p + "_y"]),
                helper.make_node(
                    "Split", [p + "_y", p + "_s"], [li[2].output[0] for _, li in t], axis=-1
                ),
            ]
        elif id(n) not in dropped:
            out.append(n)
    del g.node[:]
    g.node.extend(out)
    g.initializer.extend(extra)
    return model, len(triples)


def bias_in_gemm(model):
    """The rewrite described above; returns (model, number of MatMul+Add pairs rewritten)."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits, nodes, consumers = _resolved(g)
    out, dropped, extra, k = [], set(), [], 0
    for n in nodes:
        if id(n) in dropped:
            continue
        lin = _linear(n, inits, consumers)
        if lin is not None:
            w, bias, add = lin
            k += 1
            p = f"bias_in_gemm_{k}"
            out += [
                helper.make_node("Shape", [n.input[0]], [p + "_shape"]),
                helper.make_node("Slice", [p + "_shape", "big_0", "big_m1"], [p + "_lead"]),
                helper.make_node("Concat", [p + "_lead", p + "_n"], [p + "_out"], axis=0),
                helper.make_node("Reshape", [n.input[0], p + "_flat"], [p + "_x"]),
                helper.make_node("Gemm", [p + "_x", n.input[1], bias], [p + "_y"]),
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


def op_shares(src: Path, threads: int, bs: int, runs: int) -> dict:
    """Share of ORT's kernel time per operator type for the shipped graph (its profiler)."""
    import json

    import onnxruntime as ort

    from offline_vision.models import runtime

    opts = runtime.session_options(threads)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ovision-profile-")) / "ort")
    s = ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(bs, 3, 224, 224)).astype(np.float32)
    for _ in range(runs):
        s.run(None, {"pixel_values": x})
    events = json.loads(Path(s.end_profiling()).read_text())
    by_op = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values())
    return {op: round(us / total, 4) for op, us in by_op.most_common()}


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

    src = VISION_ONNX
    if not src.exists():
        sys.exit(f"{src} not found: run python benchmarks/clip_speed.py first")
    tmp = Path(tempfile.mkdtemp(prefix="ovision-fusions-"))
    rewritten, pairs = bias_in_gemm(onnx.load(str(src)))
    onnx.save(rewritten, str(tmp / "bias_in_gemm.onnx"))
    qkv, triples = fused_qkv(onnx.load(str(src)))
    onnx.save(qkv, str(tmp / "fused_qkv.onnx"))
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
        "fused_qkv": tmp / "fused_qkv.onnx",
        "skip_layernorm": tmp / "skip_layernorm.onnx",
    }
    sessions = {  # the product's session options (spinning off), on the CPU
        name: ort.InferenceSession(
            str(path), runtime.session_options(args.threads), providers=["CPUExecutionProvider"]
        )
        for name, path in paths.items()
    }
    result = {
        "threads": args.threads,
        "bias_in_gemm_pairs": pairs,
        "fused_qkv_triples": triples,
        "skip_layernorm_fused": fused,
    }
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
    result["kernel_time_share_shipped"] = {
        f"batch_{bs}": op_shares(src, args.threads, bs, runs) for bs, runs in ((1, 20), (32, 3))
    }
    print("wrote", write("clip_fusions", result))


if __name__ == "__main__":
    main()
