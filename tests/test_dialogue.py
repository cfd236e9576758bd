"""The dialogue without weights: a scripted reasoner talking to a scorer whose scores the test
controls. Back-off, the stop rule, repairs and fallbacks, open-answer mapping, transcripts,
resume, and one image encoding per dialogue."""

from __future__ import annotations

import hashlib
import json

import fakes
import numpy as np
import pytest
from PIL import Image

from offline_vision.dialogue import DialogueConfig, run_dialogue
from offline_vision.eval.tasks import DialogueTask
from offline_vision.labels.answers import map_answer
from offline_vision.labels.plan import plan_of
from offline_vision.labels.sets import CIFAR10, LabelSet
from offline_vision.models.reasoners.scripted import ScriptedReasoner
from offline_vision.prompts import BACKOFF, BROAD_FALLBACK, REPEAT


def FakeScorer(affinity: dict[str, float] | None = None) -> fakes.FakeScorer:
    """Image = unit vector e0. A label's logit is `affinity[label]` (default 0), so
    probabilities over any candidate list are then a softmax of those affinities."""
    affinity = affinity or {}

    def text(t: str) -> np.ndarray:
        a = affinity.get(t.removeprefix("a photo of a "), 0.0)
        seed = int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
        rest = np.random.default_rng(seed).normal(size=63)
        rest *= np.sqrt(max(1 - (a / 10) ** 2, 0)) / np.linalg.norm(rest)
        return np.concatenate([[a / 10], rest])

    return fakes.FakeScorer(text, lambda image: np.eye(64)[0], logit_scale=10.0)


def rounds_json(*rounds, guess=None):
    return [json.dumps({"candidates": c, **({"guess": guess} if guess else {})}) for c in rounds]


IMG = Image.new("RGB", (32, 32))


def test_seed_policy_runs_fixed_rounds_and_encodes_the_image_once():
    scorer = FakeScorer({"truck": 9.0, "vehicle": 8.0})
    answers = rounds_json(
        ["animal", "vehicle"],
        ["car", "truck"],
        ["truck", "bus"],
        ["truck", "van"],
        ["truck", "lorry"],
    )
    r = ScriptedReasoner(lambda m, c, s: "truck" if c else answers.pop(0))
    d = run_dialogue(
        IMG, scorer, r, list(CIFAR10), config=DialogueConfig(policy="seed", probe=False)
    )
    assert len(d["rounds"]) == 5 and d["stopped_after"] is None
    assert d["answer"] == {"raw": "truck", "label": "truck", "rule": "choice"}
    assert scorer.images_encoded == 1
    first = d["rounds"][0]
    assert [x[0] for x in first["scores"]] == ["vehicle", "animal"]  # sorted, highest first
    # The exchange the LLM saw: system, then user/assistant alternating, sorted scores in text.
    roles = [m["role"] for m in d["messages"]]
    assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * 6
    assert "vehicle:" in d["messages"][3]["content"].split("animal:")[0]


def test_flat_scores_trigger_the_back_off_prompt():
    scorer = FakeScorer({"dog": 0.0, "cat": 0.0, "wolf": 0.0, "animal": 6.0})
    answers = rounds_json(["dog", "cat", "wolf"], ["animal", "vehicle"], guess="dog")
    r = ScriptedReasoner(lambda m, c, s: "dog" if c else answers.pop(0))
    d = run_dialogue(
        IMG,
        scorer,
        r,
        list(CIFAR10),
        config=DialogueConfig(policy="adaptive", rounds=2, probe=False, trust=1.0, shortlist=0),
    )
    assert d["rounds"][0]["flat"] is True
    assert BACKOFF.strip() in d["messages"][3]["content"]
    assert d["rounds"][1]["flat"] is False


def test_stop_rule_fires_when_guess_and_eyes_agree():
    scorer = FakeScorer({"cat": 9.0})
    answers = rounds_json(["cat", "dog"], guess="cat")
    r = ScriptedReasoner(lambda m, c, s: "cat" if c else answers.pop(0))
    cfg = DialogueConfig(policy="adaptive", trust=1.0)
    d = run_dialogue(IMG, scorer, r, list(CIFAR10), config=cfg)
    assert d["stopped_after"] == 1 and len(d["rounds"]) == 1
    assert d["answer"]["label"] == "cat"
    assert d["answer_by_round"] == ["cat"] * 5
    # The final prompt shows the eyes' scores over the answer options.
    assert "scores over the possible answers" in d["messages"][-2]["content"]


