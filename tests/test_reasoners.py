"""Reasoners without weights: validation and repair, spec strings, and every HTTP failure mode
of the OpenAI-compatible client against a scripted stub on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
from fakes import ChatServer, completion

from offline_vision.errors import BadInput, BadModel, ChecksumMismatch, ModelNotFound, ReasonerError
from offline_vision.models.provision import registry, store
from offline_vision.models.reasoners import load_reasoner
from offline_vision.models.reasoners.base import match_choice
from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner
from offline_vision.models.reasoners.scripted import ScriptedReasoner

ASK = [{"role": "user", "content": "Name a mammal."}]
SCHEMA = {
    "type": "object",
    "properties": {"candidates": {"type": "array", "items": {"type": "string"}, "minItems": 2}},
    "required": ["candidates"],
}


# --- validation and the repair turn -----------------------------------------------------------


def test_choice_answers_are_matched_leniently_but_exactly_once():
    choices = ["cat", "car", "sea ship"]
    assert match_choice("cat", choices) == "cat"
    assert match_choice(' "Cat". ', choices) == "cat"
    assert match_choice('{"answer": "sea ship"}', choices) == "sea ship"
    assert match_choice("I think it is a cat", choices) is None


def test_off_list_answer_gets_one_repair_turn():
    r = ScriptedReasoner(["It is probably a cat!", "cat"])
    c = r.complete(ASK, choices=["cat", "car", "ship"])
    assert c.value == "cat" and c.attempts == ["It is probably a cat!", "cat"]
    repair = r.calls[1][-1]["content"]
    assert "exactly one of: cat, car, ship" in repair


def test_second_bad_answer_raises_naming_the_raw_answer():
    r = ScriptedReasoner(["a dog, I guess", "still a dog"])
    with pytest.raises(ReasonerError, match="raw answer: 'still a dog'"):
        r.complete(ASK, choices=["cat", "car"])


def test_schema_answers_are_parsed_validated_and_repaired():
    r = ScriptedReasoner(
        ['{"candidates": ["cat"]}', '```json\n{"candidates": ["cat", "dog"]}\n```']
    )
    c = r.complete(ASK, schema=SCHEMA)
    assert c.value == {"candidates": ["cat", "dog"]}
    assert "schema" in r.calls[1][-1]["content"]
    r = ScriptedReasoner(["not json", "{also not json"])
    with pytest.raises(ReasonerError, match="valid JSON"):
        r.complete(ASK, schema=SCHEMA)


def test_choices_grammar_is_valid_gbnf_with_quotes_and_unicode():
    pytest.importorskip("llama_cpp")
    from llama_cpp import LlamaGrammar

    from offline_vision.models.reasoners.llama_cpp import choices_grammar

    g = choices_grammar(['say "hi"', "back\\slash", "猫"])
    assert g == 'root ::= "say \\"hi\\"" | "back\\\\slash" | "猫"'
    LlamaGrammar.from_string(g, verbose=False)  # raises if llama.cpp cannot parse it


# --- spec strings and model files --------------------------------------------------------------


def test_spec_errors(settings, tmp_path):
    with pytest.raises(BadInput, match="unknown reasoner 'gpt4'"):
        load_reasoner(settings, "gpt4")
    with pytest.raises(ModelNotFound, match=f"ovision models pull {registry.GGUF}"):
        load_reasoner(settings, "local")
    with pytest.raises(ModelNotFound, match="unknown model"):
        load_reasoner(settings, "local:no-such-model")
    with pytest.raises(BadInput, match="not a GGUF reasoner"):
        load_reasoner(settings, f"local:{registry.CONSE}")
    with pytest.raises(ModelNotFound, match="GGUF file not found"):
        load_reasoner(settings, f"local:{tmp_path / 'missing.gguf'}")


def test_truncated_or_foreign_gguf_is_refused_before_loading(settings, tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 1000)  # not the pinned file: a truncated download
    store.install(settings.models_dir, registry.GGUF_FAST, "gguf", {"model.gguf": fake}, {})
    r = load_reasoner(settings, f"local:{registry.GGUF_FAST}")
    with pytest.raises(ChecksumMismatch, match="is not the recorded"):
        r.complete(ASK, choices=["cat"])
    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(BadModel, match="bad magic"):
        load_reasoner(settings, f"local:{not_gguf}").complete(ASK)


# --- the OpenAI-compatible client against a scripted stub ---------------------------------------


def behaviours(script):
    """A `reply` for the fake chat server acting out each scripted behaviour in turn
    (then answering "cat"): ("ok", content), ("status", code[, body]), ("sleep", seconds),
    ("echo_auth",) — a careless server that echoes the key in an error — and ("malformed",)."""
    script = list(script)

    def reply(body, headers):
        kind, *args = script.pop(0) if script else ("ok", "cat")
        if kind == "sleep":
            time.sleep(args[0])
            return "cat"
        if kind == "status":
            return args[0], {}, args[1].encode() if len(args) > 1 else {"error": "nope"}
        if kind == "echo_auth":
            return 400, {}, {"error": f"bad request from {headers.get('Authorization')}"}
        if kind == "malformed":
            return 200, {}, b"{this is not json"
        return args[0]

    return reply


@pytest.fixture
def stub():
    made = []

    def make(*script):
        made.append(ChatServer(behaviours(script)))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _client(url, **kw):
    return OpenAICompatReasoner("test-model", base_url=url, backoff=0.01, **kw)


def test_json_schema_mode_is_used_and_answer_unwrapped(stub):
    s = stub(("ok", '{"answer": "car"}'))
    c = _client(s.url).complete(ASK, choices=["cat", "car"])
    assert c.value == "car"
    rf = s.seen[0]["body"]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"]["properties"]["answer"][
        "enum"
    ] == ["cat", "car"]


def test_server_without_json_schema_falls_back_to_json_object(stub):
    s = stub(
        ("status", 422, '{"detail": "unknown response_format"}'),
        ("ok", '{"answer": "cat"}'),
        ("ok", '{"candidates": ["a", "b"]}'),
    )
    r = _client(s.url)
    assert r.complete(ASK, choices=["cat", "car"]).value == "cat"
    assert [x["body"]["response_format"]["type"] for x in s.seen] == ["json_schema", "json_object"]
    assert r.complete(ASK, schema=SCHEMA).value == {"candidates": ["a", "b"]}
    assert s.seen[2]["body"]["response_format"]["type"] == "json_object"  # remembered


def test_format_refused_with_a_500_is_not_retried_as_transient(stub):
    # llama-cpp-python's server answers an unknown response_format with HTTP 500.
    s = stub(
        ("status", 500, '{"error": "response_format: Input should be text or json_object"}'),
        ("ok", '{"answer": "cat"}'),
    )
    assert _client(s.url).complete(ASK, choices=["cat"]).value == "cat"
    assert len(s.seen) == 2


def test_429_then_success_retries(stub):
    s = stub(("status", 429), ("status", 503), ("ok", '{"answer": "cat"}'))
    assert _client(s.url).complete(ASK, choices=["cat"]).value == "cat"
    assert len(s.seen) == 3


def test_persistent_500_gives_up_with_one_line(stub):
    s = stub(*[("status", 500)] * 4)
    with pytest.raises(ReasonerError, match="HTTP 500 after 4 tries"):
        _client(s.url).complete(ASK)


def test_timeout_is_reported(stub):
    s = stub(*[("sleep", 1.0)] * 4)
    with pytest.raises(ReasonerError, match="timed out"):
        _client(s.url, timeout=0.2).complete(ASK)


def test_connection_refused_is_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ReasonerError, match="unreachable"):
        _client(f"http://127.0.0.1:{port}/v1").complete(ASK)


def test_malformed_json_is_reported(stub):
    s = stub(("malformed",))
    with pytest.raises(ReasonerError, match="malformed response"):
        _client(s.url).complete(ASK)


def test_empty_content_and_off_list_choice_are_repaired_or_refused(stub):
    s = stub(("ok", ""), ("ok", "a dog"))
    c = _client(s.url).complete(ASK)
    assert c.value == "a dog" and c.attempts == ["", "a dog"]
    s = stub(("ok", ""), ("ok", ""))
    with pytest.raises(ReasonerError, match="non-empty answer"):
        _client(s.url).complete(ASK)
    s = stub(("ok", '{"answer": "dog"}'), ("ok", '{"answer": "cat"}'))
    c = _client(s.url).complete(ASK, choices=["cat", "car"])
    assert c.value == "cat" and len(c.attempts) == 2


def test_api_key_never_leaks(stub, monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    s = stub(*[("echo_auth",)] * 3)
    r = _client(s.url)
    with pytest.raises(ReasonerError) as err:
        r.complete(ASK, choices=["cat"])
    assert s.seen[0]["headers"].get("Authorization") == f"Bearer {secret}"  # it was sent…
    assert secret not in str(err.value) and "***" in str(err.value)  # …but never shown
    assert secret not in json.dumps(r.describe())


def test_remote_url_without_key_is_refused(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ReasonerError, match="OPENAI_API_KEY is not set"):
        OpenAICompatReasoner("gpt-4o-mini", base_url="https://api.example.com/v1")


def test_401_is_reported(stub):
    s = stub(("status", 401))
    with pytest.raises(ReasonerError, match="rejected the API key"):
        _client(s.url).complete(ASK)


def test_ask_cli_against_stub_and_bad_inputs(run_cli, home, stub, tmp_path):
    s = stub(("ok", '{"answer": "car"}'))
    r = run_cli(
        "ask",
        "Name a vehicle",
        "--choices",
        "cat,car,ship",
        "--reasoner",
        "openai:m",
        "--base-url",
        s.url,
        "--json",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["value"] == "car" and out["usage"]["prompt_tokens"] == 7 and out["latency_s"] > 0
    r = run_cli("ask", "hi", "--reasoner", "nope:x")
    assert r.exit_code == 1 and "unknown reasoner" in r.stderr and "Traceback" not in r.output
    r = run_cli("ask", "hi", "--choices", " , ")
    assert r.exit_code == 1 and "--choices is empty" in r.stderr
    bad = tmp_path / "schema.json"
    bad.write_text("{not json")
    r = run_cli("ask", "hi", "--schema", bad)
    assert r.exit_code == 1 and "not valid JSON" in r.stderr


# --- an injected HTTP client: no server at all ---------------------------------------------------


def test_injected_client_carries_the_key_and_retries_a_429(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-injected-0123456789")
    sent: list[httpx.Request] = []
    replies = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "slow down"}),
        httpx.Response(200, json=completion('{"answer": "ship"}')),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return replies.pop(0)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    r = OpenAICompatReasoner("m", base_url="https://chat.example.com/v1", client=client)
    c = r.complete(ASK, choices=["cat", "ship"])
    assert c.value == "ship" and len(sent) == 2  # the 429 was tried again, once
    assert {str(q.url) for q in sent} == {"https://chat.example.com/v1/chat/completions"}
    assert all(q.headers["Authorization"] == "Bearer sk-test-injected-0123456789" for q in sent)
    assert json.loads(sent[0].content)["response_format"]["type"] == "json_schema"


# --- the loaded GGUF is used by one thread at a time ---------------------------------------------


class _Llm:
    """Stands in for llama_cpp.Llama: records how many calls were inside it at once."""

    def __init__(self):
        self.inside = self.most = 0
        self.guard = threading.Lock()

    def tokenize(self, data, add_bos=False, special=False):
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(0.01)
        with self.guard:
            self.inside -= 1
        return list(data)


def test_threads_sharing_a_gguf_take_turns(monkeypatch):
    from offline_vision.models.reasoners.llama_cpp import LlamaCppReasoner

    llm = _Llm()
    monkeypatch.setattr(LlamaCppReasoner, "llm", property(lambda self: llm))
    reasoner = LlamaCppReasoner("unused.gguf", name="local:test")
    threads = [
        threading.Thread(target=lambda: [reasoner.count_tokens("four") for _ in range(5)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert llm.most == 1 and llm.inside == 0  # twenty calls, never two at once
