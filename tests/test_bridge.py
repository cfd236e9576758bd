"""The bridge (label names the eyes cannot read → English names): writing, clashes, the
unfamiliar-label rule, and the user's labels kept in every output — scripted reasoner, a toy
scorer, the tiny CLIP and a chat server on 127.0.0.1."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fakes import FakeScorer
from test_knowledge import ToyScorer, _keyword

from offline_vision.dialogue import Eyes
from offline_vision.errors import BadInput
from offline_vision.labels.plan import parse_spec, plan_of
from offline_vision.labels.readable import looks_unfamiliar, unreadable
from offline_vision.labels.scoring import LabelScorer
from offline_vision.labels.sets import LabelSet
from offline_vision.labels.store import Knowledge
from offline_vision.labels.writers.names import write_names
from offline_vision.models.reasoners.scripted import ScriptedReasoner

JA = {"猫": "cat", "犬": "dog", "車": "car"}


def _asked(messages) -> list[str]:
    """The labels a bridge request names on its `Classes:` line."""
    line = re.search(r"^Classes: (.*)$", messages[-1]["content"], re.MULTILINE).group(1)
    return line.split(", ")


DOMAIN = "household things"  # what the scripted reasoners say the labels are


def is_domain(schema) -> bool:
    """The bridge's one request for the set's domain (labels.writers.senses)."""
    return bool(schema) and set(schema.get("properties", {})) == {"domain"}


def bridge_calls(llm) -> list:
    """The conversations a scripted reasoner was shown, the domain request left out."""
    return [c for c in llm.calls if "What kind of things are they" not in c[-1]["content"]]


def _shaped(names: dict, schema: dict) -> str:
    """A bridge reply in the shape its request asked for: a word, or what it is and a word (or
    the set's domain, where that was asked)."""
    if is_domain(schema):
        return json.dumps({"domain": DOMAIN})
    entry = next(iter(schema["properties"].values()))
    if entry.get("type") == "object":
        return json.dumps({k: {"meaning": f"a {v}", "word": v} for k, v in names.items()})
    return json.dumps(names)


def _translator(table):
    return lambda messages, choices, schema: _shaped(
        {} if is_domain(schema) else {k: table[k] for k in _asked(messages)}, schema
    )


def _replies(*tables):
    """Each request answered by the next table (one for the direct ask, one for the meaning…);
    the domain request by DOMAIN."""
    queue = list(tables)
    return lambda messages, choices, schema: _shaped(
        {} if is_domain(schema) else queue.pop(0), schema
    )


def test_names_are_written_once_and_round_trip_through_the_knowledge_file(tmp_path):
    llm = ScriptedReasoner(_translator(JA))
    k, path, cached = write_names(list(JA), llm, cache_dir=tmp_path)
    assert not cached and len(bridge_calls(llm)) == 2  # two ways; they agree: nothing to choose
    assert k.texts == {k: [v] for k, v in JA.items()} and not k.choices
    first = bridge_calls(llm)[0][-1]["content"]
    assert "猫, 犬, 車. They are household things." in first  # the whole set and its domain
    loaded = Knowledge.load(path)
    assert loaded.strategy == "names" and loaded.texts == k.texts and loaded.digest == k.digest
    _again, path2, cached = write_names(list(JA), llm, cache_dir=tmp_path)
    assert cached and path2 == path and len(llm.calls) == 3  # from the cache: nothing asked


def test_where_the_two_askings_disagree_the_reasoners_own_odds_choose(tmp_path):
    asked = []

    def odds(messages, choices):
        asked.append((messages[-1]["content"], choices))
        return {"cow": 0.3, "deer": 0.7}

    llm = ScriptedReasoner(
        _replies({"Cervidae": "cow", "Felis": "cat"}, {"Cervidae": "deer", "Felis": "cats"}),
        probabilities=odds,
    )
    k, _, _ = write_names(["Cervidae", "Felis"], llm, cache_dir=tmp_path)
    assert k.texts == {"Cervidae": ["deer"], "Felis": ["cat"]}  # cat/cats: one answer
    assert k.choices == {
        "Cervidae": {
            "options": ["cow", "deer"],
            "odds": {"cow": 0.3, "deer": 0.7},
            "chosen": "deer",
        }
    }
    assert len(asked) == 1 and "the class 'Cervidae' is called:" in asked[0][0]
    assert "Cervidae, Felis. They are household things.\n" in asked[0][0]  # the domain too


def test_a_pick_never_takes_a_name_another_label_settled(tmp_path):
    odds = []
    llm = ScriptedReasoner(
        _replies({"Auto": "car", "Lastwagen": "truck"}, {"Auto": "car", "Lastwagen": "car"}),
        probabilities=lambda m, c: odds.append(c) or {"car": 0.9, "truck": 0.1},
    )
    k, _, _ = write_names(["Auto", "Lastwagen"], llm, cache_dir=tmp_path)
    assert k.texts == {"Auto": ["car"], "Lastwagen": ["truck"]} and odds == []  # no pick
    assert k.choices["Lastwagen"]["options"] == ["truck", "car"] and not k.conflicts


def test_a_clash_loser_takes_its_other_answer_before_its_own_label(tmp_path):
    def odds(messages, choices):
        if "moggy" in choices:  # who owns 'cat'
            return {"hound": 0.9, "moggy": 0.1}
        return {o: 0.8 if o == "cat" else 0.2 for o in choices}

    llm = ScriptedReasoner(
        _replies(
            {"pooch": "dog", "hound": "dog", "moggy": "cat"},  # direct
            {"pooch": "dog", "hound": "dog", "moggy": "kitty"},  # meaning: moggy picks cat
            {"pooch": "dog", "hound": "cat"},  # asked again: hound now clashes with moggy
        ),
        probabilities=odds,
    )
    k, _, _ = write_names(["pooch", "hound", "moggy"], llm, cache_dir=tmp_path)
    assert k.texts == {"pooch": ["dog"], "hound": ["cat"], "moggy": ["kitty"]}
    assert k.conflicts == [
        {"name": "cat", "labels": ["hound", "moggy"], "kept_by": "hound"},
        {"name": "dog", "labels": ["pooch", "hound"], "renamed": {"pooch": "dog", "hound": "cat"}},
    ]


def test_copies_of_the_prompts_examples_and_articles_are_no_names(tmp_path):
    llm = ScriptedReasoner(
        _replies({"jetliner": "butterfly", "mug": "mug"}, {"jetliner": "a plane", "mug": "mug"})
    )
    k, _, _ = write_names(["jetliner", "mug"], llm, cache_dir=tmp_path)
    # "butterfly" is the prompt's example for Schmetterling; "mug" is its own example's word
    assert k.texts == {"jetliner": ["plane"], "mug": ["mug"]} and len(bridge_calls(llm)) == 2


def test_a_name_clash_is_asked_again_with_the_clash_stated(tmp_path):
    first = {"自動車": "car", "トラック": "car", "猫": "cat"}
    llm = ScriptedReasoner(_replies(first, first, {"自動車": "car", "トラック": "truck"}))
    k, _, _ = write_names(["自動車", "トラック", "猫"], llm, cache_dir=tmp_path)
    assert k.texts == {"自動車": ["car"], "トラック": ["truck"], "猫": ["cat"]}
    asked_again = bridge_calls(llm)[2][-1]["content"]
    assert "自動車, トラック were all called 'car'" in asked_again
    assert "already called: cat" in asked_again  # the names the other classes took
    assert bridge_calls(llm)[2][-2]["role"] == "assistant"  # roles alternate
    assert k.conflicts == [
        {
            "name": "car",
            "labels": ["自動車", "トラック"],
            "renamed": {"自動車": "car", "トラック": "truck"},
        }
    ]


def test_a_clash_that_stays_is_settled_by_the_reasoner_and_reported(tmp_path):
    same = {"moggy": "cat", "pooch": "cats", "lorry": "truck"}  # plural: one name
    llm = ScriptedReasoner(
        _replies(same, same, {"moggy": "cat", "pooch": "cat"}),
        probabilities=lambda messages, choices: {"moggy": 0.8, "pooch": 0.2},
    )
    k, _, _ = write_names(["moggy", "pooch", "lorry"], llm, cache_dir=tmp_path)
    assert k.texts == {"moggy": ["cat"], "pooch": ["pooch"], "lorry": ["truck"]}
    assert k.conflicts == [{"name": "cat", "labels": ["moggy", "pooch"], "kept_by": "moggy"}]


def test_a_name_that_is_not_plain_english_is_repaired_or_refused(tmp_path):
    llm = ScriptedReasoner(_replies({"猫": "ネコ"}, {"猫": "cat"}, {"猫": "cat"}))
    k, _, _ = write_names(["猫"], llm, cache_dir=tmp_path)
    assert k.texts == {"猫": ["cat"]} and len(bridge_calls(llm)) == 3  # one repair turn


def _plan(labels, names):
    bridge = Knowledge("names", labels, texts=names)
    return plan_of(LabelSet("custom", tuple(labels)), ("{}",), bridge=bridge)


def test_label_scorer_reads_bridged_labels_through_their_names():
    eyes = ToyScorer()
    names = {"猫": ["cat"], "犬": ["dog"]}
    scorer = LabelScorer(eyes, _plan(["猫", "犬"], names))
    assert "猫" not in eyes.encoded and {"cat", "dog"} <= set(eyes.encoded)
    p = scorer.probabilities(np.array([[3.0, 0.0, 0.0]]))[0]
    assert p[0] > 0.9  # the cat image is 猫
    # several names: the mean of their embeddings
    two = LabelScorer(eyes, _plan(["猫"], {"猫": ["cat", "dog"]}))
    np.testing.assert_allclose(two.plain[0], np.array([1, 1, 0]) / np.sqrt(2))


def test_the_dialogues_eyes_read_a_user_label_by_its_names():
    scorer = FakeScorer(
        _keyword, lambda image: np.array([0.0, 3.0, 0.0]), templates=("a photo of a {}",)
    )
    eyes = Eyes(scorer, image=None, names={"犬": ["dog"], "猫": ["cat"]})
    scores = eyes.score(["猫", "犬", "animal"])
    assert scores[0][0] == "犬"  # the user's label comes back, scored as "dog"
    assert "a photo of a dog" in scorer.encoded and "a photo of a 犬" not in scorer.encoded
    assert "a photo of a animal" in scorer.encoded  # a label of the LLM's own: as it is


def test_knowledge_spec_parsing():
    assert parse_spec(None) == ("auto", None, None)
    assert parse_spec("none") == ("none", None, None)
    assert parse_spec("names+descriptions") == ("names", "descriptions", None)
    assert parse_spec("subclasses") == ("none", "subclasses", None)
    for bad in ("names+names", "descriptions+names", "nope"):
        with pytest.raises(BadInput):
            parse_spec(bad)


def test_unfamiliar_rule_on_the_tiny_clip_tokenizer(settings, tiny_clip):
    from offline_vision.models.loader import load_scorer

    eyes = load_scorer(settings, "clip")
    assert eyes.knows_word("cat") and not eyes.knows_word("moggy")
    assert looks_unfamiliar(["cat", "dog", "car"], eyes) == (False, [])
    assert looks_unfamiliar(["猫", "犬", "moggy", "car"], eyes) == (True, ["猫", "犬", "moggy"])
    assert unreadable(["moggy", "cat", "moggy cat"], eyes) == ["moggy"]  # only pieces
    assert looks_unfamiliar(["猫", "犬", "car"], eyes)[0]  # 2 of 3: half is enough
    assert not looks_unfamiliar(["猫", "car", "dog"], eyes)[0]  # 1 of 3 is not


def test_foreign_words_the_tokenizer_holds_whole_are_unfamiliar(settings, tiny_clip):
    """Italian cane and gatto are tokens of an English tokenizer; read as English, a dog is a
    walking stick. Plain names stay English, chat included (French too, but English first)."""
    from offline_vision.labels.readable import foreign
    from offline_vision.models.loader import load_scorer

    eyes = load_scorer(settings, "clip")
    italian = ["aereo", "gatto", "cane", "rana", "cavallo", "nave"]
    assert [w for w in italian if foreign(w)] == italian
    assert not any(foreign(w) for w in ["cat", "dog", "automobile", "chat", "frog", "ship"])
    assert looks_unfamiliar(["cane", "gatto", "car", "dog"], eyes) == (True, ["cane", "gatto"])


# --- the CLI: classify and eval, with a hosted reasoner on 127.0.0.1 ---------------------------


def names_reply(body, headers):
    """A hosted reasoner's bridge answer for CIFAR-10's Japanese names (`names_server`)."""
    table = {
        **JA,
        "飛行機": "airplane",
        "鳥": "bird",
        "鹿": "deer",
        "カエル": "frog",
        "馬": "horse",
    }
    table.update({"自動車": "automobile", "船": "ship", "トラック": "truck"})
    schema = body["response_format"]["json_schema"]["schema"]
    if is_domain(schema):
        return _shaped({}, schema)
    return _shaped({k: table[k] for k in _asked(body["messages"])}, schema)


def test_classify_bridges_unfamiliar_labels_once_and_shows_the_users_labels(
    run_cli, tiny_clip, data_dir, names_server, tmp_path
):
    photo = data_dir / "photos" / "chelsea.png"
    llm = ["--reasoner", "openai:m", "--base-url", names_server.url]
    r = run_cli("classify", photo, "--labels", "猫,犬,車", *llm, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {x["label"] for x in out["labels"]} == set(JA)
    assert all(x["names"] == [JA[x["label"]]] for x in out["labels"])
    assert len(out["bridge"]["sha256"]) == 64
    announce = [line for line in r.stderr.splitlines() if "bridged" in line]
    assert len(announce) == 1 and "written by" in announce[0] and "猫→cat" in announce[0]
    assert len(names_server.bodies) == 3
    r = run_cli("classify", photo, "--labels", "猫,犬,車", *llm)
    assert r.exit_code == 0 and "from the cache" in r.stderr and len(names_server.bodies) == 3
    assert re.search(r"%\s+猫  \(cat\)", r.stdout)  # the table shows the user's label first
    # --knowledge none: the raw labels, nothing asked, no names
    r = run_cli("classify", photo, "--labels", "猫,犬,車", *llm, "--knowledge", "none", "--json")
    assert "names" not in r.stdout and "bridge" not in json.loads(r.stdout)
    assert len(names_server.bodies) == 3 and "bridged" not in r.stderr
    # a names file from `labels expand` is used as it is; for another label set it is refused
    names = tmp_path / "names.json"
    r = run_cli(
        "labels", "expand", "--labels", "猫,犬,車", "--strategy", "names", *llm, "--out", names
    )
    assert r.exit_code == 0 and "猫" in r.stdout and len(names_server.bodies) == 3  # cached
    r = run_cli("classify", photo, "--labels", "猫,犬,車", "--knowledge", names, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["labels"][0]["names"]
    assert f"bridged to English names (from {names};" in r.stderr
    r = run_cli("classify", photo, "--labels", "猫,犬", "--knowledge", names)
    assert r.exit_code == 1 and "written for another label set" in r.stderr
    # a plain set is not bridged
    r = run_cli("classify", photo, "--labels", "cat,dog,car", *llm, "--json")
    assert "bridge" not in json.loads(r.stdout) and len(names_server.bodies) == 3


def test_without_a_reasoner_unfamiliar_labels_are_scored_as_they_are(run_cli, tiny_clip, data_dir):
    photo = data_dir / "photos" / "chelsea.png"
    r = run_cli("classify", photo, "--labels", "猫,犬,車", "--json")  # no GGUF installed
    assert r.exit_code == 0, r.output
    warn = [line for line in r.stderr.splitlines() if "unfamiliar" in line]
    assert len(warn) == 1 and "no reasoner could bridge them" in warn[0]
    assert "bridge" not in json.loads(r.stdout)


def test_eval_clip_under_renamed_labels_keeps_the_users_names(
    run_cli, tiny_clip, data_dir, names_server, tmp_path
):
    names = tmp_path / "ja.txt"
    names.write_text("飛行機\n自動車\n鳥\n猫\n鹿\n犬\nカエル\n馬\n船\nトラック\n", encoding="utf-8")
    out = tmp_path / "run"
    llm = ["--reasoner", "openai:m", "--base-url", names_server.url]
    r = run_cli("eval", "clip", "--limit", "6", "--labels", f"@{names}", "--out", out, *llm)
    assert r.exit_code == 0, r.output
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    ja = set(names.read_text(encoding="utf-8").split())
    assert all(x["truth"] in ja and x["prediction"] in ja for x in records)
    assert all(len(x["bridge_sha256"]) == 64 and len(x["names"]) == 1 for x in records)
    config = json.loads((out / "config.json").read_text())
    assert config["labels"][3] == "猫" and config["bridge"]["names"]["猫"] == ["cat"]
    # The summary counts the renamed classes (it counted the base names: all 0, before 36's fix)
    summary = json.loads((out / "summary.json").read_text())
    per_class = summary["per_class"]
    assert set(per_class) == ja and sum(c["n"] for c in per_class.values()) == 6
    assert sum(c["correct"] for c in per_class.values()) == summary["correct"]
    assert sum(map(sum, summary["confusion"]["matrix"])) == 6
    r = run_cli("report", out, "--out", tmp_path / "rep")
    assert r.exit_code == 0 and "bridged" not in r.stdout  # the report reads the run as it is


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("a,b,c", "3 names for 10 classes"),
        ("@{dupes}", "'cat' names two classes"),
        ("@{empty}", "name 2 is empty"),
    ],
)
def test_eval_labels_must_name_every_class_once(
    run_cli, tiny_clip, data_dir, tmp_path, spec, needle
):
    dupes = tmp_path / "dupes.txt"
    dupes.write_text("cat\n" * 10)
    empty = tmp_path / "empty.txt"
    empty.write_text("a\n\nb\n")
    spec = spec.format(dupes=dupes, empty=empty)
    r = run_cli("eval", "clip", "--limit", "2", "--labels", spec, "--out", tmp_path / "r")
    assert r.exit_code == 1 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_name_that_lists_alternatives_is_read_as_its_first(tmp_path):
    """The 1.5B answered 'motor' with "car or truck or motorcycle or boat or tr" (40
    characters): the eyes get "car", not a mixture of five things."""
    llm = ScriptedReasoner(
        _replies({"motor": "car or truck or motorcycle or boat or tr"}, {"motor": "an auto"}),
        probabilities=lambda messages, choices: {c: 0.5 for c in choices},
    )
    k, _p, _c = write_names(["motor"], llm, cache_dir=tmp_path)
    assert k.choices["motor"]["options"] == ["car", "auto"] and k.texts["motor"] == ["car"]


def test_a_given_domain_is_told_in_every_ask_and_none_is_asked_for(
    run_cli, tiny_clip, data_dir, names_server
):
    photo = data_dir / "photos" / "chelsea.png"
    llm = ["--reasoner", "openai:m", "--base-url", names_server.url]
    r = run_cli("classify", photo, "--labels", "猫,犬,車", *llm, "--domain", "pets and cars")
    assert r.exit_code == 0, r.output
    asks = [b["messages"][-1]["content"] for b in names_server.bodies]
    assert len(asks) == 2 and all("猫, 犬, 車. They are pets and cars." in a for a in asks)
    assert "domain 'pets and cars'" in r.stderr
    r = run_cli("labels", "expand", "--labels", "猫,犬", "--strategy", "waffle", "--domain", "x")
    assert r.exit_code == 1 and "--domain is for --strategy names" in r.stderr
