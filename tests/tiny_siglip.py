"""A tiny SigLIP checkpoint built in the test: random weights, a small SentencePiece model
trained here, google/siglip-*'s file layout (spiece.model, no tokenizer.json)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from tiny_clip import WORDS


def _train_spiece(path: Path) -> None:
    import sentencepiece as spm

    sentences = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 20
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=120,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def build_tiny_siglip(
    d: Path,
    *,
    seed: int = 0,
    width: int = 32,
    image_size: int = 64,
    fast: bool = False,
    full: bool = False,
) -> Path:
    """Write a tiny SigLIP checkpoint directory. With `fast`, its tokenizer is a tokenizer.json
    (SigLIP 2's layout) instead of spiece.model; with `full`, the towers are SigLIP base
    patch16-224's (transformers' SiglipConfig defaults), weights random."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipTokenizer

    d.mkdir(parents=True, exist_ok=True)
    _train_spiece(d / "spiece.model")
    tok = SiglipTokenizer(str(d / "spiece.model"))
    tok.save_pretrained(str(d))
    if fast:
        from offline_vision.export.siglip import tokenizer_json

        (d / "tokenizer.json").write_text(tokenizer_json(tok), encoding="utf-8")
        for f in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
            (d / f).unlink()
    image_size = 224 if full else image_size
    size = {"height": image_size, "width": image_size}
    SiglipImageProcessor(size=size).save_pretrained(str(d))
    torch.manual_seed(seed)
    layers = dict(
        hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2, num_attention_heads=2
    )
    special = dict(pad_token_id=1, eos_token_id=1)
    if full:
        cfg = SiglipConfig(text_config=special)
    else:
        cfg = SiglipConfig(
            text_config=dict(vocab_size=len(tok), max_position_embeddings=16, **special, **layers),
            vision_config=dict(image_size=image_size, patch_size=16, **layers),
        )
    model = SiglipModel(cfg).eval()
    with torch.no_grad():  # SigLIP's own starting values, so scores are not near 0.5 throughout
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-10.0)
    model.save_pretrained(str(d), safe_serialization=True)
    return d
