"""Tiny random ConSE towers built in the test: an ImageNet-shaped classifier and a small BERT."""

from __future__ import annotations

from pathlib import Path

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
    "vehicle",
    "animal",
    "kind",
    "fish",
    "mammal",
]


def tiny_image_net(seed: int = 0):
    """3×H×W → 1000 logits, like EfficientNet-Lite2's head, in a few thousand parameters."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, kernel_size=5, stride=4),
        torch.nn.ReLU6(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 1000),
    ).eval()


def tiny_text_dir(d: Path, seed: int = 0) -> Path:
    """A 1-layer BERT (safetensors) with a WordPiece tokenizer.json of a small vocabulary."""
    import torch
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel

    d.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list(",.-'")
    tokens = dict.fromkeys(specials + list(WORDS) + chars + ["##" + c for c in chars])
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(
        ("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"])
    )
    tok.decoder = decoders.WordPiece()
    tok.save(str(d / "tokenizer.json"))
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(cfg).eval().save_pretrained(str(d), safe_serialization=True)
    return d
