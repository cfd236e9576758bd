"""Label knowledge (descriptions, subclasses, waffle, differential follow-up) — scripted
reasoner, a toy scorer whose numbers can be checked by hand, a loopback chat server."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fakes import FakeScorer

from offline_vision.errors import BadInput
from offline_vision.labels.plan import plan_of
from offline_vision.labels.scoring import FollowUp, LabelScorer
from offline_vision.labels.sets import LabelSet
from offline_vision.labels.store import Knowledge
from offline_vision.labels.writers.texts import expand, filter_items, parse_items, waffle
from offline_vision.models.reasoners.scripted import ScriptedReasoner

LABELS = ["cat", "dog", "car"]


def _writer(messages, choices, schema) -> str:
    text = messages[-1]["content"]
    m = re.search(r"kinds of (\w+)", text) or re.search(r"photo of a (\w+):", text)
    label = m.group(1)
    return f"- {label} one\n- {label} two\n2. {label} one\n\n"


def test_parse_items_strips_bullets_and_splits_prose():
    assert parse_items("1. big ears\n- long tail.\n* 'fur'\nHere:\n", 10) == [
        "big ears",
        "long tail",
        "fur",
    ]
    assert parse_items("Round face. Long tail! Whiskers", 10) == [
        "Round face",
        "Long tail",
        "Whiskers",
    ]


def test_filter_drops_and_counts_duplicates_empty_examples_and_other_labels():
    dropped: dict = {}
    kept = filter_items(
        ["Persian", "persian", "", "dog", "cat-dog hybrid", "school bus", "tabby"],
        "cat",
        LABELS,
        "subclasses",
        dropped,
    )
    assert kept == ["Persian", "tabby"]
    assert dropped == {"duplicate": 1, "empty": 1, "other_label": 2, "example_copy": 1}


def test_expand_writes_once_then_reads_the_cache(tmp_path):
    llm = ScriptedReasoner(_writer)
    k, path, cached = expand(LABELS, "descriptions", llm, cache_dir=tmp_path, per_label=4)
    assert not cached and len(llm.calls) == 3
    assert k.texts["dog"] == ["dog one", "dog two"] and k.dropped == {"duplicate": 3}
    assert k.transcripts["car"].startswith("- car one") and k.complete
    again, path2, cached = expand(LABELS, "descriptions", llm, cache_dir=tmp_path, per_label=4)
    assert cached and path2 == path and len(llm.calls) == 3  # a cache hit asks nothing
    assert again.texts == k.texts and again.digest == k.digest
    # another label set, strategy or reasoner is another file
    expand(LABELS[:2], "descriptions", llm, cache_dir=tmp_path, per_label=4)
    expand(LABELS, "subclasses", llm, cache_dir=tmp_path, per_label=4)
    other = ScriptedReasoner(_writer, name="other")
    expand(LABELS, "descriptions", other, cache_dir=tmp_path, per_label=4)
    assert len(llm.calls) == 3 + 2 + 3 and len(other.calls) == 3


def test_knowledge_file_round_trips_and_bad_files_are_refused(tmp_path):
    k, _path, _ = expand(LABELS, "descriptions", ScriptedReasoner(_writer), cache_dir=tmp_path)
    out = tmp_path / "k.json"
    k.save(out)
    back = Knowledge.load(out)
    assert back == k and back.digest == k.digest
    assert back.reasoner == {"reasoner": "scripted", "name": "scripted"}
    assert back.label_set_hash == k.label_set_hash and back.prompts["user"]
    out.write_text("[1, 2]")
    with pytest.raises(BadInput, match="not an ovision knowledge file"):
        Knowledge.load(out)
    out.write_text("{oops")
    with pytest.raises(BadInput, match="not a readable knowledge file"):
        Knowledge.load(out)


def test_interrupted_expansion_resumes_at_the_next_label(tmp_path):
    def flaky(messages, choices, schema):
        asked = re.search(r"kinds of (\w+)", messages[-1]["content"]).group(1)
        if asked == "dog" and not flaky.failed:
            flaky.failed = True
            raise KeyboardInterrupt
        return _writer(messages, choices, schema)

    flaky.failed = False
    llm = ScriptedReasoner(flaky)
    with pytest.raises(KeyboardInterrupt):
        expand(LABELS, "subclasses", llm, cache_dir=tmp_path)
    saved = Knowledge.load(next((tmp_path / "knowledge").glob("subclasses-*.json")))
    assert list(saved.texts) == ["cat"] and not saved.complete
    k, _, cached = expand(LABELS, "subclasses", llm, cache_dir=tmp_path)
    asked = [m[-1]["content"] for m in llm.calls]
    assert not cached and sum("kinds of cat" in a for a in asked) == 1  # cat was not asked again
    assert set(k.texts) == set(LABELS) and k.complete


def test_waffle_is_deterministic_per_seed_and_the_same_for_every_label():
    a, b, c = (
        waffle(LABELS, per_label=5, seed=1),
        waffle(LABELS, per_label=5, seed=1),
        waffle(LABELS, per_label=5, seed=2),
    )
    assert a.texts == b.texts and a.texts != c.texts
    assert len(a.texts["cat"]) == 5 and a.texts["cat"] == a.texts["car"]


def _keyword(text: str) -> np.ndarray:
    for key, v in (("tabby", [0, 1, 0]), ("cat", [1, 0, 0]), ("dog", [0, 1, 0])):
        if key in text:
            return np.array(v, dtype=np.float64)
    return np.array([0, 0, 1], dtype=np.float64)


def ToyScorer() -> FakeScorer:
    """Texts → fixed 3-d unit vectors by keyword, so every probability can be worked out by
    hand; "images" are given as embeddings."""
    return FakeScorer(_keyword, lambda image: image, logit_scale=1.0)


def test_subclass_mapping_and_reweighting_by_hand():
    eyes = ToyScorer()
    k = Knowledge("subclasses", ["cat", "dog"], texts={"cat": ["tabby"], "dog": []})
    scorer = LabelScorer(eyes, plan_of(LabelSet("custom", ("cat", "dog")), ("{}",), knowledge=k))
    # subclass texts: "cat", "tabby, a kind of cat" (→ [0,1,0] since 'tabby' wins), "dog"
    assert scorer.sub_texts == ["cat", "tabby, a kind of cat", "dog"]
    img = np.array([[0.0, 2.0, 0.0]])
    got = scorer.probabilities(img)[0]
    # parents: cat·img = 0, dog·img = 2  → p = softmax([0, 2])
    parent = np.exp([0, 2]) / np.exp([0, 2]).sum()
    # subclasses: cat 0, tabby 2, dog 2 → softmax([0, 2, 2]); best per parent: cat max(0,2)=2
    sub = np.exp([0, 2, 2]) / np.exp([0, 2, 2]).sum()
    best = np.array([max(sub[0], sub[1]), sub[2]])
    want = parent * best / (parent * best).sum()
    np.testing.assert_allclose(got, want)
    assert got[0] < got[1]  # equal best kinds: the parent's own probability decides


def test_differential_descriptions_are_asked_once_per_set_of_classes(tmp_path):
    eyes = ToyScorer()

    def features(messages, choices, schema):
        label = re.search(r"a (\w+) is easily mistaken", messages[-1]["content"]).group(1)
        return f"{label} whiskers\n{label} fur"

    llm = ScriptedReasoner(features)
    follow = FollowUp(eyes, llm, k=2, threshold=0.9, cache_dir=tmp_path)
    labels = ["cat", "dog", "car"]
    rng = np.random.default_rng(0)
    records = []
    for _ in range(40):  # many unsure images, all with cat and dog on top in either order
        img = np.array([1.0, 1.0, -3.0]) + rng.normal(0, 0.05, 3)
        probs = eyes.probabilities(img[None], eyes.encode_labels(labels))[0]
        records.append(follow(img, probs, labels))
    assert all(r["ran"] for r in records) and {tuple(sorted(r["classes"])) for r in records} == {
        ("cat", "dog")
    }
    assert llm.calls and len(llm.calls) == 2 and follow.requests == 2  # once per label of the set
    assert not records[0]["cached"] and all(r["cached"] for r in records[1:])
    # a new process (a fresh FollowUp) reads the same set from disk
    again = FollowUp(eyes, llm, k=2, threshold=0.9, cache_dir=tmp_path)
    assert again(img, probs, labels)["cached"] and len(llm.calls) == 2
    # a sure image is left alone
    sure = np.array([9.0, 0.0, 0.0])
    p = eyes.probabilities(sure[None], eyes.encode_labels(labels))[0]
    assert follow(sure, p, labels) == {"classes": ["cat", "dog"], "ran": False}


# --- the CLI, with a hosted reasoner on 127.0.0.1 ------------------------------------------------


def test_classify_with_knowledge_writes_once_then_reads_the_cache(
    run_cli, home, tiny_clip, data_dir
):
    from fakes import ChatServer

    def reply(body, headers):
        text = body["messages"][-1]["content"]
        m = re.search(r"photo of a (\w+):", text) or re.search(r"a (\w+) is easily mistaken", text)
        return f"{m.group(1)} with whiskers\n{m.group(1)} on a sofa" if m else "fur"

    server = ChatServer(reply)
    try:
        photo = data_dir / "photos" / "chelsea.png"
        opts = ["--knowledge", "descriptions", "--reasoner", "openai:m", "--base-url", server.url]
        r = run_cli("classify", photo, "--labels", "cat,dog,car", *opts, "--json")
        assert r.exit_code == 0, r.output
        first = json.loads(r.stdout)
        assert first["knowledge"]["strategy"] == "descriptions" and len(server.bodies) == 3
        r = run_cli("classify", photo, "--labels", "cat,dog,car", *opts, "--json")
        assert json.loads(r.stdout) == first and len(server.bodies) == 3  # from the cache
        r = run_cli(
            "labels",
            "expand",
            "--labels",
            "cat,dog,car",
            "--strategy",
            "descriptions",
            "--reasoner",
            "openai:m",
            "--base-url",
            server.url,
            "--json",
        )
        k = json.loads(r.stdout)
        assert (
            k["texts"]["cat"] == ["cat with whiskers", "cat on a sofa"] and len(server.bodies) == 3
        )
        r = run_cli(
            "classify",
            photo,
            "--labels",
            "cat,dog,car",
            "--follow-up",
            "2",
            "--follow-up-threshold",
            "1",
            "--reasoner",
            "openai:m",
            "--base-url",
            server.url,
        )
        assert r.exit_code == 0 and "follow-up (new)" in r.stdout and len(server.bodies) == 5
    finally:
        server.stop()
    r = run_cli("classify", photo, "--labels", "cat,dog", "--knowledge", "nope")
    assert r.exit_code == 1 and "neither a file nor one of" in r.stderr
