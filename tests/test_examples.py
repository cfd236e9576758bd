"""Teach by example (issue 39): a few labelled images per label, blended with zero-shot on
their embeddings, the blend chosen on the examples alone."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from fakes import FakeScorer
from PIL import Image

from offline_vision.errors import BadInput
from offline_vision.labels import adapters, examples
from offline_vision.labels.plan import plan_of
from offline_vision.labels.scoring import LabelScorer
from offline_vision.labels.sets import LabelSet

LABELS = ("alpha", "beta", "gamma")
CENTRES = np.eye(8)[:3] * 3  # each label's images sit around one axis


def _world(seed=0, n=40):
    """Images (as embeddings) of three labels, and text towers that misread alpha and beta as
    each other: zero-shot gets a third of them right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    emb = CENTRES[y] + rng.normal(0, 0.9, (n, 8))
    swapped = {"alpha": 1, "beta": 0, "gamma": 2}
    eyes = FakeScorer(lambda text: CENTRES[swapped[text]] / 3 + 0.2, lambda im: im)
    return eyes, emb, y


def _shots(emb, y, k, seed=1):
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False) for c in set(y)])
    return emb[idx], y[idx]


def _taught(eyes, shot_emb, shot_y) -> LabelScorer:
    refs = tuple((LABELS[c], f"sha{i}") for i, c in enumerate(shot_y))
    ex = examples.Examples("test", refs, shot_emb.astype(np.float32), ("x",) * len(refs))
    plan = replace(plan_of(LabelSet("custom", LABELS), ("{}",)), examples=ex)
    return LabelScorer(eyes, plan)


def test_two_examples_per_label_fix_misleading_text():
    eyes, emb, y = _world()
    test_emb, test_y = _world(seed=7, n=300)[1:]
    zero_shot = LabelScorer(eyes, plan_of(LabelSet("custom", LABELS), ("{}",)))
    zs_acc = (zero_shot.probabilities(test_emb).argmax(1) == test_y).mean()
    taught = _taught(eyes, *_shots(emb, y, 2))
    acc = (taught.probabilities(test_emb).argmax(1) == test_y).mean()
    assert zs_acc < 0.5 and acc > 0.8
    assert taught.adapter is not None and taught.adapter.alpha > 0


def test_one_example_per_label_never_costs_accuracy():
    """Each fold of one example per label leaves its label without one: cross-validation cannot
    show a blend helps, so the answer is zero-shot's exactly — even where the examples mislead."""
    eyes, emb, y = _world()
    test_emb = _world(seed=7, n=100)[1]
    zero_shot = LabelScorer(eyes, plan_of(LabelSet("custom", LABELS), ("{}",)))
    shot_emb, shot_y = _shots(emb, y, 1)
    misleading = _taught(eyes, shot_emb, (shot_y + 1) % 3)  # mislabelled examples
    assert misleading.adapter.expert is None and misleading.adapter.alpha == 0.0
    np.testing.assert_array_equal(
        misleading.probabilities(test_emb), zero_shot.probabilities(test_emb)
    )


def test_the_blend_is_chosen_from_the_examples_alone():
    """`choose` sees the examples and their zero-shot probabilities, nothing else: the same
    examples give the same adapter whatever images it later scores."""
    eyes, emb, y = _world()
    shot_emb, shot_y = _shots(emb, y, 4)
    zs = LabelScorer(eyes, plan_of(LabelSet("custom", LABELS), ("{}",))).probabilities(shot_emb)
    a = adapters.choose(shot_emb, shot_y, zs)
    b = adapters.choose(shot_emb.copy(), shot_y.copy(), zs.copy())
    assert a.describe() == b.describe() and a.cv["table"] == b.cv["table"]
    assert set(adapters.folds(shot_y)) == {0, 1, 2, 3}  # fold j: each label's j-th example


def test_a_label_without_examples_keeps_its_zero_shot_probability():
    eyes, emb, y = _world()
    keep = y != 2  # gamma has no examples
    shot_emb, shot_y = _shots(emb[keep], y[keep], 4)
    scorer = _taught(eyes, shot_emb, shot_y)
    plain = LabelScorer(eyes, plan_of(LabelSet("custom", LABELS), ("{}",)))
    test_emb = _world(seed=3, n=50)[1]
    np.testing.assert_allclose(
        scorer.probabilities(test_emb)[:, 2], plain.probabilities(test_emb)[:, 2], rtol=1e-9
    )


