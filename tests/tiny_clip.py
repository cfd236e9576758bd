"""A tiny CLIP checkpoint built in the test: random weights, a small real BPE, HF file layout."""

from __future__ import annotations

import json
from pathlib import Path

from offline_vision.models.clip import bytes_to_unicode

WORDS = [
    "a",
    "photo",
    "of",
    "the",
    "cat",
    "dog",
    "car",
    "ship",
    "bird",
    "truck",
    "frog",
    "horse",
    "deer",
    "airplane",
    "automobile",
    "small",
    "big",
    "blurry",
    "good",
    "bad",
    "black",
    "and",
    "white",
    "itap",
    "origami",
    "video",
    "game",
    "art",
    "large",
]


def _write_tokenizer_files(d: Path) -> None:
    """CLIP-style vocab.json + merges.txt: all bytes, plus merges that spell WORDS."""
    chars = list(bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        pieces = [*list(word[:-1]), word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in merges:
                merges.append(pair)
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
    for a, b in merges:
        if a + b not in vocab_list:
            vocab_list.append(a + b)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    (d / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab_list)}))
    (d / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n"
    )


def build_tiny_clip(
    d: Path, *, seed: int = 0, width: int = 32, image_size: int = 224, full: bool = False
) -> Path:
    """Write a complete tiny CLIP checkpoint directory (config, safetensors, tokenizer, processor).
    With `full`, the towers are ViT-B/32's (transformers' CLIPConfig defaults), weights random."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPTokenizer,
        CLIPTokenizerFast,
    )

    d.mkdir(parents=True, exist_ok=True)
    _write_tokenizer_files(d)
    slow = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    fast = CLIPTokenizerFast.from_pretrained(str(d), from_slow=True)
    fast.save_pretrained(str(d))
    del slow
    for f in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        (d / f).unlink(missing_ok=True)
    vocab = len(fast)
    eos = fast.convert_tokens_to_ids("<|endoftext|>")
    bos = fast.convert_tokens_to_ids("<|startoftext|>")
    CLIPImageProcessor().save_pretrained(str(d))
    torch.manual_seed(seed)
    special = dict(eos_token_id=eos, bos_token_id=bos, pad_token_id=eos)
    if full:
        cfg = CLIPConfig(text_config=dict(vocab_size=vocab, **special))
        CLIPModel(cfg).eval().save_pretrained(str(d), safe_serialization=True)
        return d
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=vocab,
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            eos_token_id=eos,
            bos_token_id=bos,
            pad_token_id=eos,
        ),
        vision_config=dict(
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=32,
        ),
        projection_dim=16,
    )
    CLIPModel(cfg).eval().save_pretrained(str(d), safe_serialization=True)
    return d
