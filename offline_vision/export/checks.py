"""What every checkpoint export checks and validates with: its files' shapes and the inputs
the exported graphs are compared on against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from offline_vision.errors import ExportError
from offline_vision.images import IMAGE_SUFFIXES, load_image
from offline_vision.models.preprocess import Preprocess

VALIDATION_TEXTS = (
    "a photo of a cat.",
    "a photo of a dog.",
    "a blurry photo of an airplane.",
    "an astronaut in a white suit",
    "a cup of coffee on a saucer",
    "a rocket launch at night",
    "a black and white photo of the truck.",
    "itap of a goldfish.",
)


def validation_images(photo_dir: Path | None, n: int = 4) -> tuple[list[Image.Image], str]:
    """Real photos when a directory of them is at hand, else fixed synthetic images (said so)."""
    if photo_dir and photo_dir.is_dir():
        paths = sorted(p for p in photo_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:n]
        if paths:
            return [load_image(p) for p in paths], ", ".join(p.name for p in paths)
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) for _ in range(n)]
    return imgs, f"{n} synthetic noise images (no photo directory found)"


def json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ExportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return value


def check_safetensors(path: Path) -> None:
    """Refuse a safetensors file whose header is malformed, before any library parses it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= min(size - 8, 100 * 2**20):
            raise ExportError(f"{path}: malformed safetensors header (length {n})")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, ValueError) as e:
            raise ExportError(f"{path}: malformed safetensors header ({e})") from None
    data = size - 8 - n
    ok = isinstance(header, dict)
    for name, t in header.items() if ok else ():
        if name == "__metadata__":
            continue
        offsets = t.get("data_offsets") if isinstance(t, dict) else None
        ok = (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data
            and isinstance(t.get("shape"), list)
            and isinstance(t.get("dtype"), str)
        )
        if not ok:
            break
    if not ok:
        raise ExportError(f"{path}: malformed safetensors header (bad tensor entry)")


def check_size(ckpt: Path, pre: Preprocess, image_size: object) -> None:
    """The preprocessing must produce the model's own image size."""
    if pre.out_size != (image_size, image_size):
        got = "×".join(map(str, pre.out_size or ("any",)))
        raise ExportError(
            f"{ckpt}: preprocessor_config.json gives {got} images but the model's image_size "
            f"is {image_size}"
        )


def run_onnx(path: Path, feed: dict) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    return sess.run(None, {k: v for k, v in feed.items() if k in names})[0]