def test_each_method_fits_and_blends(subtests=None):
    _eyes, emb, y = _world()
    for method in adapters.METHODS:
        ex = adapters.fit_expert(method, adapters.PARAMS[method][0], emb, y)
        assert (ex.logits(emb).argmax(1) == np.searchsorted(ex.present, y)).mean() > 0.8, method


def _png(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)


def test_examples_from_a_folder_and_a_csv(tmp_path):
    _png(tmp_path / "shots" / "cat" / "a.png", (200, 10, 10))
    _png(tmp_path / "shots" / "dog" / "b.png", (10, 10, 200))
    pairs = examples.read_source(tmp_path / "shots", ["cat", "dog", "car"])
    assert [(p.name, lab) for p, lab in pairs] == [("a.png", "cat"), ("b.png", "dog")]
    (tmp_path / "s.csv").write_text("path,label\nshots/cat/a.png,cat\n")
    assert examples.read_source(tmp_path / "s.csv", ["cat"]) == [
        (tmp_path / "shots/cat/a.png", "cat")
    ]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: _png(d / "shots" / "horse" / "a.png", (0, 0, 0)), "'horse' is not one of"),
        (lambda d: (d / "shots" / "cat").mkdir(parents=True), "no images in it"),
        (lambda d: (d / "shots").mkdir(), "no label folders"),
        (lambda d: (d / "shots.csv").write_text("file,label\n"), "needs the columns path,label"),
        (lambda d: (d / "shots.csv").write_text("path,label\na.png,horse\n"), ":2: 'horse'"),
    ],
)
def test_bad_examples_are_one_line(tmp_path, setup, message):
    setup(tmp_path)
    source = tmp_path / ("shots.csv" if (tmp_path / "shots.csv").exists() else "shots")
    with pytest.raises(BadInput, match=message):
        examples.read_source(source, ["cat", "dog"])


def test_example_embeddings_are_cached_by_content(tmp_path):
    seen = []
    eyes = FakeScorer(
        lambda t: np.ones(3), lambda im: seen.append(im) or np.asarray(im, float)[0, 0]
    )
    _png(tmp_path / "shots" / "cat" / "a.png", (200, 10, 10))
    first = examples.load(tmp_path / "shots", ["cat"], eyes, tmp_path / "cache")
    again = examples.load(tmp_path / "shots", ["cat"], eyes, tmp_path / "cache")
    assert len(seen) == 1 and first == again  # the second run embedded nothing
    _png(tmp_path / "shots" / "cat" / "a.png", (10, 200, 10))  # the file changes
    changed = examples.load(tmp_path / "shots", ["cat"], eyes, tmp_path / "cache")
    assert len(seen) == 2 and changed.refs != first.refs
    np.testing.assert_allclose(
        changed.embeddings[0],
        [
            10 / np.sqrt(2 * 10**2 + 200**2),
            200 / np.sqrt(2 * 10**2 + 200**2),
            10 / np.sqrt(2 * 10**2 + 200**2),
        ],
        rtol=1e-5,
    )


def test_the_plan_digest_covers_the_examples(tmp_path):
    emb = _world()[1]
    base = plan_of(LabelSet("custom", LABELS), ("{}",))
    one = examples.Examples("s", (("alpha", "aa"),), emb[:1], ("x",))
    other = examples.Examples("s", (("alpha", "bb"),), emb[:1], ("x",))
    digests = {p.digest for p in (base, replace(base, examples=one), replace(base, examples=other))}
    assert len(digests) == 3
    body = json.loads(json.dumps(replace(base, examples=one).to_json()))
    assert body["examples"]["files"] == [["alpha", "aa", "x"]]


# --- the command line, on the tiny CLIP ------------------------------------------------------


def test_classify_with_examples_announces_the_adapter(run_cli, tiny_clip, data_dir, tmp_path):
    for label, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200)), ("cup", (30, 200, 30))):
        for i in range(3):
            _png(tmp_path / "shots" / label / f"{i}.png", tuple(c + 10 * i for c in colour))
    photo = data_dir / "photos" / "chelsea.png"
    args = ["classify", photo, "--labels", "cat,dog,cup", "--examples", tmp_path / "shots"]
    r = run_cli(*args, "--json")
    assert r.exit_code == 0, r.output
    assert "examples: 9 images for 3 of 3 labels" in r.stderr
    out = json.loads(r.stdout)
    assert abs(sum(x["probability"] for x in out["labels"]) - 1) < 1e-4
    _png(tmp_path / "shots" / "horse" / "0.png", (0, 0, 0))
    r = run_cli(*args)
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "'horse' is not one of the labels" in r.stderr


