"""ConSE's two towers → ONNX: EfficientNet-Lite2 (ImageNet logits) and all-MiniLM-L6-v2."""

from __future__ import annotations

import io
import json
import shutil
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from offline_vision.export.checks import THRESHOLDS, check_fp32, run_onnx, validation_images
from offline_vision.export.onnx import (
    OPSET,
    OnnxSpec,
    compare,
    export_torch,
    quiet,
    require_export_extra,
    versions,
)
from offline_vision.files import write_atomic
from offline_vision.models.conse import (
    IMAGE_PREPROCESS,
    LOGIT_SCALE,
    TEXT_MAX_TOKENS,
    TOP_T,
    MiniLMTokenizer,
    mean_pool,
)

IMAGE_SPEC = OnnxSpec(
    inputs={"pixel_values": {0: "batch_size"}}, outputs={"logits": {0: "batch_size"}}
)
TEXT_SPEC = OnnxSpec(
    inputs={
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "sequence_length"},
        "token_type_ids": {0: "batch_size", 1: "sequence_length"},
    },
    outputs={"last_hidden_state": {0: "batch_size", 1: "sequence_length"}},
)


def class_texts() -> list[str]:
    """The 1000 ImageNet class texts, in class-index order (data file, see its header)."""
    raw = resources.files("offline_vision").joinpath("data", "conse_imagenet_texts.tsv")
    rows = [
        line.split("\t", 1) for line in raw.read_text().splitlines() if not line.startswith("#")
    ]
    return [text for _wnid, text in rows]


def efficientnet_lite2(arch_dir: Path, weights: Path):
    """The architecture package from its (hash-verified) wheel, with weights loaded safely."""
    import torch

    sys.path.insert(0, str(arch_dir))
    try:
        from efficientnet_lite_pytorch import EfficientNet
    finally:
        sys.path.remove(str(arch_dir))
    net = EfficientNet.from_name("efficientnet-lite2")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


def _sentence_encoder(model_dir: Path):
    """MiniLM as a module taking the three BERT inputs positionally, returning hidden states."""
    import torch
    from transformers import BertModel

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = BertModel.from_pretrained(model_dir, use_safetensors=True)

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    return Encoder().eval()


@quiet()
def _validate(net, bert, tokenizer, out: Path, photo_dir) -> tuple[str, dict, dict]:
    """Both ONNX towers against PyTorch; raises ExportError when either does not match."""
    import torch

    images, described = validation_images(photo_dir)
    pixels = IMAGE_PREPROCESS(images)
    with torch.no_grad():
        ref_logits = net(torch.from_numpy(pixels)).numpy()
    image_check = compare(ref_logits, run_onnx(out / "image_model.onnx", {"pixel_values": pixels}))
    ids, mask, types = tokenizer(class_texts()[:16])
    with torch.no_grad():
        ref = bert(*(torch.from_numpy(a) for a in (ids, mask, types))).numpy()
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    text_check = compare(
        mean_pool(ref, mask), mean_pool(run_onnx(out / "text_model.onnx", feed), mask)
    )
    check_fp32({"image": image_check, "text": text_check})
    return described, image_check, text_check


def _class_text_embeddings(tokenizer, out: Path) -> np.ndarray:
    """The ImageNet class texts through the exported ONNX text tower, 64 at a time."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "text_model.onnx"), providers=["CPUExecutionProvider"])
    texts, chunks = class_texts(), []
    for i in range(0, len(texts), 64):
        ids, mask, types = tokenizer(texts[i : i + 64])
        hidden = sess.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )[0]
        chunks.append(mean_pool(hidden, mask))
    return np.concatenate(chunks).astype(np.float32)


def export_conse(
    net, text_dir: Path, out: Path, *, photo_dir: Path | None, source: dict
) -> tuple[dict, dict]:
    """Export an ImageNet-1k classifier (`net`: a torch module, 3×260×260 → 1000 logits), the
    sentence embedder in `text_dir` (HF BERT + tokenizer.json) and the class-text embeddings
    into `out`; returns (files, meta) for `store.install`."""
    require_export_extra()
    import torch

    out.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    size = IMAGE_PREPROCESS.out_size or (260, 260)  # ConSE's preprocessing always crops
    export_torch(net, IMAGE_SPEC, (torch.zeros(1, 3, *size),), out / "image_model.onnx")
    bert = _sentence_encoder(text_dir)
    tok_json = (text_dir / "tokenizer.json").read_text()
    tokenizer = MiniLMTokenizer(tok_json)
    dummy = tokenizer(["a photo of a cat", "a dog"])
    export_torch(
        bert, TEXT_SPEC, tuple(torch.from_numpy(a) for a in dummy), out / "text_model.onnx"
    )
    write_atomic(out / "tokenizer.json", tok_json)

    # Validation against PyTorch, then the class-text embeddings from the ONNX text tower itself,
    # so that runtime labels and class texts are embedded by the very same graph.
    described, image_check, text_check = _validate(net, bert, tokenizer, out, photo_dir)
    buf = io.BytesIO()
    np.save(buf, _class_text_embeddings(tokenizer, out))
    write_atomic(out / "class_text_embeddings.npy", buf.getvalue())
    shutil.copyfile(
        Path(str(resources.files("offline_vision").joinpath("data", "conse_imagenet_texts.tsv"))),
        out / "class_texts.tsv",
    )
    files = {
        f: out / f
        for f in (
            "image_model.onnx",
            "text_model.onnx",
            "tokenizer.json",
            "class_text_embeddings.npy",
            "class_texts.tsv",
        )
    }
    meta = {
        "source": source,
        "opset": OPSET,
        "standin": True,
        "note": "ConSE stand-in scorer, weaker than CLIP",
        "logit_scale": LOGIT_SCALE,
        "top_t": TOP_T,
        "text": {"max_tokens": TEXT_MAX_TOKENS},
        "validation": {
            "images": described,
            "fp32_vs_pytorch": {"image_logits": image_check, "text_embeddings": text_check},
            "thresholds": THRESHOLDS,
        },
        "exported_with": versions("torch", "transformers", "onnxruntime"),
    }
    json.dumps(meta)  # fail here, not at install, if anything is not serialisable
    return files, meta
