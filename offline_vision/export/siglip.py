"""A Hugging Face SigLIP checkpoint (`SiglipModel`) → two ONNX towers (fp32 + int8), validated.

SigLIP differs from CLIP in what a user would otherwise get silently wrong, so each is carried
into the bundle and checked against transformers at export time:
- scores are sigmoids, sigmoid(logit_scale · cosine + logit_bias), one per label, not a softmax;
- text is padded to the full context length (`max_length`, as it was trained: the text
  embedding is read from the last position), with no attention mask;
- the tokenizer is SentencePiece (`spiece.model`, lower-casing and dropping punctuation in
  transformers' SiglipTokenizer) or a `tokenizer.json` (SigLIP 2's Gemma tokenizer); either way
  the bundle gets a `tokenizer.json` whose ids are checked equal to transformers' own;
- images are resized to the model's size with no centre crop (`preprocessor_config.json`),
  checked equal to SiglipImageProcessor's pixels.
"""

from __future__ import annotations

import shutil
import string
from pathlib import Path

import numpy as np

from offline_vision.errors import ExportError
from offline_vision.export.checks import (
    THRESHOLDS,
    VALIDATION_TEXTS,
    check_checkpoint,
    check_fp32,
    load_complete,
    run_towers,
    validation_images,
)
from offline_vision.export.onnx import (
    OPSET,
    OnnxSpec,
    compare,
    export_torch,
    quantize_int8,
    quiet,
    require_export_extra,
    versions,
)
from offline_vision.files import write_atomic
from offline_vision.models.clip import ClipTokenizer
from offline_vision.models.preprocess import Preprocess
from offline_vision.models.scorer import l2_normalize, sigmoid

PIXELS_MAX_ABS = 1e-4  # ours vs SiglipImageProcessor's, after normalisation
# Texts whose tokens must come out as transformers' do: the usual prompts, and what
# SiglipTokenizer rewrites (capitals, punctuation, runs of spaces) or cuts (over 64 tokens).
TOKENIZER_TEXTS = (
    *VALIDATION_TEXTS,
    "A Photo of a CAT, (blurry)!",
    "  two   spaces  and\ta tab ",
    "a photo of the bird-watcher's café.",
    " ".join(["a very long label that goes on"] * 20),
)
FILES = ("config.json", "preprocessor_config.json", "tokenizer.json")
NEEDS = ("config.json", "preprocessor_config.json", ("tokenizer.json", "spiece.model"))


def _reference_tokenizer(ckpt: Path, pad_id: int | None):
    """The tokenizer transformers would use for this checkpoint; where it names no pad token,
    the text config's pad token id is its pad."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast, SiglipTokenizer

    try:
        if (ckpt / "spiece.model").exists() and not (ckpt / "tokenizer.json").exists():
            reference = SiglipTokenizer.from_pretrained(str(ckpt))
        elif (ckpt / "tokenizer_config.json").exists():
            reference = AutoTokenizer.from_pretrained(str(ckpt))
        else:
            reference = PreTrainedTokenizerFast(tokenizer_file=str(ckpt / "tokenizer.json"))
    except (OSError, ValueError, TypeError, KeyError, ImportError) as e:
        raise ExportError(
            f"{ckpt}: its tokenizer does not load ({str(e).splitlines()[0]})"
        ) from None
    if reference.pad_token is None and pad_id is not None:
        reference.pad_token = reference.convert_ids_to_tokens(pad_id)
    if reference.pad_token is None:
        raise ExportError(f"{ckpt}: neither its tokenizer nor its config names a pad token")
    return reference


def tokenizer_json(reference) -> str:
    """A `tokenizer.json` doing what `reference` does: a fast tokenizer's own, or SiglipTokenizer
    (SentencePiece, slow) converted with its text rewriting as normalisers."""
    if reference.is_fast:
        return reference.backend_tokenizer.to_str()
    from tokenizers import Regex, normalizers, processors
    from transformers.convert_slow_tokenizer import SpmConverter

    class SiglipConverter(SpmConverter):
        def normalizer(self, proto):
            punctuation = "[" + "".join("\\" + c for c in string.punctuation) + "]"
            steps = [
                normalizers.Lowercase(),
                normalizers.Replace(Regex(punctuation), ""),
                normalizers.Replace(Regex(r"\s+"), " "),
                normalizers.Strip(),
            ]
            base = super().normalizer(proto)
            return normalizers.Sequence(steps + ([base] if base is not None else []))

        def post_processor(self):
            eos = self.original_tokenizer.eos_token
            return processors.TemplateProcessing(
                single=f"$A {eos}",
                pair=f"$A {eos} $B {eos}",
                special_tokens=[(eos, self.original_tokenizer.eos_token_id)],
            )

    return SiglipConverter(reference).converted().to_str()


def _load(ckpt: Path):
    from transformers import SiglipModel

    return load_complete(SiglipModel, ckpt)


def _towers(model):
    """The two towers as modules with one input and one output each (weights shared)."""
    from torch import nn

    class Text(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            return self.model.get_text_features(input_ids=input_ids)

    class Vision(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model.get_image_features(pixel_values=pixel_values)

    return Text().eval(), Vision().eval()


def _export_towers(model, out: Path, context: int, size: tuple[int, int]) -> None:
    import torch

    text, vision = _towers(model)
    batch = {0: "batch_size"}
    export_torch(
        text,
        OnnxSpec(inputs={"input_ids": batch}, outputs={"text_embeds": batch}),
        (torch.ones((2, context), dtype=torch.int64),),
        out / "text_model.onnx",
    )
    export_torch(
        vision,
        OnnxSpec(inputs={"pixel_values": batch}, outputs={"image_embeds": batch}),
        (torch.zeros((2, 3, *size)),),
        out / "vision_model.onnx",
    )
    for tower in ("text_model", "vision_model"):
        quantize_int8(out / f"{tower}.onnx", out / f"{tower}.int8.onnx")


@quiet()
def export_siglip(
    ckpt: Path, out: Path, *, photo_dir: Path | None, source: dict
) -> tuple[dict, dict]:
    """Export into `out`; returns (files, manifest meta) for `store.install`."""
    require_export_extra()
    _, pre = check_checkpoint(ckpt, "siglip", "SigLIP", NEEDS)
    out.mkdir(parents=True, exist_ok=True)
    model = _load(ckpt)
    reference = _reference_tokenizer(ckpt, model.config.text_config.pad_token_id)
    write_atomic(out / "tokenizer.json", tokenizer_json(reference))
    for f in ("config.json", "preprocessor_config.json"):
        shutil.copyfile(ckpt / f, out / f)
    context, pad_id = model.config.text_config.max_position_embeddings, reference.pad_token_id
    if pre.out_size is None:
        raise ExportError(f"{ckpt}: preprocessor_config.json gives no fixed image size")
    _export_towers(model, out, context, pre.out_size)
    text = {"context_length": context, "pad_id": int(pad_id), "padding": "max_length"}
    validation = _validate(ckpt, out, model, reference, text, pre, photo_dir)
    files = {f: out / f for f in FILES}
    for tower in ("vision_model", "text_model"):
        files |= {f"{tower}.onnx": out / f"{tower}.onnx"}
        files |= {f"{tower}.int8.onnx": out / f"{tower}.int8.onnx"}
    meta = {
        "source": source,
        "opset": OPSET,
        "score": "sigmoid",
        "logit_scale": float(model.logit_scale.exp().item()),
        "logit_bias": float(model.logit_bias.item()),
        "text": text,
        "onnx": {
            "fp32": {"vision": "vision_model.onnx", "text": "text_model.onnx"},
            "int8": {"vision": "vision_model.int8.onnx", "text": "text_model.int8.onnx"},
        },
        "validation": validation,
        "exported_with": versions("torch", "transformers", "onnxruntime", "sentencepiece"),
    }
    return files, meta


def _our_tokenizer(out: Path, text: dict) -> ClipTokenizer:
    """The bundle's tokenizer, padded as its manifest says (what the scorer will load)."""
    path = out / "tokenizer.json"
    return ClipTokenizer(
        path.read_text(encoding="utf-8"), text["context_length"], text["pad_id"], max_length=True
    )