def test_eval_clip_shots_are_drawn_apart_from_the_evaluated_items(run_cli, tiny_clip, tmp_path):
    sample = tmp_path / "s.txt"
    r = run_cli("eval", "clip", "--limit", "4", "--shots", "2", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    ex = config["examples"]
    assert ex["n"] == 20 and set(ex["per_label"].values()) == {2}
    records = [json.loads(x) for x in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    drawn = {int(f[2].split("#")[1]) for f in ex["files"]}
    assert len(records) == 4 and not drawn & {rec["id"] for rec in records}
    report = run_cli("report", tmp_path / "run")
    assert "K=2" in report.stdout
    # the pool given overlaps what is evaluated: refused, nothing run
    sample.write_text("\n".join(str(rec["id"]) for rec in records) + "\n")
    r = run_cli("eval", "clip", "--sample", sample, "--shots", "1", "--shots-from", sample)
    assert r.exit_code != 0 and "4 of its items are evaluated too" in r.stderr
    r = run_cli("eval", "clip", "--limit", "2", "--shots-from", sample)
    assert r.exit_code != 0 and "--shots-from needs --shots K" in r.stderr


def test_the_api_takes_examples_as_the_cli_does(settings, tiny_clip, data_dir, tmp_path):
    import offline_vision

    for label, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
        for i in range(2):
            _png(tmp_path / "shots" / label / f"{i}.png", tuple(c + 10 * i for c in colour))
    photo = data_dir / "photos" / "chelsea.png"
    plan = offline_vision.plan_labels("cat,dog", examples=tmp_path / "shots", settings=settings)
    assert plan.examples is not None and plan.examples.counts() == {"cat": 2, "dog": 2}
    got = offline_vision.classify(
        [photo], "cat,dog", examples=tmp_path / "shots", settings=settings
    )
    assert got == offline_vision.classify([photo], plan, settings=settings)


# --- names chosen by examples (item 3) ---------------------------------------------------------


def _named_world():
    """Two labels the bridge misnamed: moggy read as 'dog', pooch as 'animal'; the texts 'cat'
    and 'dog' point at the examples' two clusters, 'animal' between them."""
    vec = {"cat": CENTRES[0], "dog": CENTRES[1], "animal": CENTRES[0] + CENTRES[1]}
    eyes = FakeScorer(lambda t: vec.get(t, CENTRES[2]) + 0.01, lambda im: im)
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 1, 1])
    emb = CENTRES[y] + rng.normal(0, 0.3, (4, 8))
    refs = tuple((("moggy", "pooch")[c], f"s{i}") for i, c in enumerate(y))
    return eyes, examples.Examples("t", refs, emb, ("x",) * 4)


def test_the_examples_choose_among_candidate_names():
    from offline_vision.labels.naming import choose_names

    eyes, ex = _named_world()
    reads = (("dog",), ("animal",))
    cands = {"moggy": ["dog", "cat", "animal"], "pooch": ["animal", "dog", "puppy"]}
    got, record = choose_names(eyes, ("moggy", "pooch"), ("{}",), reads, ex, cands)
    assert got == (("cat",), ("dog",))
    assert record["moggy"]["chosen"] == ["cat"] and set(record["moggy"]["scores"]) == {
        "cat",
        "animal",
    }
    assert record["moggy"]["scores"]["cat"] > record["moggy"]["as_read"]
    # without a better candidate the bridge's name stays
    got, _ = choose_names(eyes, ("moggy", "pooch"), ("{}",), (("cat",), ("dog",)), ex, cands)
    assert got == (("cat",), ("dog",))


def test_resolve_asks_for_candidates_once_and_records_the_choice(tmp_path):
    from offline_vision.labels.plan import resolve
    from offline_vision.labels.store import Knowledge
    from offline_vision.models.reasoners.scripted import ScriptedReasoner

    eyes, ex = _named_world()
    path = tmp_path / "names.json"
    Knowledge("names", ["moggy", "pooch"], texts={"moggy": ["dog"], "pooch": ["animal"]}).save(path)
    llm = ScriptedReasoner([json.dumps({"moggy": ["cat", "kitten"], "pooch": ["dog", "hound"]})])
    label_set = LabelSet("custom", ("moggy", "pooch"))
    kw = dict(knowledge=str(path), templates=("{}",), cache_dir=tmp_path, reasoner=lambda: llm)
    plan = resolve(label_set, eyes, examples=ex, **kw)
    assert plan.reads == (("cat",), ("dog",)) and plan.named["moggy"]["chosen"] == ["cat"]
    again = resolve(label_set, eyes, examples=ex, **kw)
    assert again == plan and len(llm.calls) == 1  # the candidates came from the cache
    # without examples: the bridge's names (moggy and pooch are too rare in English to keep)
    assert resolve(label_set, eyes, **kw).reads == (("dog",), ("animal",))


