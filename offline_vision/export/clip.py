"""A Hugging Face CLIP checkpoint → two ONNX towers (fp32 + int8), validated, with a manifest."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from offline_vision.errors import ExportError
from offline_vision.export.checks import (
    VALIDATION_TEXTS,
    check_safetensors,
    check_size,
    json_object,
    run_onnx,
    validation_images,
)
from offline_vision.export.onnx import (
    OPSET,
    compare,
    quantize_int8,
    quiet,
    require_export_extra,
    versions,
)
from offline_vision.models.clip import ClipTokenizer, Preprocess

log = logging.getLogger("ovision")

# Acceptance thresholds for fp32 (L2-normalised embeddings, ONNX vs PyTorch).
FP32_MIN_COSINE = 0.9999
FP32_MAX_ABS = 1e-4
CHECKPOINT_FILES = ("config.json", "preprocessor_config.json", "tokenizer.json")


def _check_checkpoint(ckpt: Path) -> None:
    missing = [f for f in CHECKPOINT_FILES if not (ckpt / f).exists()]
    if missing:
        raise ExportError(
            f"{ckpt} is not a CLIP checkpoint directory: missing {', '.join(missing)}"
        )
    if not (ckpt / "model.safetensors").exists():
        extra = " (pickle checkpoints are refused)" if (ckpt / "pytorch_model.bin").exists() else ""
        raise ExportError(f"{ckpt}: no model.safetensors{extra}")
    config = json_object(ckpt / "config.json")
    if config.get("model_type") != "clip":
        raise ExportError(f"{ckpt}: model_type is {config.get('model_type')!r}, not 'clip'")
    check_safetensors(ckpt / "model.safetensors")
    vision = config.get("vision_config") or {}
    image_size = vision.get("image_size", 224) if isinstance(vision, dict) else None
    try:
        pre = Preprocess.from_config(json_object(ckpt / "preprocessor_config.json"))
    except (TypeError, ValueError, KeyError) as e:
        raise ExportError(f"{ckpt}/preprocessor_config.json: malformed ({e})") from None
    check_size(ckpt, pre, image_size)


def _onnx_configs():
    from optimum.exporters.onnx.model_configs import (
        CLIPTextWithProjectionOnnxConfig,
        CLIPVisionModelOnnxConfig,
    )

    class TextConfig(CLIPTextWithProjectionOnnxConfig):
        @property
        def outputs(self):
            return {"text_embeds": {0: "batch_size"}}

    class VisionConfig(CLIPVisionModelOnnxConfig):
        @property
        def inputs(self):
            return {"pixel_values": {0: "batch_size"}}

        @property
        def outputs(self):
            return {"image_embeds": {0: "batch_size"}}

    return TextConfig, VisionConfig


@quiet()
def export_clip(
    ckpt: Path, out: Path, *, photo_dir: Path | None, source: dict
) -> tuple[dict, dict]:
    """Export into `out`; returns (files, manifest meta) for `store.install`."""
    require_export_extra()
    from offline_vision.export.clip_layers import GRAPH_NOTE

    _check_checkpoint(ckpt)
    out.mkdir(parents=True, exist_ok=True)
    model, text, vision = _load(ckpt)
    _export_towers(text, vision, out)
    for f in CHECKPOINT_FILES:
        shutil.copyfile(ckpt / f, out / f)
    described, validation = _validate(ckpt, out, model, text, vision, photo_dir)
    files = {
        f: out / f
        for f in (
            *CHECKPOINT_FILES,
            "vision_model.onnx",
            "text_model.onnx",
            "vision_model.int8.onnx",
            "text_model.int8.onnx",
        )
    }
    meta = {
        "source": source,
        "opset": OPSET,
        "graph": {"vision": GRAPH_NOTE},
        "logit_scale": float(model.logit_scale.exp().item()),
        "text": {
            "context_length": model.config.text_config.max_position_embeddings,
            "pad_id": pad_id(ckpt),
        },
        "onnx": {
            "fp32": {"vision": "vision_model.onnx", "text": "text_model.onnx"},
            "int8": {"vision": "vision_model.int8.onnx", "text": "text_model.int8.onnx"},
        },
        "validation": {
            "images": described,
            "texts": len(VALIDATION_TEXTS),
            **validation,
            "thresholds": {"fp32_min_cosine": FP32_MIN_COSINE, "fp32_max_abs": FP32_MAX_ABS},
        },
        "exported_with": versions(
            "torch", "transformers", "optimum", "optimum-onnx", "onnxruntime"
        ),
    }
    return files, meta


def _load(ckpt: Path):
    """The checkpoint's CLIPModel and its two towers (text, vision) as the export wraps them."""
    from transformers import CLIPModel

    from offline_vision.export.clip_layers import text_tower, vision_tower

    try:
        model = CLIPModel.from_pretrained(ckpt, use_safetensors=True).eval()
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise ExportError(
            f"{ckpt}: transformers could not load it ({str(e).splitlines()[0]})"
        ) from None
    return model, text_tower(model), vision_tower(model)


