"""The CUDA paths, checked on a machine with an NVIDIA GPU: one line per check, with its speed
against the CPU. Run by scripts/gpu_check.sh (which sets up the environment); needs the export
and llm extras, onnxruntime-gpu, and llama-cpp-python built with CUDA for the GGUF checks.

The CLIP is ViT-B/32-sized with random weights (speed, not accuracy), exported by the project's
own exporter; ConSE and the GGUFs are used where `ovision models pull` installed them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test builders of random-weight models


def line(check: str, text: str) -> None:
    print(f"gpu_check: {check}: {text}", flush=True)


def per_second(fn, n: int, reps: int = 5) -> float:
    fn()  # warm-up: session start, CUDA kernels, caches
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return n * reps / (time.perf_counter() - t)


def _cpu_fallbacks() -> list[str]:
    """The warnings, from now on, that a CUDA session fell back to the CPU."""
    import logging

    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            if "on the CPU" in record.getMessage() or "using the CPU" in record.getMessage():
                seen.append(record.getMessage())

    logging.getLogger("ovision").addHandler(Catch())
    return seen


def check_onnxruntime() -> bool:
    import onnxruntime as ort

    ok = "CUDAExecutionProvider" in ort.get_available_providers()
    line("onnxruntime", f"{ort.__version__}, CUDA provider {'present' if ok else 'MISSING'}")
    return ok


def install_clip(home: Path) -> None:
    from tiny_clip import build_tiny_clip

    from offline_vision.config import Settings
    from offline_vision.export.clip import export_clip
    from offline_vision.models.provision import registry, store

    ckpt = build_tiny_clip(home / "ckpt", full=True)
    files, meta = export_clip(ckpt, home / "onnx", photo_dir=ROOT / "examples", source={})
    settings = Settings.from_env()
    store.install(settings.models_dir, registry.CLIP, "clip", files, meta)


def check_scorer(which: str, batch: int = 32) -> None:
    """Images per second on CUDA and on the CPU, and that the two agree."""
    import numpy as np
    from PIL import Image

    from offline_vision.config import Settings
    from offline_vision.models.loader import EyesOptions

    settings = Settings.from_env()
    fell_back = _cpu_fallbacks()
    images = [Image.open(ROOT / "examples" / "chelsea.png").convert("RGB")] * batch
    speed, embs = {}, {}
    for device in ("cuda", "cpu"):
        try:
            eyes = EyesOptions(scorer=which, device=device, precision="fp32").load(settings)
        except Exception as e:  # a check reports what failed; it does not stop the others
            line(which, f"not run ({e})")
            return
        embs[device] = eyes.encode_images(images[:2])
        speed[device] = per_second(lambda eyes=eyes: eyes.encode_images(images), batch)
    if fell_back:
        line(f"{which} --device cuda", f"FAILED: fell back to the CPU ({fell_back[0]})")
        return
    gap = float(np.abs(embs["cuda"] - embs["cpu"]).max())
    line(
        f"{which} --device cuda",
        f"{speed['cuda']:.0f} images/s vs {speed['cpu']:.0f} on the CPU "
        f"({speed['cuda'] / speed['cpu']:.1f}×), batch {batch}, fp32; max |Δembedding| {gap:.1e}",
    )


def check_classify_cli() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "offline_vision", "classify", str(ROOT / "examples" / "chelsea.png"),
         "--scorer", "clip", "--labels", "cifar10", "--device", "cuda", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    fell_back = "using the CPU" in r.stderr or "running on the CPU" in r.stderr
    last = (r.stderr.strip().splitlines() or [""])[-1]
    verdict = "ok" if r.returncode == 0 and not fell_back else f"FAILED ({last})"
    line("ovision classify --device cuda", verdict)


def check_gguf(spec: str, label: str) -> None:
    """Tokens per second for one constrained answer, all layers on the GPU vs none."""
    import llama_cpp

    from offline_vision.config import Settings
    from offline_vision.models.reasoners import load_reasoner

    if not llama_cpp.llama_supports_gpu_offload():
        line(label, "not run (this llama-cpp-python build has no GPU offload)")
        return
    ask = [{"role": "user", "content": "Name a mammal in one word: cat, dog or ship?"}]
    speed = {}
    for layers in (-1, 0):
        try:
            r = load_reasoner(Settings.from_env(), spec, gpu_layers=layers)
            r.complete(ask, choices=["cat", "dog", "ship"])  # load and warm up
            t = time.perf_counter()
            c = r.complete(ask, max_tokens=64, temperature=0.0)
            dt = time.perf_counter() - t
        except Exception as e:  # as above
            line(label, f"not run ({e})")
            return
        speed[layers] = (c.usage.prompt_tokens + c.usage.completion_tokens) / dt
    line(
        f"{label}, --gpu-layers -1",
        f"{speed[-1]:.0f} tokens/s vs {speed[0]:.0f} on the CPU ({speed[-1] / speed[0]:.1f}×)",
    )


def main() -> None:
    from offline_vision.config import Settings
    from offline_vision.models.provision import store

    installed = set(store.installed(Settings.from_env().models_dir))
    with tempfile.TemporaryDirectory() as tmp:
        from tiny_gguf import CHATML, write_gguf

        tiny = write_gguf(Path(tmp) / "tiny-chatml.gguf", CHATML)
        cuda = check_onnxruntime()
        if cuda:
            home = Path(tmp) / "home"
            os.environ["OVISION_HOME"] = str(home)
            install_clip(home)
            check_scorer("clip")
            check_classify_cli()
        check_gguf(f"local:{tiny}", "tiny random GGUF (the llama.cpp path only)")
    os.environ.pop("OVISION_HOME", None)
    for name in sorted(installed):
        if name.startswith("conse") and cuda:
            check_scorer("conse")
        elif name.startswith("qwen"):
            check_gguf(f"local:{name}", name)
    if not installed:
        line("pulled models", "none installed here (ConSE and the GGUFs not checked)")


if __name__ == "__main__":
    main()
