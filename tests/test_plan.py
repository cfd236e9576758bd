"""The label plan: one `resolve` that every entry point calls — the CLI and the Python API give
the same results and the same cache entries for the same label set; the API takes in-memory
images; the plan is a value; only `labels.plan` calls the writers (tiny CLIP, a chat server on
127.0.0.1)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_bridge import JA

import offline_vision
from offline_vision.errors import BadInput
from offline_vision.labels.plan import LabelPlan, resolve
from offline_vision.labels.sets import LabelSet


def _cache_files(settings) -> dict[str, str]:
    root = settings.cache_dir / "knowledge"
    return {p.name: p.read_text() for p in sorted(root.rglob("*.json"))}


def test_the_api_bridges_exactly_as_the_cli(
    run_cli, settings, tiny_clip, data_dir, names_server, capsys
):
    from offline_vision import classify, load_reasoner, load_scorer

    photo = data_dir / "photos" / "chelsea.png"
    llm = ["--reasoner", "openai:m", "--base-url", names_server.url]
    r = run_cli("classify", photo, "--labels", "猫,犬,車", *llm, "--json")
    assert r.exit_code == 0, r.output
    cli = json.loads(r.stdout)
    written = _cache_files(settings)
    assert len(written) == 1 and len(names_server.bodies) == 3

    eyes = load_scorer(settings=settings)
    reasoner = load_reasoner("openai:m", base_url=names_server.url, settings=settings)
    capsys.readouterr()
    api = classify([photo], labels="猫,犬,車", scorer=eyes, reasoner=reasoner, settings=settings)
    said = [line for line in capsys.readouterr().err.splitlines() if "bridged" in line]
    assert len(said) == 1 and "from the cache; 猫→cat" in said[0]  # the CLI's announcement
    assert api[0] == cli  # the same labels, names, probabilities and bridge digest
    assert _cache_files(settings) == written and len(names_server.bodies) == 3  # from the cache
    assert {x["label"] for x in api[0]["labels"]} == set(JA)
    assert all(x["names"] == [JA[x["label"]]] for x in api[0]["labels"])

    # In memory: a PIL image and an array give what the file gives.
    img = Image.open(photo).convert("RGB")
    from_pil, from_array = classify(
        [img, np.asarray(img)], labels="猫,犬,車", scorer=eyes, reasoner=reasoner, settings=settings
    )
    assert from_pil["image"] == "<image 0>" and from_array["image"] == "<image 1>"
    assert from_pil["labels"] == from_array["labels"] == cli["labels"]
    # knowledge="none": the labels as written, nothing asked
    raw = classify([img], labels="猫,犬,車", scorer=eyes, knowledge="none", settings=settings)
    assert "bridge" not in raw[0] and "names" not in raw[0]["labels"][0]


def test_a_bad_in_memory_image_is_its_own_error(settings, tiny_clip):
    from offline_vision import classify, load_scorer

    eyes = load_scorer(settings=settings)
    good = np.zeros((8, 8, 3), np.uint8)
    out = classify([good, np.zeros((8, 8), np.float32), "nope.png"], labels="cat,dog", scorer=eyes)
    assert "labels" in out[0]
    assert "uint8" in out[1]["error"] and "no such file" in out[2]["error"]


def test_a_plan_is_a_value(settings, tiny_clip, names_server):
    from offline_vision import load_reasoner, load_scorer

    eyes = load_scorer(settings=settings)
    llm = load_reasoner("openai:m", base_url=names_server.url, settings=settings)
    labels = LabelSet("custom", ("猫", "犬", "車"))

    def factory():
        return llm

    plan = resolve(labels, eyes, cache_dir=settings.cache_dir, reasoner=factory)
    again = resolve(labels, eyes, cache_dir=settings.cache_dir, reasoner=factory)
    assert plan == again and plan.digest == again.digest
    assert len(names_server.bodies) == 3  # the second plan came from the cache: nothing asked
    assert plan.names == {k: [v] for k, v in JA.items()} and plan.read_as == list(JA.values())
    assert json.loads(json.dumps(plan.to_json()))["bridge"]["sha256"] == plan.bridge.sha256
    plain = resolve(labels, eyes, knowledge="none", cache_dir=settings.cache_dir, reasoner=factory)
    assert plain.names is None and plain.reads == (("猫",), ("犬",), ("車",))
    assert plain.digest != plan.digest
    # A built-in set is never bridged, nor a set the LLM is not told (an open dialogue).
    for unasked in (LabelSet("cifar10", ("猫", "犬")), LabelSet("custom", ("猫", "犬"), False)):
        p = resolve(unasked, eyes, cache_dir=settings.cache_dir, reasoner=factory)
        assert isinstance(p, LabelPlan) and p.bridge is None
    with pytest.raises(BadInput, match="--knowledge 'nope'"):
        resolve(labels, eyes, knowledge="nope", cache_dir=settings.cache_dir, reasoner=factory)


def test_only_the_plan_calls_the_writers():
    """`resolve` decides what is written: no other module of the package imports the bridge's
    or a writer's entry point (the follow-up's per-image descriptions share only the texts
    writer's parsing helpers)."""
    root = Path(offline_vision.__file__).parent
    importers = set()
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            called = {"write_names", "write_candidates", "expand", "waffle"}
            called &= {a.name for a in node.names}
            if (node.module or "").startswith("offline_vision.labels.writers") and called:
                importers.add(module)
    assert importers == {"offline_vision.labels.plan"}


def test_no_label_module_is_left_at_the_package_root():
    root = Path(offline_vision.__file__).parent
    left = {"labelmap", "label_knowledge", "knowledge", "bridge", "label_scoring", "labels"}
    assert not {p.stem for p in root.glob("*.py")} & left


def test_a_bridged_label_the_eyes_read_keeps_its_own_text(settings, tiny_clip, tmp_path):
    """In a bridged set, a label the eyes read as English is read by itself and its bridged name
    (bridging plain names by their names alone cost 4 % on the dev images); one they cannot read
    (猫) or a foreign word spelt like English (cane: a walking stick) by its names alone."""
    from offline_vision import load_scorer
    from offline_vision.labels.store import Knowledge

    eyes = load_scorer(settings=settings)
    labels = ("猫", "cane", "car")
    names = {"猫": ["cat"], "cane": ["dog"], "car": ["automobile"]}
    path = tmp_path / "names.json"
    Knowledge("names", list(labels), texts=names).save(path)

    def no_reasoner():
        raise AssertionError("a names file needs no reasoner")

    plan = resolve(
        LabelSet("custom", labels),
        eyes,
        knowledge=str(path),
        cache_dir=settings.cache_dir,
        reasoner=no_reasoner,
    )
    assert plan.reads == (("cat",), ("dog",), ("car", "automobile"))
