"""What every checkpoint export checks and validates with: its files' shapes and the inputs
the exported graphs are compared on against PyTorch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from offline_vision.errors import ExportError
from offline_vision.files import shown
from offline_vision.images import IMAGE_SUFFIXES, load_image
from offline_vision.models.preprocess import Preprocess

# Acceptance thresholds for fp32 (ONNX vs PyTorch, on L2-normalised embeddings or logits).
FP32_MIN_COSINE = 0.9999
FP32_MAX_ABS = 1e-4
THRESHOLDS = {"fp32_min_cosine": FP32_MIN_COSINE, "fp32_max_abs": FP32_MAX_ABS}
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


def load_complete(model_class, ckpt: Path):
    """`model_class.from_pretrained(ckpt)` in eval mode, refused in one line unless the
    checkpoint held every weight the model has and none it has not (a safetensors holding none
    of CLIP's tensors loaded as a random model, which its validation then compared with itself)."""
    try:
        model, info = model_class.from_pretrained(
            ckpt, use_safetensors=True, output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise ExportError(
            f"{ckpt}: transformers could not load it ({str(e).splitlines()[0]})"
        ) from None
    problems = {
        k: info.get(k) or [] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    if any(problems.values()):
        said = "; ".join(
            f"{len(v)} {k.replace('_', ' ')} (e.g. {v[0]})" for k, v in problems.items() if v
        )
        raise ExportError(f"{ckpt}: model.safetensors is not this model's weights: {said}")
    return model.eval()


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
    except RecursionError:
        raise ExportError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return value


# Bytes per element of safetensors' dtypes: a tensor's shape must fill its byte range exactly.
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1}
DTYPE_BYTES |= {"U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


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
    if not isinstance(header, dict):
        raise ExportError(f"{path}: malformed safetensors header (not an object)")
    for name, t in header.items():
        problem = None if name == "__metadata__" else _entry_problem(name, t, data)
        if problem:
            raise ExportError(f"{path}: malformed safetensors header ({problem})")


def _entry_problem(name: str, t, data: int) -> str | None:
    """What is wrong with one tensor's header entry, against `data` bytes of tensors."""
    if not isinstance(t, dict):
        return "bad tensor entry"
    offsets, shape, dtype = t.get("data_offsets"), t.get("shape"), t.get("dtype")
    width = DTYPE_BYTES.get(dtype) if isinstance(dtype, str) else None
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data
        and isinstance(shape, list)
        and all(isinstance(d, int) and d >= 0 for d in shape)
        and width is not None
    ):
        return "bad tensor entry"
    if math.prod(shape) * width != offsets[1] - offsets[0]:
        return f"{shown(name)}: shape {shape} of {dtype} is not its {offsets[1] - offsets[0]} bytes"
    return None


def check_checkpoint(
    ckpt: Path, model_type: str, label: str, needs: tuple[str | tuple[str, ...], ...]
) -> tuple[dict, Preprocess]:
    """Refuse, in one line, a checkpoint directory an exporter cannot take: a file of `needs`
    missing (a tuple: any one of them), weights other than model.safetensors (pickle is
    refused), another model_type, a malformed safetensors header, or a preprocessing that does
    not give the model's image size. Returns (config.json, its preprocessing)."""
    missing = [
        " or ".join(need) if isinstance(need, tuple) else need
        for need in needs
        if not any((ckpt / f).exists() for f in (need if isinstance(need, tuple) else (need,)))
    ]
    if missing:
        raise ExportError(
            f"{ckpt} is not a {label} checkpoint directory: missing {', '.join(missing)}"
        )
    if not (ckpt / "model.safetensors").exists():
        extra = " (pickle checkpoints are refused)" if (ckpt / "pytorch_model.bin").exists() else ""
        raise ExportError(f"{ckpt}: no model.safetensors{extra}")
    config = json_object(ckpt / "config.json")
    if config.get("model_type") != model_type:
        raise ExportError(f"{ckpt}: model_type is {config.get('model_type')!r}, not {model_type!r}")
    check_safetensors(ckpt / "model.safetensors")
    if (ckpt / "tokenizer.json").exists():
        tokenizer(ckpt / "tokenizer.json")
    try:
        pre = Preprocess.from_config(json_object(ckpt / "preprocessor_config.json"))
    except (TypeError, ValueError, KeyError) as e:
        raise ExportError(f"{ckpt}/preprocessor_config.json: malformed ({e})") from None
    vision = config.get("vision_config") or {}
    check_size(ckpt, pre, vision.get("image_size", 224) if isinstance(vision, dict) else None)
    return config, pre


def tokenizer(path: Path):
    """The checkpoint's tokenizer.json as the runtime will load it (the tokenizers library),
    or one line where it is not one: valid JSON is not enough."""
    from tokenizers import Tokenizer

    json_object(path)  # bad JSON or another shape: its own line
    try:
        return Tokenizer.from_str(path.read_text(encoding="utf-8"))
    except Exception as e:  # the Rust library raises a bare Exception
        said = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise ExportError(
            f"{path}: not a tokenizer the tokenizers library reads ({said})"
        ) from None


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


def run_towers(out: Path, image_feed: dict, text_feed: dict) -> dict[tuple[str, str], np.ndarray]:
    """Both exported towers in both precisions: {(image|text, fp32|int8): output}."""
    return {
        (tower, prec): run_onnx(out / f"{name}{'.int8' if prec == 'int8' else ''}.onnx", feed)
        for tower, name, feed in (
            ("image", "vision_model", image_feed),
            ("text", "text_model", text_feed),
        )
        for prec in ("fp32", "int8")
    }


def check_fp32(fp32: dict[str, dict]) -> None:
    """Raise ExportError for the first tower whose fp32 export does not match PyTorch."""
    for tower, r in fp32.items():
        if r["cosine_min"] < FP32_MIN_COSINE or r["max_abs"] > FP32_MAX_ABS:
            raise ExportError(
                f"fp32 {tower} tower does not match PyTorch: cosine {r['cosine_min']:.6f} "
                f"(need ≥ {FP32_MIN_COSINE}), max-abs {r['max_abs']:.2e} (need ≤ {FP32_MAX_ABS})"
            )
