"""A Hugging Face CLIP checkpoint → two ONNX towers (fp32 + int8), validated, with a manifest."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from offline_vision.export.checks import (
    THRESHOLDS,
    VALIDATION_TEXTS,
    check_checkpoint,
    check_fp32,
    json_object,
    load_complete,
    run_towers,
    tokenizer,
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
from offline_vision.models.clip import ClipTokenizer

log = logging.getLogger("ovision")

CHECKPOINT_FILES = ("config.json", "preprocessor_config.json", "tokenizer.json")


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

    _, pre = check_checkpoint(ckpt, "clip", "CLIP", CHECKPOINT_FILES)
    out.mkdir(parents=True, exist_ok=True)
    model, text, vision = _load(ckpt)
    _export_towers(text, vision, out)
    for f in CHECKPOINT_FILES:
        shutil.copyfile(ckpt / f, out / f)
    described, validation = _validate(ckpt, out, model, text, vision, pre, photo_dir)
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
            "thresholds": THRESHOLDS,
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

    model = load_complete(CLIPModel, ckpt)
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


def _validate(ckpt: Path, out: Path, model, text, vision, pre, photo_dir) -> tuple[str, dict]:
    """The unmodified PyTorch towers against both exports, on real photos where available;
    raises ExportError when fp32 does not match PyTorch."""
    import torch

    images, described = validation_images(photo_dir)
    pixels = pre(images)
    ids, mask = ClipTokenizer(
        (ckpt / "tokenizer.json").read_text(),
        model.config.text_config.max_position_embeddings,
        pad_id(ckpt),
    )(VALIDATION_TEXTS)
    with torch.no_grad():
        ref_img = vision(pixel_values=torch.from_numpy(pixels)).image_embeds.numpy()
        ref_txt = text(input_ids=torch.from_numpy(ids)).text_embeds.numpy()
    onnx = run_towers(out, {"pixel_values": pixels}, {"input_ids": ids, "attention_mask": mask})
    fp32 = {
        "image": compare(ref_img, onnx["image", "fp32"]),
        "text": compare(ref_txt, onnx["text", "fp32"]),
    }
    int8 = {t: compare(onnx[t, "fp32"], onnx[t, "int8"]) for t in ("image", "text")}
    check_fp32(fp32)
    return described, {"fp32_vs_pytorch": fp32, "int8_vs_fp32": int8}


def pad_id(ckpt: Path) -> int:
    """The pad token's id: from tokenizer_config.json when present, else CLIP's <|endoftext|>."""
    pad = "<|endoftext|>"
    cfg = ckpt / "tokenizer_config.json"
    if cfg.exists():
        value = json_object(cfg).get("pad_token")
        pad = value.get("content", pad) if isinstance(value, dict) else (value or pad)
    found = tokenizer(ckpt / "tokenizer.json").token_to_id(str(pad))  # vocabulary or added
    return found if found is not None else 0