def test_confident_eyes_answer_without_asking_the_llm():
    scorer = FakeScorer({"ship": 9.0})
    r = ScriptedReasoner(lambda m, c, s: pytest.fail("the LLM must not be asked"))
    cfg = DialogueConfig(policy="adaptive", trust=0.5)
    d = run_dialogue(IMG, scorer, r, list(CIFAR10), config=cfg)
    assert d["stopped_after"] == 0 and d["rounds"] == [] and d["calls"] == []
    assert d["answer"]["label"] == "ship" and d["answer"]["rule"] == "eyes"
    assert d["answer"]["eyes_top"] >= 0.5
    assert d["answer_by_round"] == ["ship"] * 5
    # The same image with the gate shut (trust 1) goes to the LLM.
    answers = rounds_json(["boat", "car"], guess="boat")
    asked = ScriptedReasoner(lambda m, c, s: "ship" if c else answers.pop(0))
    cfg = DialogueConfig(policy="adaptive", rounds=1, probe=False, trust=1.0)
    d = run_dialogue(IMG, scorer, asked, list(CIFAR10), config=cfg)
    assert d["stopped_after"] is None and len(d["rounds"]) == 1


def test_shortlist_limits_the_final_answer_to_the_eyes_top_labels():
    scorer = FakeScorer({"cat": 3.0, "dog": 2.9, "deer": 2.0})
    seen = []

    def script(messages, choices, schema):
        if choices:
            seen.append(list(choices))
            return choices[-1]
        return rounds_json(["cat", "fox"], guess="fox")[0]

    cfg = DialogueConfig(policy="adaptive", rounds=1, probe=False, trust=1.0, shortlist=3)
    d = run_dialogue(IMG, scorer, ScriptedReasoner(script), list(CIFAR10), config=cfg)
    assert seen == [["cat", "dog", "deer"]]
    assert d["answer"]["label"] == "deer"
    final = d["messages"][-2]["content"]
    assert "over the possible answers:\n  cat: " in final and "frog" not in final


def test_gate_settings_are_validated():
    from offline_vision.errors import BadInput

    with pytest.raises(BadInput, match="trust"):
        DialogueConfig(trust=1.5)
    with pytest.raises(BadInput, match="shortlist"):
        DialogueConfig(shortlist=-1)


def test_garbage_rounds_fall_back_and_off_list_answers_are_repaired():
    scorer = FakeScorer()
    script = ["no json here", "{still not", "Probably a kitten!", "cat"]
    r = ScriptedReasoner(lambda m, c, s: script.pop(0) if script else '{"candidates": ["a", "b"]}')
    d = run_dialogue(
        IMG, scorer, r, list(CIFAR10), config=DialogueConfig(policy="seed", rounds=1, probe=False)
    )
    rnd = d["rounds"][0]
    assert rnd["candidates"] == BROAD_FALLBACK and "raw answer" in rnd["fallback"]
    assert d["answer"]["label"] == "cat"  # repaired on the second try
    dup = ScriptedReasoner(
        lambda m, c, s: "cat" if c else '{"candidates": ["Cat", "cat", " CAT "]}'
    )
    d = run_dialogue(
        IMG, scorer, dup, list(CIFAR10), config=DialogueConfig(policy="seed", rounds=1, probe=False)
    )
    assert d["rounds"][0]["fallback"] and "fewer than 2 distinct" in d["rounds"][0]["fallback"]


@pytest.mark.parametrize(
    ("answer", "label", "rule"),
    [
        ("Truck", "truck", "exact"),
        ("the airplanes.", "airplane", "exact"),
        ("aeroplane", "airplane", "synonym"),
        ("motorcar", "automobile", "synonym"),
        ("sedan", "automobile", "hyponym"),
        ("sparrow", "bird", "hyponym"),
        ("toad", "frog", "synonym"),
        ("I think it is a pickup truck on a road", "truck", "mentioned"),
        ("", None, "unmapped"),
    ],
)
def test_open_answer_mapping_rules(answer, label, rule):
    m = map_answer(answer, list(CIFAR10), label_set="cifar10")
    assert (m.label, m.rule) == (label, rule)


def test_open_answer_mapping_by_embedding_and_unmapped():
    def embed(texts):
        # "a photo of a kenworth" (a brand WordNet lacks) points at truck; a teapot at nothing.
        table = {"kenworth": "truck"}
        out = []
        for t in texts:
            word = table.get(t.removeprefix("a photo of a "), t.removeprefix("a photo of a "))
            v = np.zeros(len(CIFAR10) + 1)
            v[CIFAR10.index(word) if word in CIFAR10 else -1] = 1
            out.append(v)
        return np.asarray(out)

    m = map_answer("kenworth", list(CIFAR10), label_set="cifar10", embed=embed)
    assert (m.label, m.rule) == ("truck", "embedding")
    m = map_answer("teapot", list(CIFAR10), label_set="cifar10", embed=embed)
    assert (m.label, m.rule) == (None, "unmapped")
    both = map_answer("either a cat or a dog", list(CIFAR10), label_set="cifar10")
    assert both.rule == "unmapped"  # two labels named: the sentence decides nothing


