"""Tiny llama-architecture GGUFs written in the test (random weights, a byte-level BPE
vocabulary, a chat template of our choosing): what llama.cpp loads, renders and decodes with,
without any real model. Their answers mean nothing; the prompts they are sent and the parsing
of constrained answers are what the tests check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Gemma's own template, in its essentials: no system role, and user/assistant strictly alternate.
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
SPECIAL = ["<bos>", "<eos>", "<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>"]
EMBD, HEADS, FF = 32, 2, 64


def _byte_tokens() -> list[str]:
    """GPT-2's byte → printable-character table: the 256 tokens every byte string splits into."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_gguf(path: Path, template: str, seed: int = 0) -> Path:
    """A one-layer llama GGUF at `path` whose tokenizer carries `template`."""
    import gguf

    tokens = [*_byte_tokens(), *SPECIAL]
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.normal(size=shape) * 0.02).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(512)
    writer.add_embedding_length(EMBD)
    writer.add_block_count(1)
    writer.add_feed_forward_length(FF)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBD // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * 256 + [3] * len(SPECIAL))  # normal bytes, control tokens
    writer.add_token_merges(["Ġ t", "h e"])
    writer.add_bos_token_id(256)
    writer.add_eos_token_id(257)
    writer.add_chat_template(template)
    ones = np.ones(EMBD, np.float32)
    writer.add_tensor("token_embd.weight", w(n_vocab, EMBD))
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", w(n_vocab, EMBD))
    for name, shape in (
        ("attn_q", (EMBD, EMBD)),
        ("attn_k", (EMBD, EMBD)),
        ("attn_v", (EMBD, EMBD)),
        ("attn_output", (EMBD, EMBD)),
        ("ffn_gate", (FF, EMBD)),
        ("ffn_up", (FF, EMBD)),
        ("ffn_down", (EMBD, FF)),
    ):
        writer.add_tensor(f"blk.0.{name}.weight", w(*shape))
    writer.add_tensor("blk.0.attn_norm.weight", ones)
    writer.add_tensor("blk.0.ffn_norm.weight", ones)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
