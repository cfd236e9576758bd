"""Eyes of the user's choosing: any CLIPModel checkpoint pulled from a (fake) hub by
`hf:ORG/NAME[@REVISION]`, its commit recorded, then used by `--scorer NAME`."""

from __future__ import annotations

import hashlib
import json

import pytest
from tiny_clip import build_tiny_clip

from offline_vision.models.provision import store

FILES = ("config.json", "preprocessor_config.json", "tokenizer.json", "model.safetensors")
REPO = "test-org/Tiny-CLIP-48"
FIRST, SECOND = "a1" * 20, "b2" * 20  # two commits of the repository


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two tiny CLIPs of another width than the default test CLIP's: {file: bytes} each."""
    out = []
    for seed in (1, 2):
        d = build_tiny_clip(tmp_path_factory.mktemp(f"ckpt{seed}"), seed=seed, width=48)
        out.append({f: (d / f).read_bytes() for f in FILES})
    return out


@pytest.fixture
def hub(fake_hub, checkpoints, monkeypatch):
    fake_hub.add_repo(REPO, FIRST, checkpoints[0], branch="main")
    monkeypatch.setenv("OVISION_HUB_URL", fake_hub.url)
    return fake_hub


def _source(settings, name) -> dict:
    return store.load(settings.models_dir, name).manifest["source"]


def test_pull_records_the_commit_main_named_and_every_file(run_cli, settings, hub, checkpoints):
    r = run_cli("models", "pull", f"hf:{REPO}")
    assert r.exit_code == 0, r.output
    assert "tiny-clip-48: installed at" in r.stdout and FIRST[:12] in r.stdout
    source = _source(settings, "tiny-clip-48")
    assert (source["repo"], source["requested"], source["revision"]) == (REPO, "main", FIRST)
    assert source["files"] == {f: hashlib.sha256(checkpoints[0][f]).hexdigest() for f in FILES}
    rows = [json.loads(x) for x in run_cli("models", "list", "--json").stdout.splitlines()]
    row = next(x for x in rows if x["name"] == "tiny-clip-48")
    assert (row["kind"], row["installed"], row["revision"]) == ("clip", True, FIRST)
    assert row["precisions"] == ["fp32", "int8"] and row["source"] == REPO
    text = run_cli("models", "list").stdout
    assert "tiny-clip-48  [clip]  installed" in text and f"from {REPO}@{FIRST}" in text
    # the pulled CLIP is the eyes: nothing else is installed in this home
    r = run_cli("classify", "examples/chelsea.png", "--labels", "cat,dog", "--scorer",
                "tiny-clip-48", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {x["label"] for x in out["labels"]} == {"cat", "dog"}
    assert out["scorer"]["scorer"] == "clip" and out["scorer"]["model"] == "tiny-clip-48"
    assert run_cli("classify", "examples/chelsea.png", "--scorer", "auto").exit_code == 1


def test_main_moving_between_pulls_gives_two_recorded_revisions(
    run_cli, settings, hub, checkpoints
):
    assert run_cli("models", "pull", f"hf:{REPO}").exit_code == 0
    hub.add_repo(REPO, SECOND, checkpoints[1], branch="main")  # a new commit on main
    assert run_cli("models", "pull", f"hf:{REPO}", "--name", "tiny-next").exit_code == 0
    assert _source(settings, "tiny-clip-48")["revision"] == FIRST
    assert _source(settings, "tiny-next")["revision"] == SECOND
    # a pinned pull takes the commit named, wherever main is now
    r = run_cli("models", "pull", f"hf:{REPO}@{FIRST}", "--name", "tiny-pinned")
    assert r.exit_code == 0, r.output
    pinned = _source(settings, "tiny-pinned")
    assert (pinned["requested"], pinned["revision"]) == (FIRST, FIRST)
    assert pinned["files"] == _source(settings, "tiny-clip-48")["files"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["models", "pull", "hf:no-slash"], "is not hf:ORG/NAME"),
        (["models", "pull", "hf:test-org/absent"], "HTTP 404"),
        (["models", "pull", f"hf:{REPO}", "--name", "clip-vit-base-patch32"], "taken by"),
        (["models", "pull", "conse-effnetlite2-minilm", "--name", "x"], "--name goes with"),
        (["models", "pull", "hf:test-org/siglip"], "neither tokenizer.json nor spiece.model"),
        (["models", "pull", "hf:test-org/naflex"], "SigLIP 2 NaFlex"),
        (["classify", "examples/chelsea.png", "--scorer", "nope"], "unknown scorer 'nope'"),
    ],
)
def test_bad_pulls_and_scorers_are_one_line(run_cli, home, hub, args, expected):
    siglip = {"config.json": b'{"model_type": "siglip"}', "model.safetensors": b"x"}
    hub.add_repo("test-org/siglip", FIRST, siglip, branch="main")
    hub.add_repo(
        "test-org/naflex", FIRST, {"config.json": b'{"model_type": "siglip2"}'}, branch="main"
    )
    r = run_cli(*args)
    assert r.exit_code != 0 and expected in r.stderr, r.output
    said = [x for x in r.stderr.splitlines() if not x.endswith("pulling…")]  # progress aside
    assert "Traceback" not in r.output and len(said) == 1


def test_pre_exported_towers_pull_without_the_export_extra(
    run_cli, settings, hub, tiny_export, tiny_clip, monkeypatch
):
    """A repository with onnx/vision_model*.onnx + onnx/text_model*.onnx (transformers.js's
    layout) installs with no torch: both precisions, the commit recorded, and it ranks as the
    same towers exported here do. A SigLIP repository is refused in one line (its scores need
    logit_scale and logit_bias, which pre-exported towers do not carry)."""
    from offline_vision.models.provision import hf

    files, _ = tiny_export
    layout = {f: files[f].read_bytes() for f in ("tokenizer.json", "preprocessor_config.json")}
    layout["config.json"] = files["config.json"].read_bytes()
    for tower in ("vision_model", "text_model"):
        layout[f"onnx/{tower}.onnx"] = files[f"{tower}.onnx"].read_bytes()
        layout[f"onnx/{tower}_quantized.onnx"] = files[f"{tower}.int8.onnx"].read_bytes()
    hub.add_repo("test-org/clip-onnx", FIRST, layout, branch="main")
    monkeypatch.setattr(hf, "have_export_extra", lambda: False)
    r = run_cli("models", "pull", "hf:test-org/clip-onnx")
    assert r.exit_code == 0, r.output
    m = store.load(settings.models_dir, "clip-onnx").manifest
    assert (m["source"]["type"], m["source"]["revision"]) == ("hub-onnx", FIRST)
    assert set(m["source"]["files"]) == set(layout) and set(m["onnx"]) == {"fp32", "int8"}
    ranked = []
    for scorer in ("clip-onnx", "clip"):
        r = run_cli("classify", "examples/chelsea.png", "--labels", "cat,dog,ship,frog",
                    "--scorer", scorer, "--precision", "fp32", "--json")  # fmt: skip
        assert r.exit_code == 0, r.output
        ranked.append([x["label"] for x in json.loads(r.stdout)["labels"]])
    assert ranked[0] == ranked[1]
    hub.add_repo("test-org/siglip-onnx", FIRST, {"config.json": b'{"model_type": "siglip"}'})
    hub.branches["test-org/siglip-onnx"] = {"main": FIRST}
    r = run_cli("models", "pull", "hf:test-org/siglip-onnx")
    assert r.exit_code == 1 and "needs the export extra" in r.stderr and "Traceback" not in r.output