def test_embedding_threshold_is_calibrated_on_wordnet_sorted_imagenet_names():
    from offline_vision.labels.answers import calibrate_threshold, calibration_names

    under, none = calibration_names()
    assert ("tabby cat", "cat") in under and "goldfish" in none and len(under) > 100
    home = dict(under)

    def embed(texts):
        # A label's own vector for the label and the names under it; every other name sits at
        # cosine 0.6 from "airplane": thresholds up to 0.6 would map them all.
        out = []
        for t in texts:
            word = t.removeprefix("a photo of a ")
            v = np.zeros(len(CIFAR10) + 1)
            if word in CIFAR10 or word in home:
                v[CIFAR10.index(home.get(word, word))] = 1
            else:
                v[0], v[-1] = 0.6, 0.8
            out.append(v)
        return np.asarray(out)

    cal = calibrate_threshold(embed)
    assert cal["threshold"] == 0.65 and cal["calibrated"]
    assert cal["under_mapped_right"] == cal["under"] and cal["none_left_unmapped"] == cal["none"]


def test_open_mode_records_raw_answer_mapped_label_and_rule():
    scorer = FakeScorer({"sedan": 5.0})
    answers = rounds_json(["sedan", "truck"], guess="sedan")
    offered = []
    r = ScriptedReasoner(lambda m, c, s: offered.append(c) or "sedan" if c else answers.pop(0))
    d = run_dialogue(
        IMG,
        scorer,
        r,
        LabelSet("cifar10", CIFAR10, known=False),
        config=DialogueConfig(policy="adaptive", rounds=1, probe=False),
    )
    assert d["answer"]["raw"] == "sedan" and d["answer"]["label"] == "automobile"
    assert d["answer"]["rule"] == "hyponym"
    assert "one of these" not in d["messages"][0]["content"]  # the label set is not told
    # The answer is one of the labels the LLM asked about, the eyes' favourite first — shown to
    # it as the eyes' scores over everything it asked.
    assert offered == [["sedan", "truck"]]
    assert "all the labels you asked about:\n  sedan:" in d["messages"][-2]["content"]


def test_open_answers_pool_every_round_narrow_down_and_a_repeated_question_stops():
    scorer = FakeScorer({"dog": 4.0, "animal": 3.0, "wolf": 3.5, "cat": 1.0})
    answers = rounds_json(
        ["animal", "vehicle"], ["dog", "wolf", "cat"], ["dog", "wolf"], ["cat", "dog"], guess="fox"
    )
    offered = []
    r = ScriptedReasoner(lambda m, c, s: offered.append(c) or c[-1] if c else answers.pop(0))
    cfg = DialogueConfig(policy="adaptive", rounds=5, shortlist=3)
    d = run_dialogue(IMG, scorer, r, LabelSet("custom", CIFAR10, known=False), config=cfg)
    # Round 3 asked nothing new, was asked for new labels once, repeated again: stop.
    assert [x["repeat"] for x in d["rounds"]] == [False, False, True]
    assert "repeated" in d["rounds"][2] and d["stopped_after"] == 3 and not answers
    user = [m["content"] for m in d["messages"] if m["role"] == "user"]
    assert "more specific kinds of animal" in user[1] and "kinds of dog" in user[2]
    assert REPEAT in user
    # Options: the eyes' top 3 over all asked so far, less "animal" once kinds of animal were
    # asked ("dog" stays: nothing below it was asked).
    assert offered == [["animal", "vehicle"]] + [["dog", "wolf", "cat"]] * 3
    assert [p["raw"] for p in d["probes"]] == ["vehicle", "cat", "cat"]
    assert d["answer"]["raw"] == "cat" and d["answer"]["label"] == "cat"
    # The seed policy keeps asking: the post had no stop rule.
    answers = rounds_json(*[["dog", "wolf"]] * 3)
    r = ScriptedReasoner(lambda m, c, s: "dog" if c else answers.pop(0))
    d = run_dialogue(IMG, scorer, r, list(CIFAR10), config=DialogueConfig(policy="seed", rounds=3))
    assert d["stopped_after"] is None and len(d["rounds"]) == 3


def test_probes_give_accuracy_by_round_without_changing_the_dialogue():
    scorer = FakeScorer({"ship": 9.0})
    answers = rounds_json(["ship", "boat"], ["ship", "plane"], ["ship", "car"])
    r = ScriptedReasoner(
        lambda m, c, s: ("ship" if len(m) > 5 else "airplane") if c else answers.pop(0)
    )
    d = run_dialogue(IMG, scorer, r, list(CIFAR10), config=DialogueConfig(policy="seed", rounds=3))
    assert d["answer_by_round"] == ["airplane", "ship", "ship"]
    assert len(d["messages"]) == 1 + 2 * 4  # probes are side branches, not in the conversation


