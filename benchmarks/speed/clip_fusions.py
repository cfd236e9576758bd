"""Graph rewrites tried on the exported ViT-B/32 image tower, timed against the graph the
product ships → benchmarks/results/clip_fusions.json. None of them is adopted (see README).
The JSON also holds the shipped graph's kernel time per operator group (ORT's profiler).

    python -m benchmarks.speed.clip_speed      # first: builds and exports the random-weight ViT-B/32
    python -m benchmarks.speed.clip_fusions

Variants:
- `shipped`: the exporter's fp32 graph (ORT applies its own level-3 fusions at load).
- `bias_in_gemm`: every MatMul(X[..., K], W[K, N]) + Add(b[N]) rewritten as
  Reshape → Gemm(X, W, b) → Reshape, so the bias is added inside the GEMM, not in a pass of
  its own.
- `fused_qkv`: the three projections that read the same LayerNorm output (q, k, v) become
  one MatMul against the concatenated [768, 2304] weight, one bias Add and a Split — one
  GEMM with three times the columns instead of three.
- `skip_layernorm`: onnxruntime.transformers' CLIP optimizer (residual Add + LayerNorm →
  SkipLayerNormalization; its attention fusion does not match this graph).
- `bias_fold`: two exact algebraic folds. The key projection's bias adds the same number to
  every score in a softmax row (q·(k + b) = q·k + q·b), so it is dropped; the value bias
  passes through attention unchanged (softmax rows sum to 1), so it is folded into the output
  projection's bias (b_o + b_v W_o). Two fewer Adds per layer.

Timing: the product's `classify` session options (spinning on), 2 threads, blocks of calls
interleaved over rounds (common.time_blocks), all variants in one process (no PyTorch here).

The profile splits MatMul into the weight GEMMs (linear layers, B an initializer) and the
attention products (4-D outputs), and gives each GEMM group its achieved GFLOP/s against the
FMA peak measured in the same run (profiling adds per-operator overhead, so the shares of
small operators are upper bounds).
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import time_blocks, write
from benchmarks.speed.clip_speed import VISION_ONNX, measured_peak


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


def bias_fold(model):
    """The exact folds described above; returns (model, number of attention layers folded).

    Finds each layer's projections by the node names the exporter gives them
    (`…/self_attn/{k,v,out}_proj/{MatMul,Add}`), as in every graph `ovision export` writes."""
    from onnx import numpy_helper

    g = model.graph
    inits, nodes, _ = _resolved(g)
    by_name = {n.name: n for n in nodes}
    prefixes = [
        n.name[: -len("k_proj/Add")] for n in nodes if n.name.endswith("self_attn/k_proj/Add")
    ]
    dropped, rename, extra = set(), {}, []
    for p in prefixes:
        k_add, v_add = by_name[p + "k_proj/Add"], by_name[p + "v_proj/Add"]
        o_mm, o_add = by_name[p + "out_proj/MatMul"], by_name[p + "out_proj/Add"]
        for add, mm in (
            (k_add, by_name[p + "k_proj/MatMul"]),
            (v_add, by_name[p + "v_proj/MatMul"]),
        ):
            dropped.add(id(add))
            rename[add.output[0]] = mm.output[0]
        (b_v,) = [i for i in v_add.input if i in inits]
        (b_o,) = [i for i in o_add.input if i in inits]
        w_o = numpy_helper.to_array(inits[o_mm.input[1]])
        folded = numpy_helper.to_array(inits[b_o]) + numpy_helper.to_array(inits[b_v]) @ w_o
        name = p + "out_proj/bias_fold"  # per layer: equal biases may share one initializer
        extra.append(numpy_helper.from_array(folded.astype(np.float32), name))
        o_add.input[list(o_add.input).index(b_o)] = name
    out = [n for n in nodes if id(n) not in dropped]
    for n in out:
        for j, name in enumerate(n.input):
            n.input[j] = rename.get(name, name)
    del g.node[:]
    g.node.extend(out)
    g.initializer.extend(extra)
    return model, len(prefixes)


def _group(op: str, out_shape: list[int]) -> str:
    if op in ("MatMul", "FusedMatMul", "Gemm"):
        return "attention products" if len(out_shape) == 4 else "weight GEMMs"
    return "patch Conv" if op == "Conv" else op


def _flops(op: str, inputs: list[list[int]], out: list[int]) -> float:
    """Multiply-adds × 2 of one GEMM-like kernel, from the shapes ORT's profiler records (a
    prepacked weight is not listed, so the reduced dimension is read from the first input)."""
    if op == "Conv":
        return 2.0 * float(np.prod(out)) * float(np.prod(inputs[1][1:]))
    return 2.0 * float(np.prod(out)) * inputs[0][-1]


def profile(src: Path, threads: int, bs: int, runs: int, peak_gflops: float | None) -> dict:
    """The shipped graph's kernel time by operator group (ORT's profiler), and each GEMM-like
    group's achieved GFLOP/s."""
    import json

    import onnxruntime as ort

    from offline_vision.models import runtime

    opts = runtime.session_options(threads, spin=True)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ovision-profile-")) / "ort")
    s = ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(bs, 3, 224, 224)).astype(np.float32)
    for _ in range(runs):
        s.run(None, {"pixel_values": x})
    events = json.loads(Path(s.end_profiling()).read_text())
    us, flops = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        a = e["args"]
        (out,) = a["output_type_shape"][0].values()  # {dtype: shape}
        group = _group(a["op_name"], out)
        us[group] += e["dur"]
        if group in ("weight GEMMs", "attention products", "patch Conv"):
            ins = [shape for d in a["input_type_shape"] for shape in d.values()]
            flops[group] += _flops(a["op_name"], ins, out)
    total = sum(us.values())
    gemm = {}
    for group, f in flops.items():
        gflops = f / us[group] / 1e3
        gemm[group] = {
            "gflop_per_image": f / runs / bs / 1e9,
            "gflop_per_s": gflops,
            "fraction_of_peak": gflops / peak_gflops if peak_gflops else None,
        }
    return {
        "kernel_ms_per_image": total / 1e3 / runs / bs,
        "share": {group: round(t / total, 4) for group, t in us.most_common()},
        "ms_per_image": {group: t / 1e3 / runs / bs for group, t in us.most_common()},
        "gemm": gemm,
    }


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
        sys.exit(f"{src} not found: run python -m benchmarks.speed.clip_speed first")
    tmp = Path(tempfile.mkdtemp(prefix="ovision-fusions-"))
    counts = {}
    for name, rewrite in (
        ("bias_in_gemm", bias_in_gemm),
        ("fused_qkv", fused_qkv),
        ("bias_fold", bias_fold),
    ):
        model, counts[name] = rewrite(onnx.load(str(src)))
        onnx.save(model, str(tmp / f"{name}.onnx"))
    sln = optimize_model(
        str(src),
        model_type="clip",
        num_heads=12,
        hidden_size=768,
        optimization_options=FusionOptions("clip"),
        opt_level=0,
    )
    sln.save_model_to_file(str(tmp / "skip_layernorm.onnx"))
    ops = collections.Counter(n.op_type for n in sln.model.graph.node)
    counts["skip_layernorm"] = ops["SkipLayerNormalization"]
    paths = {"shipped": src, **{k: tmp / f"{k}.onnx" for k in counts}}
    sessions = {  # classify's session options: spinning on, on the CPU
        name: ort.InferenceSession(
            str(path),
            runtime.session_options(args.threads, spin=True),
            providers=["CPUExecutionProvider"],
        )
        for name, path in paths.items()
    }
    result = {"threads": args.threads, "rewritten": counts}
    for bs, reps in ((1, 20), (32, 2)):
        feed = {
            "pixel_values": np.random.default_rng(0)
            .normal(size=(bs, 3, 224, 224))
            .astype(np.float32)
        }
        ref = sessions["shipped"].run(None, feed)[0]
        timed = time_blocks(
            {k: functools.partial(s.run, None, feed) for k, s in sessions.items()},
            reps=reps,
            rounds=args.rounds,
        )
        med = {k: v["median_s"] / bs * 1e3 for k, v in timed.items()}
        result[f"batch_{bs}"] = {
            "ms_per_image_median": med,
            "ratio_to_shipped": {k: v / med["shipped"] for k, v in med.items()},
            "max_abs_diff_to_shipped": {
                k: float(np.abs(s.run(None, feed)[0] - ref).max()) for k, s in sessions.items()
            },
        }
        print(bs, {k: round(v, 2) for k, v in med.items()})
    del sessions
    peak = measured_peak(args.threads)
    result["peak"] = peak
    result["profile_shipped"] = {
        f"batch_{bs}": profile(src, args.threads, bs, runs, peak and peak["gflops"])
        for bs, runs in ((1, 40), (32, 4))
    }
    print("wrote", write("clip_fusions", result))


if __name__ == "__main__":
    main()