def test_a_dictionarys_name_is_rechosen_only_from_two_examples(tmp_path):
    """One example per label chose 'deer meat' over a dictionary's 'deer' on the dev images:
    a name a dictionary gave stays unless its label has two examples or more."""
    from offline_vision.labels.plan import resolve
    from offline_vision.labels.store import Knowledge
    from offline_vision.models.reasoners.scripted import ScriptedReasoner

    eyes, two = _named_world()
    k = Knowledge("names", ["moggy", "pooch"], texts={"moggy": ["dog"], "pooch": ["dog"]})
    k.choices = {
        lab: {"options": ["dog", "cat"], "odds": {}, "chosen": "dog", "source": "JMdict"}
        for lab in ("moggy", "pooch")
    }
    path = tmp_path / "names.json"
    k.save(path)
    llm = ScriptedReasoner([])  # never asked: a dictionary named every label
    kw = dict(knowledge=str(path), templates=("{}",), cache_dir=tmp_path, reasoner=lambda: llm)
    label_set = LabelSet("custom", ("moggy", "pooch"))
    one = examples.Examples("t", two.refs[1:3], two.embeddings[1:3], ("x", "x"))
    assert resolve(label_set, eyes, examples=one, **kw).named == {}
    assert resolve(label_set, eyes, examples=two, **kw).reads[0] == ("cat",)


class _FeatureEyes(FakeScorer):
    """Eyes whose embeddings say nothing of the label but whose richer features do (as ConSE's
    ImageNet log-probabilities said more than its 384-d embeddings on the dev images)."""

    def encode_with_features(self, images):
        return self.encode_images(images), np.stack([im[8:] for im in images])


def test_examples_are_read_through_the_eyes_features_where_they_have_them(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    images = [np.concatenate([rng.normal(0, 1, 8), CENTRES[c] + rng.normal(0, 0.3, 8)]) for c in y]
    eyes = _FeatureEyes(lambda t: CENTRES[LABELS.index(t)] / 3 + 0.2, lambda im: im[:8])
    items = [
        (LABELS[c], f"s{i}", "x", lambda im=im: im)
        for i, (c, im) in enumerate(zip(y, images, strict=True))
    ]
    shots = examples.embed(items[::3], eyes, tmp_path, "t")
    assert shots.features is not None and shots.features.shape == (30, 8)
    plan = replace(plan_of(LabelSet("custom", LABELS), ("{}",)), examples=shots)
    emb, feats = examples.encode(eyes, images[1::3])
    truth = y[1::3]
    richer = LabelScorer(eyes, plan)
    assert richer.uses_features
    assert (richer.probabilities(emb, feats).argmax(1) == truth).mean() > 0.9
    stored = LabelScorer(eyes, plan, features=False)  # the catalog's way: embeddings only
    assert (stored.probabilities(emb).argmax(1) == truth).mean() < 0.7
    with pytest.raises(ValueError, match="pass them"):
        richer.probabilities(emb)
    again = examples.embed(items[::3], eyes, tmp_path, "t")  # features cached with embeddings
    np.testing.assert_array_equal(again.features, shots.features)


def test_a_label_no_name_fits_is_announced_and_left_to_its_examples(caplog):
    """pooch's only candidate is the name moggy's images are read by: no name fits it."""
    import logging

    from offline_vision.labels.naming import choose_names

    eyes, ex = _named_world()
    cands = {"moggy": ["cat"], "pooch": ["cat"]}
    with caplog.at_level(logging.INFO, logger="ovision"):
        _got, record = choose_names(
            eyes, ("moggy", "pooch"), ("{}",), (("cat",), ("cat",)), ex, cands
        )
    assert record["moggy"]["examples_read_as_it"] == 1.0
    assert record["pooch"]["examples_read_as_it"] == 0.0
    assert "no name fits pooch: their examples carry them" in caplog.text