class TinyDataset:
    name = "cifar10"
    classes = CIFAR10

    def item(self, i):
        from offline_vision.eval.datasets import Item

        return Item(i, CIFAR10[i % 10], f"#{i}")

    def image(self, i):
        return IMG


class DyingTask(DialogueTask):
    """Raises KeyboardInterrupt (as a killed run would stop) after `die_after` items."""

    def __init__(self, *args, die_after=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.die_after, self.calls = die_after, 0

    def __call__(self, index):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt
        self.calls += 1
        return super().__call__(index)


def test_dialogue_eval_resumes_and_reports_by_round(tmp_path):
    from offline_vision.eval import records, runner

    def script(m, c, s):
        return CIFAR10[len(m) % 10] if c else json.dumps({"candidates": ["cat", "dog"]})

    def make(die_after=None):
        return DyingTask(
            TinyDataset(),
            FakeScorer({"cat": 3.0}),
            ScriptedReasoner(script),
            plan_of(LabelSet("cifar10", CIFAR10), ("{}",)),
            known=True,
            config=DialogueConfig(policy="seed", rounds=2),
            die_after=die_after,
        )

    full = runner.run(make(), list(range(8)), tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        runner.run(make(die_after=3), list(range(8)), tmp_path / "cut")
    resumed_task = make()
    resumed = runner.run(resumed_task, list(range(8)), tmp_path / "cut")
    assert resumed_task.calls == 5
    assert (
        resumed["accuracy"] == full["accuracy"]
        and resumed["accuracy_by_round"] == full["accuracy_by_round"]
    )
    assert len(full["accuracy_by_round"]) == 2
    rec = records.read_records(tmp_path / "full" / records.RECORDS)[0]
    assert rec.dialogue["messages"] and rec.dialogue["rounds"][0]["scores"]
    assert full["config"]["scorer"] == {"scorer": "fake", "standin": True}


def _canned(body, headers):
    """A server-side LLM stand-in: candidates for rounds, the first option for answers."""
    schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
    props = schema.get("properties", {})
    if "answer" in props:
        options = props["answer"]["enum"]
        kitten = [o for o in options if "kitten" in o]
        return json.dumps({"answer": "cat" if "cat" in options else (kitten or options)[-1]})
    return json.dumps({"candidates": ["animal", "vehicle", "a tabby kitten"], "guess": "animal"})


def test_dialogue_and_eval_commands_end_to_end(run_cli, tiny_clip, data_dir, tmp_path):
    from fakes import ChatServer

    srv = ChatServer(_canned)
    try:
        common = ["--reasoner", "openai:stub", "--base-url", srv.url, "--scorer", "clip"]
        photo = data_dir / "cifar10" / "test" / "cat" / "00000.png"
        r = run_cli("dialogue", photo, "--policy", "seed", "--rounds", "2", *common)
        assert r.exit_code == 0, r.output
        assert "animal? vehicle? a tabby kitten?" in r.stdout and r.stdout.strip().endswith(
            "answer: cat"
        )
        r = run_cli("dialogue", photo, "--open", "--rounds", "1", "--json", *common)
        d = json.loads(r.stdout)
        assert d["answer"] == {
            "raw": "a tabby kitten",
            "label": "cat",
            "rule": "mentioned",
            "score": None,
        }
        assert d["scorer"]["scorer"] == "clip" and d["reasoner"]["name"] == "openai:stub"

        r = run_cli(
            "eval",
            "clip",
            "--dataset",
            "cifar10",
            "--sample",
            "cifar10-300",
            "--limit",
            "12",
            "--scorer",
            "clip",
            "--out",
            tmp_path / "t1",
        )
        assert r.exit_code == 0, r.output
        r = run_cli(
            "eval",
            "dialogue",
            "--sample",
            "cifar10-300",
            "--limit",
            "12",
            "--rounds",
            "2",
            "--trust",
            "1",
            *common,
            "--out",
            tmp_path / "t2",
        )
        assert r.exit_code == 0, r.output
        s = json.loads((tmp_path / "t2" / "summary.json").read_text())
        assert len(s["accuracy_by_round"]) == 2 and s["config"]["policy"] == "adaptive"
        r = run_cli(
            "report",
            tmp_path / "t1",
            tmp_path / "t2",
            "--baseline",
            tmp_path / "t1",
            "--out",
            tmp_path / "rep",
        )
        assert r.exit_code == 0 and "McNemar" in r.stdout
        assert (tmp_path / "rep" / "t2.by_round.png").exists()
    finally:
        srv.stop()
