"""The catalog: embed once (incrementally), tag many times from stored embeddings with several
attribute groups, search — tiny CLIP, photos and CIFAR-10 PNGs from the shared data."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest

from offline_vision.catalog.store import Catalog


@pytest.fixture
def folder(tmp_path, data_dir):
    """A folder of 6 images: 4 photos and 2 CIFAR-10 PNGs."""
    d = tmp_path / "imgs"
    d.mkdir()
    for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"):
        shutil.copy(data_dir / "photos" / name, d / name)
    for i, src in enumerate(sorted((data_dir / "cifar10" / "test" / "cat").glob("*.png"))[:2]):
        shutil.copy(src, d / f"cifar{i}.png")
    return d


def _index(run_cli, folder, cat):
    r = run_cli("index", folder, "--out", cat, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_index_once_then_only_what_changed(run_cli, tiny_clip, folder, tmp_path):
    cat = tmp_path / "cat"
    first = _index(run_cli, folder, cat)
    assert (first["added"], first["unchanged"], first["failed"]) == (6, 0, 0)
    again = _index(run_cli, folder, cat)
    assert (again["added"], again["changed"], again["unchanged"]) == (0, 0, 6)  # nothing read
    (folder / "new.png").write_bytes((folder / "chelsea.png").read_bytes())
    os.utime(folder / "coffee.png", ns=(1, 1))  # touched, same content: not embedded again
    shutil.copy(folder / "astronaut.png", folder / "cifar0.png")  # changed content
    (folder / "rocket.jpg").unlink()
    third = _index(run_cli, folder, cat)
    assert {k: third[k] for k in ("added", "changed", "unchanged", "removed")} == {
        "added": 1, "changed": 1, "unchanged": 4, "removed": 1,
    }  # fmt: skip
    rows = Catalog.open(cat).rows()
    assert len(rows.paths) == 6 and not any(p.endswith("rocket.jpg") for p in rows.paths)


def test_the_catalog_is_parquet_others_read(run_cli, tiny_clip, folder, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow.dataset as ds

    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    table = ds.dataset(cat / "parts", format="parquet").to_table()
    assert table.num_rows == 6 and table.schema.field("embedding").type.list_size > 0
    assert set(table.column_names) >= {"path", "size", "mtime_ns", "sha256", "removed"}
    assert pq.read_table(next((cat / "parts").glob("*.parquet"))).num_rows == 6


def test_tag_gives_classifys_top_labels_without_decoding(run_cli, tiny_clip, folder, tmp_path):
    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    r = run_cli("classify", folder, "--labels", "cat,dog,car,coffee", "--top-k", "1", "--json")
    by_classify = {
        str((folder / os.path.basename(x["image"])).resolve()): x["labels"][0]
        for x in map(json.loads, r.stdout.splitlines())
    }
    r = run_cli("tag", cat, "--labels", "cat,dog,car,coffee")
    assert r.exit_code == 0, r.output
    tagged = {x["image"]: x["labels"][0] for x in map(json.loads, r.stdout.splitlines())}
    assert tagged.keys() == by_classify.keys()
    for path, top in tagged.items():
        assert top["label"] == by_classify[path]["label"]
        assert top["score"] == pytest.approx(by_classify[path]["probability"], abs=1e-5)


def test_several_groups_to_csv_and_parquet(run_cli, tiny_clip, folder, tmp_path):
    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    attrs = tmp_path / "attrs.toml"
    attrs.write_text(
        '[kind]\nlabels = ["cat", "cup", "rocket"]\n[colour]\nlabels = "red,blue,white"\ntemplate = "a {} photo"\n'
    )
    out = tmp_path / "tags.csv"
    r = run_cli("tag", cat, "--attributes", attrs, "--labels", "scene=indoor,outdoor", "--out", out)
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0] == "image,scene,scene_score,kind,kind_score,colour,colour_score"
    assert len(lines) == 7 and json.loads(out.with_name("tags.csv.plans.json").read_text())["plans"].keys() == {"scene", "kind", "colour"}  # fmt: skip
    pq = pytest.importorskip("pyarrow.parquet")
    r = run_cli("tag", cat, "--attributes", attrs, "--out", tmp_path / "tags.parquet")
    assert r.exit_code == 0, r.output
    assert pq.read_table(tmp_path / "tags.parquet").column_names == ["image", "kind", "colour", "kind_score", "colour_score"]  # fmt: skip


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[a]\nlabels = ["x"]\nshade = 1\n', "unknown key 'shade'"),
        ("[a]\nlabels = []\n", "names no labels"),
        ('[a]\nlabels = ["x", "x"]\n', "names a label twice"),
        ("[a]\ntemplate = 'a {}'\n", "names no labels"),
        ("a = 1\n", "is not a table"),
        ("[a\n", "not valid TOML"),
    ],
)
def test_attribute_file_errors_are_one_line(run_cli, tiny_clip, folder, tmp_path, toml, needle):
    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    attrs = tmp_path / "attrs.toml"
    attrs.write_text(toml)
    r = run_cli("tag", cat, "--attributes", attrs)
    assert r.exit_code == 1 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_other_eyes_are_refused(run_cli, tiny_clip, folder, tmp_path, settings):
    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    meta = json.loads((cat / "catalog.json").read_text())
    meta["eyes_sha256"] = "0" * 64  # as if another model had embedded it
    (cat / "catalog.json").write_text(json.dumps(meta))
    r = run_cli("tag", cat, "--labels", "cat,dog")
    assert r.exit_code == 1 and "a catalog is read only by the eyes that embedded it" in r.stderr


def test_search_by_text_and_by_image(run_cli, tiny_clip, folder, tmp_path):
    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    r = run_cli("search", cat, "--like", folder / "coffee.png", "--top", "2", "--json")
    assert r.exit_code == 0, r.output
    hits = [json.loads(x) for x in r.stdout.splitlines()]
    assert hits[0]["image"].endswith("coffee.png") and hits[0]["score"] == pytest.approx(
        1.0, abs=1e-4
    )
    r = run_cli("search", cat, "a cat", "--top", "3")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
    assert run_cli("search", cat).exit_code == 1  # neither TEXT nor --like


def test_a_killed_index_keeps_every_finished_batch(tiny_clip, folder, tmp_path, home):
    """SIGKILL mid-run (subprocess): the parts already written stay, the next run adds the rest."""
    import signal
    import subprocess
    import sys
    import time

    cat = tmp_path / "cat"
    env = {**os.environ, "OVISION_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "offline_vision", "index", str(folder), "--out", str(cat), "--batch-size", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and len(list((cat / "parts").glob("*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(Catalog.open(cat).rows().paths)
    assert 2 <= kept <= 6
    r = subprocess.run(
        [sys.executable, "-m", "offline_vision", "index", str(folder), "--out", str(cat), "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    done = json.loads(r.stdout)
    assert done["added"] == 6 - kept and done["unchanged"] == kept


def test_tag_with_examples_reuses_the_catalogs_embeddings(
    run_cli, tiny_clip, folder, tmp_path, settings
):
    """Examples the catalog holds are not embedded again; the tags are classify's with the same
    examples; a group's examples are named GROUP=SOURCE where there are several groups."""
    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    shots = tmp_path / "shots"
    for label, names in (("cat", ("chelsea.png", "cifar0.png")), ("cup", ("coffee.png",))):
        (shots / label).mkdir(parents=True)
        for n in names:
            shutil.copy(folder / n, shots / label / n)
    r = run_cli("tag", cat, "--labels", "cat,cup,rocket", "--examples", shots)
    assert r.exit_code == 0, r.output
    assert "examples: 3 images for 2 of 3 labels" in r.stderr
    assert not (settings.cache_dir / "examples").exists()  # all three came from the catalog
    tagged = {
        os.path.basename(x["image"]): x["labels"][0] for x in map(json.loads, r.stdout.splitlines())
    }
    c = run_cli("classify", folder, "--labels", "cat,cup,rocket", "--examples", shots, "--json")
    for x in map(json.loads, c.stdout.splitlines()):
        top = tagged[os.path.basename(x["image"])]
        assert top["label"] == x["labels"][0]["label"]
        assert top["score"] == pytest.approx(x["labels"][0]["probability"], abs=1e-4)
    two = ["--labels", "kind=cat,cup,rocket", "--labels", "scene=indoor,outdoor"]
    r = run_cli("tag", cat, *two, "--examples", shots)
    assert r.exit_code != 0 and "name its group, one of kind, scene" in r.stderr
    r = run_cli("tag", cat, *two, "--examples", f"kind={shots}")
    assert r.exit_code == 0, r.output


