"""Any llama.cpp chat GGUF: tiny random-weight GGUFs written here with the `gguf` package, one
with a ChatML template and one with Gemma's (no system role; turns must alternate). The tests
check the prompts each is sent and that constrained answers parse — not what the model says."""

from __future__ import annotations

import json

import pytest
from tiny_gguf import CHATML, GEMMA, write_gguf

from offline_vision.errors import ReasonerError
from offline_vision.models.reasoners.base import repair_message
from offline_vision.models.reasoners.llama_cpp import LlamaCppReasoner, fold_roles

ASK = [
    {"role": "system", "content": "Answer with one word."},
    {"role": "user", "content": "Name a mammal."},
]
CHOICES = ["cat", "dog", "ship"]
SCHEMA = {
    "type": "object",
    "properties": {
        "candidates": {
            "type": "array",
            "items": {"enum": CHOICES},
            "minItems": 2,
            "maxItems": 2,
        }
    },
    "required": ["candidates"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory):
    d = tmp_path_factory.mktemp("gguf")
    return {
        "chatml": write_gguf(d / "chatml.gguf", CHATML),
        "gemma": write_gguf(d / "gemma.gguf", GEMMA),
        "refusing": write_gguf(d / "refusing.gguf", "{{ raise_exception('no chat here') }}"),
    }


def _reasoner(path) -> LlamaCppReasoner:
    return LlamaCppReasoner(path, name=f"local:{path.name}", n_ctx=512)


def _works(r: LlamaCppReasoner) -> None:
    """Constrained answers parse, schema answers validate, and the choice odds come through
    the template: whatever the random weights say."""
    c = r.complete(ASK, choices=CHOICES, max_tokens=8)
    assert c.value in CHOICES and c.attempts == [c.value]  # the grammar made it one of them
    s = r.complete(ASK, schema=SCHEMA, max_tokens=64)
    assert len(s.value["candidates"]) == 2 and set(s.value["candidates"]) <= set(CHOICES)
    p = r.choice_probabilities(ASK, CHOICES)
    assert set(p) == set(CHOICES) and abs(sum(p.values()) - 1) < 1e-9


def test_a_chatml_gguf_keeps_its_system_turn(ggufs):
    r = _reasoner(ggufs["chatml"])
    assert r.prompt(ASK) == (
        "<|im_start|>system\nAnswer with one word.<|im_end|>\n"
        "<|im_start|>user\nName a mammal.<|im_end|>\n<|im_start|>assistant\n"
    )
    _works(r)


def test_a_gemma_style_gguf_gets_the_system_text_in_the_first_user_turn(ggufs):
    r = _reasoner(ggufs["gemma"])
    assert r.prompt(ASK) == (
        "<bos><start_of_turn>user\nAnswer with one word.\n\nName a mammal.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    _works(r)
    # the repair turn (the answer, then the problem stated) still alternates
    repair = [
        *ASK,
        {"role": "assistant", "content": "a whale, I think"},
        {"role": "user", "content": repair_message(ValueError("off the list"), CHOICES, None)},
    ]
    assert r.prompt(repair).count("<start_of_turn>user") == 2
    assert "<start_of_turn>model\na whale, I think<end_of_turn>" in r.prompt(repair)
    # two user turns in a row (a hint appended to a question) become one
    two = [*ASK, {"role": "user", "content": "One word only."}]
    assert r.prompt(two).count("<start_of_turn>user") == 1 and "One word only." in r.prompt(two)


def test_a_template_that_refuses_every_conversation_is_one_line(ggufs):
    r = _reasoner(ggufs["refusing"])
    with pytest.raises(ReasonerError, match="chat template refuses the conversation"):
        r.complete(ASK, choices=CHOICES)


def test_fold_roles_keeps_every_word():
    folded = fold_roles([{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}])
    assert folded == [{"role": "user", "content": "S"}, {"role": "assistant", "content": "A"}]
    assert fold_roles(ASK[1:]) == ASK[1:]


def test_ask_takes_any_chat_gguf_by_path(run_cli, home, ggufs):
    for kind in ("chatml", "gemma"):
        r = run_cli(
            "ask", "Name a mammal", "--choices", "cat,dog,ship", "--reasoner",
            f"local:{ggufs[kind]}", "--json",
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["value"] in CHOICES


def test_gpu_layers_on_a_build_without_gpu_offload_is_one_line(run_cli, home, ggufs):
    import llama_cpp

    args = ["ask", "Name a mammal", "--choices", "cat,dog", "--reasoner", f"local:{ggufs['gemma']}"]
    r = run_cli(*args, "--gpu-layers", "-1")
    if llama_cpp.llama_supports_gpu_offload():  # a CUDA build: the layers go to the GPU
        assert r.exit_code == 0, r.output
    else:
        assert r.exit_code == 1 and "cannot use a GPU" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_gpu_check_without_a_gpu_says_so_in_one_line(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    fake = tmp_path / "nvidia-smi"  # an nvidia-smi that finds no GPU, whatever this machine has
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    fake.chmod(0o755)
    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0
    assert r.stdout == "gpu_check: no NVIDIA GPU here (nvidia-smi finds none): nothing was run\n"