def _same_tokens(out: Path, reference, text: dict) -> int:
    """Our tokenizer.json, padded as the bundle says, against transformers' own; returns the
    number of texts checked, raises ExportError at the first difference."""
    ids, _ = _our_tokenizer(out, text)(TOKENIZER_TEXTS)
    theirs = reference(
        list(TOKENIZER_TEXTS),
        padding="max_length",
        max_length=text["context_length"],
        truncation=True,
    )["input_ids"]
    for text_, a, b in zip(TOKENIZER_TEXTS, ids.tolist(), theirs, strict=True):
        if a != list(b):
            raise ExportError(
                f"the tokenizer does not tokenise {text_[:40]!r} as transformers does"
            )
    return len(TOKENIZER_TEXTS)


def _same_pixels(ckpt: Path, pre: Preprocess, images) -> tuple[np.ndarray, float]:
    from transformers import SiglipImageProcessor

    ours = pre(images)
    theirs = SiglipImageProcessor.from_pretrained(str(ckpt))(images, return_tensors="np")
    worst = float(np.abs(ours - theirs["pixel_values"]).max())
    if worst > PIXELS_MAX_ABS:
        raise ExportError(f"our preprocessing differs from SiglipImageProcessor's by {worst:.2e}")
    return ours, worst


def _validate(ckpt, out, model, reference, text, pre, photo_dir) -> dict:
    """The PyTorch model against both exports: embeddings, and the sigmoid scores of every
    image against every text; raises ExportError where fp32 does not match."""
    import torch

    images, described = validation_images(photo_dir)
    checked = _same_tokens(out, reference, text)
    pixels, pixel_diff = _same_pixels(ckpt, pre, images)
    ids, _ = _our_tokenizer(out, text)(VALIDATION_TEXTS)
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(ids), pixel_values=torch.from_numpy(pixels))
    ref_img, ref_txt = ref.image_embeds.numpy(), ref.text_embeds.numpy()
    runs = run_towers(out, {"pixel_values": pixels}, {"input_ids": ids})
    fp32 = {t: compare(r, runs[t, "fp32"]) for t, r in (("image", ref_img), ("text", ref_txt))}
    check_fp32(fp32)
    scale, bias = model.logit_scale.exp().item(), model.logit_bias.item()
    ours = sigmoid(
        scale * l2_normalize(runs["image", "fp32"]) @ l2_normalize(runs["text", "fp32"]).T + bias
    )
    theirs = torch.sigmoid(ref.logits_per_image).numpy()
    return {
        "images": described,
        "texts": len(VALIDATION_TEXTS),
        "tokenizer_texts_equal": checked,
        "pixels_max_abs": pixel_diff,
        "fp32_vs_pytorch": fp32,
        "int8_vs_fp32": {t: compare(runs[t, "fp32"], runs[t, "int8"]) for t in ("image", "text")},
        "sigmoid_scores_max_abs": float(np.abs(ours - theirs).max()),
        "thresholds": THRESHOLDS,
    }
