"""The real default GGUFs (marked `models`): constrained answers, prefix reuse, and the hosted
path through llama-cpp-python's own OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from offline_vision.errors import ReasonerError
from offline_vision.models.provision import registry
from offline_vision.models.reasoners import load_reasoner
from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner

pytestmark = pytest.mark.models
SCHEMA = {
    "type": "object",
    "properties": {
        "candidates": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 8}
    },
    "required": ["candidates"],
}


@pytest.fixture(scope="module")
def default_llm(real_settings):
    return load_reasoner(real_settings, "local")


def test_ask_default_gguf_answers_a_listed_choice(run_cli_real):
    r = run_cli_real("ask", "Name a mammal", "--choices", "cat,car,ship")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() in {"cat", "car", "ship"}


def test_schema_answer_is_valid_json(default_llm):
    c = default_llm.complete(
        [{"role": "user", "content": "Give 3 candidate labels for a photo of an animal as JSON."}],
        schema=SCHEMA,
        max_tokens=80,
    )
    assert 2 <= len(c.value["candidates"]) <= 8
    assert all(isinstance(x, str) for x in c.value["candidates"])


def test_conversation_turns_reuse_the_evaluated_prefix(default_llm):
    messages = [{"role": "system", "content": "You propose labels for an image classifier."}]
    previous = None
    for turn in range(3):
        messages.append(
            {
                "role": "user",
                "content": f"Turn {turn}: scores were cat 40%, dog 60%. "
                "Propose candidate labels to ask next.",
            }
        )
        c = default_llm.complete(messages, schema=SCHEMA, max_tokens=60)
        if previous is not None:
            # New tokens of a turn: what the conversation gained since the last prompt (the
            # previous reply as the template renders it, and the new user message).
            new = c.usage.prompt_tokens - previous.usage.prompt_tokens
            assert c.usage.evaluated_prompt_tokens <= 1.2 * new, (turn, c.usage, new)
            assert c.usage.evaluated_prompt_tokens < c.usage.prompt_tokens / 2
        messages.append({"role": "assistant", "content": c.text})
        previous = c


def test_prompt_over_the_context_window_says_by_how_much(real_settings):
    small = load_reasoner(real_settings, f"local:{registry.GGUF_FAST}", n_ctx=256)
    with pytest.raises(
        ReasonerError, match=r"prompt is \d+ tokens, \d+ over the 256-token context"
    ):
        small.complete([{"role": "user", "content": "word " * 400}], max_tokens=4)


def test_hosted_path_through_llama_cpp_server(llama_server, run_cli_real):
    r = OpenAICompatReasoner("qwen-0.5b", base_url=llama_server)
    c = r.complete([{"role": "user", "content": "Name a mammal"}], choices=["cat", "car", "ship"])
    assert c.value in {"cat", "car", "ship"}
    s = r.complete(
        [{"role": "user", "content": "Give 2 labels for a photo of a truck."}],
        schema=SCHEMA,
        max_tokens=60,
    )
    assert len(s.value["candidates"]) >= 2
    assert r.describe()["constraint_mode"] == "json_object"  # the server refuses json_schema
    out = run_cli_real(
        "ask",
        "Name a mammal",
        "--choices",
        "cat,car,ship",
        "--reasoner",
        "openai:qwen-0.5b",
        "--base-url",
        llama_server,
        "--json",
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["value"] in {"cat", "car", "ship"}


def test_token_counts_come_from_the_gguf_tokenizer(default_llm):
    # Qwen's tokenizer splits digits one per token, so a 20-digit row costs 20 tokens — far
    # from the chars/3 estimate a backend without a tokenizer falls back to.
    row = "01234567890123456789"
    assert default_llm.count_tokens(row) == 20
    assert default_llm.count_tokens("\n".join([row] * 20)) >= 400


def test_installed_llama_cpp_is_native_without_amx_kernels():
    """What scripts/install.sh builds: native SIMD kept (no slower AMD build), AMX kernels left
    out where the CPU reports AMX (they fault under some hypervisors)."""
    from offline_vision.models.reasoners.llama_cpp import AMX_CPU_FLAGS, cpu_flags, system_info

    info, flags = system_info(), cpu_flags()
    if "avx512f" in flags:
        assert "AVX512 = 1" in info, info
    if "avx2" in flags:
        assert "AVX2 = 1" in info, info
    if flags & set(AMX_CPU_FLAGS):
        assert "AMX_INT8 = 1" not in info, f"built with AMX kernels: {info}"


def test_local_choice_probabilities_for_fusion(default_llm):
    msgs = [{"role": "user", "content": "Which of these is an animal: car, ship, cat? One word."}]
    p = default_llm.choice_probabilities(msgs, ["car", "ship", "cat"])
    assert set(p) == {"car", "ship", "cat"} and abs(sum(p.values()) - 1) < 1e-9
    assert max(p, key=p.get) == "cat"
    # the same turn still answers normally afterwards (the KV cache was left consistent)
    assert default_llm.complete(msgs, choices=["car", "ship", "cat"]).value == "cat"


def test_the_seed_users_garments_are_named_by_the_dictionary(run_cli_real, data_dir, monkeypatch):
    """Issue 38's check: everyday Japanese fashion labels read by their English names (JMdict,
    the llm extra), announced with the dictionary's version."""
    from offline_vision.labels.dictionaries import installed

    monkeypatch.delenv("OVISION_DICTIONARIES", raising=False)
    installed.cache_clear()
    labels = "ワンピース,ブラウス,スカート,ジーンズ,コート"
    photo = data_dir / "photos" / "coffee.png"
    r = run_cli_real("classify", photo, "--labels", labels, "--json")
    assert r.exit_code == 0, r.output
    names = {x["label"]: x["names"] for x in json.loads(r.stdout)["labels"]}
    assert names == {
        "ワンピース": ["dress"],
        "ブラウス": ["blouse"],
        "スカート": ["skirt"],
        "ジーンズ": ["jeans"],
        "コート": ["coat"],
    }
    said = [line for line in r.stderr.splitlines() if "bridged" in line]
    assert len(said) == 1 and "JMdict (jamdict-data" in said[0] and "ワンピース→dress" in said[0]
    installed.cache_clear()
