"""Pixel prompting without weights: grid fidelity, encodings, and each strategy's prompts with a
scripted reasoner."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from offline_vision.eval.datasets import Mnist
from offline_vision.eval.tasks import PixelTask
from offline_vision.models.reasoners.scripted import ScriptedReasoner
from offline_vision.pixels import (
    DIGITS,
    Baseline,
    Pool,
    Prompter,
    encode,
    to_grid,
)


@pytest.fixture(scope="module")
def train(data_dir):
    return Mnist(data_dir / "mnist", "train")


@pytest.fixture(scope="module")
def small_pool(train):
    return Pool.from_arrays(train.images[:2000], train.labels[:2000])


def test_grid_reproduces_the_post_exactly(train, data_dir):
    seed = json.loads((data_dir / "seed_pixel_grid.json").read_text())
    grid = to_grid(train.images[seed["index"]])
    assert str(train.labels[seed["index"]]) == str(seed["label"])
    np.testing.assert_array_equal(grid, np.asarray(seed["grid"], dtype=np.float32))
    # The `seed` encoding is the post's nested list: it parses back to the same numbers.
    assert json.loads(encode(grid, "seed")) == seed["grid"]


def test_digit_and_ascii_encodings(train):
    grid = to_grid(train.images[4])
    for enc in ("digits", "ascii"):
        rows = encode(grid, enc).split("\n")
        assert len(rows) == 20 and all(len(r) == 20 for r in rows)
    assert set(encode(grid, "digits")) <= set("0123456789\n")
    assert encode(np.ones((2, 2)), "ascii") == "@@\n@@"
    assert encode(np.zeros((2, 2)), "digits") == "00\n00"


def _always(answer):
    return ScriptedReasoner(lambda messages, choices, schema: answer)


def test_seed_strategy_uses_the_posts_prompt_and_a_digit_constraint(train):
    r = _always("9")
    p = Prompter(r, "seed")
    grid = to_grid(train.images[4])
    pred = p.predict(grid)
    assert pred.prediction == "9"
    (msg,) = r.calls[0]
    assert "This is a virtual world" in msg["content"]
    assert "resize((20, 20)).convert('L')" in msg["content"]
    assert encode(grid, "seed") in msg["content"]
    ja = Prompter(_always("9"), "seed", lang="ja").messages(grid)[0][0]["content"]
    assert "仮想世界" in ja


def test_answers_are_forced_to_one_digit():
    r = ScriptedReasoner(["It looks like a seven", "7"])
    p = Prompter(r, "zero-shot")
    assert p.predict(np.zeros((20, 20), np.float32)).prediction == "7"
    assert "exactly one of: " + ", ".join(DIGITS) in r.calls[1][-1]["content"]


def test_few_shot_examples_are_drawn_once_and_retrieval_takes_the_nearest(small_pool, train):
    r = _always("1")
    few = Prompter(r, "few-shot", shots=5, pool=small_pool, shot_seed=3)
    g1, g2 = to_grid(train.images[10]), to_grid(train.images[11])
    m1, ex1 = few.messages(g1)
    m2, ex2 = few.messages(g2)
    assert ex1 == ex2 and len(ex1) == 5
    assert m1[:-1] == m2[:-1]  # identical prefix: the prompt cache is reused across digits
    ret = Prompter(r, "retrieved", shots=5, pool=small_pool)
    q = to_grid(train.images[1999])  # in the pool: its own nearest neighbour, at distance 0
    msgs, ex = ret.messages(q)
    assert ex[-1] == 1999  # nearest shown last, next to the question
    assert msgs[-2] == {"role": "assistant", "content": str(train.labels[1999])}


def test_feedback_loop_tells_the_truth_and_drops_oldest_in_one_go(train):
    answers = iter(["3", "5", "5", "1"] * 10)
    r = ScriptedReasoner(lambda m, c, s: next(answers))
    p = Prompter(r, "feedback", encoding="ascii", budget_tokens=800)
    truths = ["3", "4", "5", "1", "1", "2", "3", "4"]
    for i, t in enumerate(truths):
        p.predict(to_grid(train.images[i]), t)
    first_second = r.calls[1][-1]["content"]
    assert first_second.startswith("Correct, it was 3.")
    assert r.calls[2][-1]["content"].startswith("Wrong: it was 4.")
    sizes = [len(c) for c in r.calls]  # messages per call: system + 2 per past digit + question
    assert sizes[:3] == [2, 4, 6]
    assert max(sizes) < 2 * len(truths)  # the budget dropped some history…
    drops = [a - b for a, b in itertools.pairwise(sizes) if b < a]
    assert drops and min(drops) >= 4  # …several digits at once, not one per step
    with pytest.raises(Exception, match="needs labelled digits"):
        p.predict(to_grid(train.images[0]))


def test_knn_and_majority_baselines(small_pool, train):
    knn = Baseline("knn", small_pool, k=5)
    # A train digit is its own nearest neighbour; 5-NN should agree with its label here.
    assert knn.predict(small_pool.grids[7]).prediction == str(train.labels[7])
    majority = Baseline("majority", small_pool)
    values, counts = np.unique(small_pool.labels, return_counts=True)
    assert majority.predict(small_pool.grids[0]).prediction == values[np.argmax(counts)]


def test_pixel_task_record_has_transcript_and_tokens(data_dir):
    test = Mnist(data_dir / "mnist", "test")
    task = PixelTask(test, Prompter(_always("7"), "zero-shot"))
    rec = task(0)
    assert rec["truth"] == "7" and rec["prediction"] == "7"
    assert rec["transcript"][-1] == {"role": "assistant", "content": "7"}
    assert rec["tokens"]["prompt"] > 0 and "question" in rec


def test_pixels_command_on_one_image(run_cli, home, data_dir, tmp_path):
    from PIL import Image

    test = Mnist(data_dir / "mnist", "test")
    png = tmp_path / "digit.png"
    Image.fromarray(test.images[0]).save(png)
    r = run_cli("pixels", png, "--strategy", "knn", "--show-grid")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 21 and all(len(x) == 20 for x in lines[:20])  # the ascii grid
    assert lines[-1] == str(test.labels[0])
    r = run_cli("pixels", png, "--strategy", "knn", "--json")
    d = json.loads(r.stdout)
    assert d["prediction"] == str(test.labels[0]) and d["config"]["strategy"] == "knn"
    assert len(d["examples"]) == 5
