"""How an adaptive, known-label dialogue ends: in the eyes (differential follow-up over the
shortlist, FuDD) or in fusion (the eyes' probabilities × the LLM's own) — scripted reasoner,
the deterministic hash scorer of the replay tests."""

from __future__ import annotations

import pytest
from dialogue_replay import HashScorer
from dialogue_replay import answer as scripted_answer

from offline_vision.dialogue import DialogueConfig, run_dialogue
from offline_vision.errors import BadInput
from offline_vision.labels.scoring import FollowUp
from offline_vision.labels.sets import CIFAR10, LabelSet
from offline_vision.models.reasoners.scripted import ScriptedReasoner


def _writer(messages, choices, schema):
    if "easily mistaken" in messages[-1]["content"]:
        return "pointed ears\nlong tail"
    return scripted_answer(messages, choices, schema)


def test_follow_up_end_asks_once_per_shortlist_and_lets_the_eyes_decide(tmp_path):
    eyes, llm = HashScorer(), ScriptedReasoner(_writer)
    follow = FollowUp(eyes, llm, k=3, threshold=1.01, cache_dir=tmp_path)
    cfg = DialogueConfig(policy="adaptive", rounds=2, trust=1.0, end="follow-up", probe=False)
    results = [
        run_dialogue(i, eyes, llm, LabelSet("cifar10", CIFAR10), config=cfg, follow_up=follow)
        for i in range(12)
    ]
    sets = {tuple(sorted(d["answer"]["follow_up"]["classes"])) for d in results}
    assert follow.requests == 3 * len(sets)  # three labels a set, each set written once
    for d in results:
        a = d["answer"]
        assert a["rule"] == "follow-up" and a["label"] == a["follow_up"]["prediction"]
        assert a["label"] in a["follow_up"]["classes"]
        assert not any(c["kind"] == "answer" for c in d["calls"])  # the LLM did not pick it


def test_fusion_multiplies_the_eyes_by_the_llm_by_hand():
    eyes = HashScorer()
    shown = {}

    def probs(messages, choices):
        shown["choices"] = list(choices)
        # the LLM prefers the eyes' last option strongly
        return {c: (0.7 if c == choices[-1] else 0.3 / (len(choices) - 1)) for c in choices}

    llm = ScriptedReasoner(scripted_answer, probabilities=probs)
    cfg = DialogueConfig(policy="adaptive", rounds=2, trust=1.0, end="fusion", probe=False)
    d = run_dialogue(3, eyes, llm, LabelSet("cifar10", CIFAR10), config=cfg)
    a = d["answer"]
    f = a["fusion"]
    assert a["rule"] == "fusion" and list(f["eyes"]) == shown["choices"]
    product = {k: f["eyes"][k] * f["llm"][k] for k in f["eyes"]}
    assert a["label"] == max(product, key=product.get)
    assert abs(sum(f["eyes"].values()) - 1) < 1e-4 and abs(sum(f["llm"].values()) - 1) < 1e-4
    assert not any(c["kind"] == "answer" for c in d["calls"])


def test_fusion_without_probabilities_says_so_and_lets_the_llm_answer():
    cfg = DialogueConfig(policy="adaptive", rounds=2, trust=1.0, end="fusion", probe=False)
    d = run_dialogue(
        3,
        HashScorer(),
        ScriptedReasoner(scripted_answer),
        LabelSet("cifar10", CIFAR10),
        config=cfg,
    )
    a = d["answer"]
    assert a["rule"] == "choice" and "gives no token probabilities" in a["fusion"]["note"]
    assert any(c["kind"] == "answer" for c in d["calls"])


def test_end_options_are_checked():
    with pytest.raises(BadInput, match="needs --policy adaptive"):
        DialogueConfig(policy="seed", end="fusion")
    with pytest.raises(BadInput, match=r"--end 'vote': use one of llm, follow-up, fusion"):
        DialogueConfig(policy="adaptive", end="vote")
    cfg = DialogueConfig(policy="adaptive", end="fusion")
    with pytest.raises(BadInput, match="known label set"):
        run_dialogue(
            1,
            HashScorer(),
            ScriptedReasoner(scripted_answer),
            LabelSet("custom", CIFAR10, known=False),
            config=cfg,
        )
    with pytest.raises(BadInput, match="needs a reasoner"):
        run_dialogue(
            1,
            HashScorer(),
            ScriptedReasoner(scripted_answer),
            list(CIFAR10),
            config=DialogueConfig(policy="adaptive", end="follow-up"),
        )


def test_hosted_fusion_reads_first_token_logprobs(monkeypatch):
    """An OpenAI-compatible server's top_logprobs for the first answer token → choice odds."""
    from fakes import ChatServer, scripted

    from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner

    top = [
        {"token": "cat", "logprob": -0.2},
        {"token": "dog", "logprob": -1.9},
        {"token": " ship", "logprob": -3.0},
    ]
    body = {
        "choices": [
            {
                "message": {"role": "assistant", "content": "cat"},
                "logprobs": {"content": [{"token": "cat", "logprob": -0.2, "top_logprobs": top}]},
            }
        ]
    }
    s = ChatServer(scripted((200, {}, body)))
    try:
        r = OpenAICompatReasoner("m", base_url=s.url)
        p = r.choice_probabilities([{"role": "user", "content": "?"}], ["cat", "dog", "ship"])
        assert max(p, key=p.get) == "cat" and abs(sum(p.values()) - 1) < 1e-9
        assert p["dog"] / p["ship"] == pytest.approx(2.718281828**1.1)
        # a shared first token cannot tell two choices apart: said so (None)
        assert (
            r.choice_probabilities([{"role": "user", "content": "?"}], ["cat", "catamaran"]) is None
        )
    finally:
        s.close()