def _export_towers(text, vision, out: Path) -> None:
    """Both towers to ONNX (the image tower's last layer for the class token only), then int8."""
    from optimum.exporters.onnx import export_models

    from offline_vision.export.clip_layers import class_token_vision

    TextConfig, VisionConfig = _onnx_configs()
    export_models(
        {
            "text_model": (text, TextConfig(text.config, task="feature-extraction")),
            "vision_model": (
                class_token_vision(vision),
                VisionConfig(vision.config, task="feature-extraction"),
            ),
        },
        output_dir=out,
        opset=OPSET,
    )
    for tower in ("text_model", "vision_model"):
        quantize_int8(out / f"{tower}.onnx", out / f"{tower}.int8.onnx")


def _validate(ckpt: Path, out: Path, model, text, vision, photo_dir) -> tuple[str, dict]:
    """The unmodified PyTorch towers against both exports, on real photos where available;
    raises ExportError when fp32 does not match PyTorch."""
    import torch

    images, described = validation_images(photo_dir)
    pre = Preprocess.from_config(json.loads((ckpt / "preprocessor_config.json").read_text()))
    pixels = pre(images)
    ids, mask = ClipTokenizer(
        (ckpt / "tokenizer.json").read_text(),
        model.config.text_config.max_position_embeddings,
        pad_id(ckpt),
    )(VALIDATION_TEXTS)
    with torch.no_grad():
        ref_img = vision(pixel_values=torch.from_numpy(pixels)).image_embeds.numpy()
        ref_txt = text(input_ids=torch.from_numpy(ids)).text_embeds.numpy()
    feed_img, feed_txt = {"pixel_values": pixels}, {"input_ids": ids, "attention_mask": mask}
    onnx = {
        (tower, prec): run_onnx(out / f"{name}{'.int8' if prec == 'int8' else ''}.onnx", feed)
        for tower, name, feed in (
            ("image", "vision_model", feed_img),
            ("text", "text_model", feed_txt),
        )
        for prec in ("fp32", "int8")
    }
    fp32 = {
        "image": compare(ref_img, onnx["image", "fp32"]),
        "text": compare(ref_txt, onnx["text", "fp32"]),
    }
    int8 = {t: compare(onnx[t, "fp32"], onnx[t, "int8"]) for t in ("image", "text")}
    for tower, r in fp32.items():
        if r["cosine_min"] < FP32_MIN_COSINE or r["max_abs"] > FP32_MAX_ABS:
            raise ExportError(
                f"fp32 {tower} tower does not match PyTorch: cosine {r['cosine_min']:.6f} "
                f"(need ≥ {FP32_MIN_COSINE}), max-abs {r['max_abs']:.2e} (need ≤ {FP32_MAX_ABS})"
            )
    return described, {"fp32_vs_pytorch": fp32, "int8_vs_fp32": int8}


def pad_id(ckpt: Path) -> int:
    """The pad token's id: from tokenizer_config.json when present, else CLIP's <|endoftext|>."""
    tok = json.loads((ckpt / "tokenizer.json").read_text())
    vocab = tok.get("model", {}).get("vocab", {})
    pad = "<|endoftext|>"
    cfg = ckpt / "tokenizer_config.json"
    if cfg.exists():
        value = json.loads(cfg.read_text()).get("pad_token")
        pad = value.get("content", pad) if isinstance(value, dict) else (value or pad)
    for added in tok.get("added_tokens", []):
        if added["content"] == pad:
            return int(added["id"])
    return int(vocab.get(pad, 0))