def test_a_float16_catalog_tags_as_the_float32_one(run_cli, tiny_clip, folder, tmp_path):
    """Half the bytes per stored embedding; the same top labels, scores within float16's
    precision; a catalog keeps the type it was made with (another: one line)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    full, half = tmp_path / "f32", tmp_path / "f16"
    _index(run_cli, folder, full)
    r = run_cli("index", folder, "--out", half, "--store", "float16", "--json")
    assert r.exit_code == 0, r.output
    field = ds.dataset(half / "parts", format="parquet").schema.field("embedding")
    assert field.type.value_type == pa.float16()
    tags = {}
    for cat in (full, half):
        r = run_cli("tag", cat, "--labels", "cat,dog,car,coffee")
        tags[cat] = {x["image"]: x["labels"][0] for x in map(json.loads, r.stdout.splitlines())}
    for path, top in tags[full].items():
        assert tags[half][path]["label"] == top["label"]
        assert tags[half][path]["score"] == pytest.approx(top["score"], abs=2e-3)
    r = run_cli("index", folder, "--out", half, "--store", "float32")
    assert r.exit_code != 0 and "stores float16 embeddings" in r.stderr


def test_the_python_api_indexes_tags_and_searches_as_the_cli(
    run_cli, tiny_clip, folder, tmp_path, settings
):
    import offline_vision as ov

    counts = ov.index([folder], tmp_path / "api", settings=settings)
    assert (counts["added"], counts["failed"]) == (6, 0)
    cli = tmp_path / "cli"
    _index(run_cli, folder, cli)
    r = run_cli("tag", cli, "--labels", "kind=cat,dog,car,coffee")
    want = [json.loads(x) for x in r.stdout.splitlines()]
    got = ov.tag(tmp_path / "api", {"kind": "cat,dog,car,coffee"}, settings=settings)
    assert [x["kind"][0]["label"] for x in got] == [x["kind"][0]["label"] for x in want]
    r = run_cli("tag", cli, "--labels", "kind=cat,dog,car,coffee", "--multi", "kind")
    want = [json.loads(x)["kind"] for x in r.stdout.splitlines()]
    got = ov.tag(
        tmp_path / "api", {"kind": "cat,dog,car,coffee"}, multi=["kind"], settings=settings
    )
    assert [x["kind"] for x in got] == want
    hits = ov.search(tmp_path / "api", "a photo of a cat", top=3, settings=settings)
    r = run_cli("search", cli, "a photo of a cat", "--top", "3", "--json")
    assert [h["image"] for h in hits] == [json.loads(x)["image"] for x in r.stdout.splitlines()]
    assert ov.search(tmp_path / "api", like=folder / "chelsea.png", top=1, settings=settings)
    with pytest.raises(Exception, match="a text or an image"):
        ov.search(tmp_path / "api", settings=settings)


def _multi_world(tmp_path, n=60, seed=0):
    """A catalog of `n` images, each holding one or two of six attributes (an axis each, with
    a little noise), and eyes whose label texts are those axes."""
    from fakes import FakeScorer

    rng = np.random.default_rng(seed)
    names = [f"attr{j}" for j in range(6)]
    truth = np.zeros((n, 6), bool)
    for i in range(n):
        truth[i, rng.choice(6, rng.integers(1, 3), replace=False)] = True
    emb = truth + rng.normal(0, 0.1, (n, 8))[:, :6]
    emb = np.hstack([emb, np.zeros((n, 2))])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    eyes = FakeScorer(lambda t: np.eye(8)[names.index(t)], lambda im: im)
    cat = Catalog.open(tmp_path / "cat", eyes, create=True)
    cat.append({"path": [f"/img{i}.png" for i in range(n)], "size": [1] * n,
                "mtime_ns": [1] * n, "sha256": [f"{i:064x}" for i in range(n)],
                "removed": [False] * n, "embedding": list(emb)})  # fmt: skip
    return cat, eyes, names, truth


def test_a_multi_label_group_gives_each_image_its_attributes(tmp_path):
    from offline_vision.catalog.tag import Tagger
    from offline_vision.labels.plan import plan_of
    from offline_vision.labels.sets import LabelSet

    cat, eyes, names, truth = _multi_world(tmp_path)
    plan = plan_of(LabelSet("custom", tuple(names)), ("{}",))
    tagger = Tagger(cat, {"attrs": plan, "one": plan}, eyes, multi=["attrs"])
    rows = list(tagger.rows())
    got = np.array([[n in {t["label"] for t in r["attrs"]} for n in names] for r in rows])
    precision, recall = (got & truth).sum() / got.sum(), (got & truth).sum() / truth.sum()
    top_only = truth.sum(1).size / truth.sum()  # a right top label per image, at best
    assert precision > 0.95 and recall > top_only + 0.15 and (got.sum(1) == 2).sum() > 15
    assert all(len(r["one"]) == 1 for r in rows)  # the single-label group: its top one
    assert all(r["attrs"][0]["label"] == r["one"][0]["label"] for r in rows)  # top first
    rule = tagger.rules["attrs"]
    assert rule["rule"].startswith("z >= 1.25") and set(rule["mean"]) == set(names)
    emb = np.stack(cat.rows().embeddings)
    assert rule["mean"]["attr0"] == pytest.approx(emb[:, 0].mean(), abs=1e-5)


def test_multi_label_through_the_command(run_cli, tiny_clip, folder, tmp_path):
    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    attrs = tmp_path / "attrs.toml"
    attrs.write_text('[kind]\nlabels = ["cat", "cup", "rocket"]\nmulti = true\n')
    out = tmp_path / "tags.csv"
    r = run_cli("tag", cat, "--attributes", attrs, "--labels", "scene=indoor,outdoor",
                "--multi", "scene", "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    record = json.loads(out.with_name("tags.csv.plans.json").read_text())
    assert set(record["plans"]) == {"kind", "scene"} and set(record["multi"]) == {"kind", "scene"}
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and all(
        set(r["kind"].split("|")) <= {"cat", "cup", "rocket"} for r in rows
    )
    assert len(rows[0]["kind_score"].split("|")) == len(rows[0]["kind"].split("|"))
    r = run_cli("tag", cat, "--labels", "a|b,c", "--multi", "labels", "--out", out)
    assert r.exit_code == 1 and "holds '|'" in r.stderr
    r = run_cli("tag", cat, "--labels", "a,b", "--multi", "colour")
    assert r.exit_code == 1 and "--multi colour: not a group here" in r.stderr
    attrs.write_text('[kind]\nlabels = ["cat"]\nmulti = "yes"\n')
    r = run_cli("tag", cat, "--attributes", attrs)
    assert r.exit_code == 1 and "multi is true or false" in r.stderr


def test_search_writes_one_page_of_thumbnails(run_cli, tiny_clip, folder, tmp_path):
    shutil.copy(folder / "coffee.png", folder / "<b>cup&.png")  # a name that is markup
    cat = tmp_path / "cat"
    _index(run_cli, folder, cat)
    (folder / "rocket.jpg").unlink()  # gone since it was indexed: a row, no thumbnail
    out = tmp_path / "hits.html"
    r = run_cli("search", cat, '"a <cup>', "--top", "7", "--html", out, "--json")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 7  # the JSON lines still on stdout
    page = out.read_text()
    assert page.count("<figure>") == 7 and page.count('src="data:image/jpeg;base64,') == 6
    assert "not readable now" in page and "&lt;b&gt;cup&amp;.png" in page
    assert "<b>" not in page and "<script" not in page and "&quot;a &lt;cup&gt;" in page
    r = run_cli("search", cat, "cup", "--html", tmp_path / "hits.txt")
    assert r.exit_code == 1 and "give an .html file" in r.stderr


FASHION = {"ワンピース": "dress", "ブラウス": "blouse", "スカート": "skirt"}
FASHION |= {"赤": "red", "紺": "navy", "白": "white"}


def test_every_line_of_the_readmes_catalog_workflow_runs(
    run_cli, tiny_clip, folder, tmp_path, monkeypatch
):
    """The README's catalog block, line by line: its folders made real, the bridge's reasoner a
    server on 127.0.0.1 that knows the Japanese labels."""
    import re
    import shlex
    from pathlib import Path

    from fakes import ChatServer
    from test_bridge import _asked, _shaped, is_domain

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## A catalog: embed once, tag many times", 1)[1].split("```bash\n")[1]
    lines = [line.split("  #")[0] for line in block.split("```")[0].splitlines()]
    assert 4 <= len(lines) <= 15 and [line.split()[1] for line in lines][:2] == ["index", "tag"]
    server = ChatServer(
        lambda body, headers: _shaped(
            {}
            if is_domain(schema := body["response_format"]["json_schema"]["schema"])
            else {k: FASHION[k] for k in _asked(body["messages"])},
            schema,
        )
    )
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(folder, tmp_path / "shop")
    (tmp_path / "groups.toml").write_text(
        '[kind]\nlabels = ["ワンピース", "ブラウス", "スカート"]\nmulti = true\n'
        '[colour]\nlabels = "赤,紺,白"\n'
    )
    try:
        for line in lines:
            args = shlex.split(line)[1:]
            if args[0] == "tag":
                args += ["--reasoner", "openai:m"]
            r = run_cli(*args)
            assert r.exit_code == 0, (line, r.output)
            for out in re.findall(r"--(?:out|html) (\S+)", line):
                assert (tmp_path / out).exists(), line
    finally:
        server.stop()
    assert len(list(csv.DictReader((tmp_path / "tags.csv").open()))) == 6


def test_eyes_with_their_own_sigmoid_tag_every_label_past_one_half(tmp_path):
    from fakes import FakeScorer

    from offline_vision.catalog.tag import Tagger
    from offline_vision.labels.plan import plan_of
    from offline_vision.labels.sets import LabelSet
    from offline_vision.models.scorer import sigmoid

    class SigmoidEyes(FakeScorer):
        score_kind = "sigmoid"

        def scores(self, image_embeddings, label_embeddings):
            return sigmoid(10 * image_embeddings @ label_embeddings.T - 3)

    cat, _eyes, names, truth = _multi_world(tmp_path)
    eyes = SigmoidEyes(lambda t: np.eye(8)[names.index(t)], lambda im: im)
    plan = plan_of(LabelSet("custom", tuple(names)), ("{}",))
    tagger = Tagger(cat, {"attrs": plan}, eyes, multi=["attrs"])
    got = np.array([[n in {t["label"] for t in r["attrs"]} for n in names] for r in tagger.rows()])
    assert (got == truth).all()  # one or two attributes each, every one found, nothing else
    assert tagger.rules == {"attrs": {"rule": "sigmoid >= 0.5 or top"}}


def test_a_new_image_is_read_once_its_hash_and_pixels_from_the_same_bytes(
    tiny_clip, folder, tmp_path, monkeypatch, settings
):
    import builtins
    import hashlib

    from offline_vision.catalog import index as catalog_index
    from offline_vision.models.loader import load_scorer

    eyes = load_scorer(settings, "clip")
    opened: list[str] = []
    real_open = builtins.open

    def counting(file, *args, **kwargs):
        if str(file).startswith(str(folder)):
            opened.append(os.path.basename(str(file)))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    counts = catalog_index.index(sorted(folder.iterdir()), tmp_path / "cat", eyes, workers=1)
    monkeypatch.setattr(builtins, "open", real_open)
    assert counts["added"] == 6
    assert sorted(opened) == sorted(p.name for p in folder.iterdir())  # once each
    rows = Catalog.open(tmp_path / "cat").rows()
    for path, sha in zip(rows.paths, rows.sha256, strict=True):
        with open(path, "rb") as f:
            assert sha == hashlib.sha256(f.read()).hexdigest()
    # A file over the limit is one error line, not read whole.
    monkeypatch.setattr(catalog_index, "MAX_FILE_BYTES", 100)
    image, error, _st, _sha = catalog_index.load(folder / "chelsea.png")
    assert image is None and "over the 100-byte limit for an image" in error
