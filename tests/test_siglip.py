"""SigLIP done right: tiny random SigLIP checkpoints built here (google/siglip's SentencePiece
layout, and SigLIP 2's tokenizer.json one), exported, pulled from the fake hub under hf:
names, imported from a directory, and classified — sigmoid scores equal to transformers'
SiglipModel on the same image and texts, ranked by them, said to be sigmoids in --json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_siglip import build_tiny_siglip

from offline_vision.models.provision import store

REPO, COMMIT = "test-org/Tiny-SigLIP", "c3" * 20
PHOTO = Path("examples/chelsea.png")
LABELS = ["cat", "dog", "ship", "frog"]
TEMPLATE = "A photo of the {}!"  # capitals and punctuation: SiglipTokenizer rewrites both


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("siglip") / "tiny-siglip")


@pytest.fixture(scope="module")
def ckpt_fast(tmp_path_factory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("siglip2") / "tiny-siglip2", fast=True, seed=3)


def _reference_scores(ckpt: Path) -> np.ndarray:
    """transformers' own: SiglipProcessor (max_length padding) and SiglipModel → sigmoid."""
    import torch
    from transformers import AutoTokenizer, SiglipImageProcessor, SiglipModel

    model = SiglipModel.from_pretrained(ckpt).eval()
    if (ckpt / "spiece.model").exists():
        tok = AutoTokenizer.from_pretrained(str(ckpt))
    else:
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast(tokenizer_file=str(ckpt / "tokenizer.json"), pad_token="</s>")
    texts = [TEMPLATE.format(label) for label in LABELS]
    ids = tok(texts, padding="max_length", max_length=16, return_tensors="pt")["input_ids"]
    pixels = SiglipImageProcessor.from_pretrained(str(ckpt))(
        Image.open(PHOTO).convert("RGB"), return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        return torch.sigmoid(model(input_ids=ids, pixel_values=pixels).logits_per_image)[0].numpy()


def _classify(run_cli, name: str) -> dict:
    r = run_cli("classify", str(PHOTO), "--labels", ",".join(LABELS), "--scorer", name,
                "--template", TEMPLATE, "--precision", "fp32", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _check_scores(out: dict, ckpt: Path) -> None:
    assert out["score"] == "sigmoid" and out["scorer"]["scorer"] == "siglip"
    scores = [x["score"] for x in out["labels"]]
    assert scores == sorted(scores, reverse=True)  # ranked by the sigmoid scores
    expected = dict(zip(LABELS, _reference_scores(ckpt), strict=True))
    for item in out["labels"]:
        assert item["score"] == pytest.approx(expected[item["label"]], abs=1e-5)
    assert sum(x["probability"] for x in out["labels"]) == pytest.approx(1, abs=1e-4)
    assert sum(scores) < 0.5  # sigmoids of a bias of -10: not a distribution over the labels


def test_pull_siglip_records_the_commit_and_classifies_as_transformers_does(
    run_cli, settings, fake_hub, ckpt, monkeypatch
):
    files = {f.name: f.read_bytes() for f in ckpt.iterdir()}
    fake_hub.add_repo(REPO, COMMIT, files, branch="main")
    monkeypatch.setenv("OVISION_HUB_URL", fake_hub.url)
    r = run_cli("models", "pull", f"hf:{REPO}")
    assert r.exit_code == 0, r.output
    bundle = store.load(settings.models_dir, "tiny-siglip")
    source, m = bundle.manifest["source"], bundle.manifest
    assert (bundle.kind, source["requested"], source["revision"]) == ("siglip", "main", COMMIT)
    assert source["files"] == {f: hashlib.sha256(b).hexdigest() for f, b in files.items()}
    assert (m["score"], m["logit_scale"], m["logit_bias"]) == ("sigmoid", 10.0, -10.0)
    assert m["text"] == {"context_length": 16, "pad_id": 1, "padding": "max_length"}
    v = m["validation"]
    assert v["tokenizer_texts_equal"] == 12 and v["pixels_max_abs"] < 1e-5
    assert v["sigmoid_scores_max_abs"] < 1e-5
    rows = [json.loads(x) for x in run_cli("models", "list", "--json").stdout.splitlines()]
    row = next(x for x in rows if x["name"] == "tiny-siglip")
    assert (row["kind"], row["revision"], row["precisions"]) == ("siglip", COMMIT, ["fp32", "int8"])
    _check_scores(_classify(run_cli, "tiny-siglip"), ckpt)
    text = run_cli("classify", str(PHOTO), "--labels", "cat,dog", "--scorer", "tiny-siglip")
    assert "sigmoid score" in text.stdout


def test_import_a_siglip2_style_directory_with_a_tokenizer_json(run_cli, settings, ckpt_fast):
    r = run_cli("models", "import", str(ckpt_fast))
    assert r.exit_code == 0, r.output
    assert store.load(settings.models_dir, "tiny-siglip2").kind == "siglip"
    _check_scores(_classify(run_cli, "tiny-siglip2"), ckpt_fast)


def test_the_text_tower_takes_only_full_length_input(settings, run_cli, ckpt):
    """SigLIP reads its text embedding from the last position, so padding to the batch's
    longest embeds the same label differently (checked in transformers itself); the exported
    text graph takes the full context length only, so that cannot happen silently."""
    import onnxruntime as ort
    import torch
    from transformers import AutoTokenizer, SiglipModel

    assert run_cli("models", "import", str(ckpt), "--name", "sg").exit_code == 0
    bundle = store.load(settings.models_dir, "sg")
    for precision in ("fp32", "int8"):
        path = bundle.path / bundle.manifest["onnx"][precision]["text"]
        shape = ort.InferenceSession(str(path)).get_inputs()[0].shape
        assert shape[1] == 16, shape
    model, tok = SiglipModel.from_pretrained(ckpt).eval(), AutoTokenizer.from_pretrained(str(ckpt))
    with torch.no_grad():
        full, short = (
            model.get_text_features(
                input_ids=tok(["a cat"], padding=p, max_length=16, return_tensors="pt").input_ids
            )
            for p in ("max_length", "longest")
        )
    assert float(torch.cosine_similarity(full, short)[0]) < 0.999


def test_siglip_preprocessing_resizes_without_a_crop(ckpt):
    from transformers import SiglipImageProcessor

    from offline_vision.models.preprocess import Preprocess

    pre = Preprocess.from_config(json.loads((ckpt / "preprocessor_config.json").read_text()))
    assert pre.crop is None and pre.out_size == (64, 64)
    wide = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 130, 3), np.uint8))
    theirs = SiglipImageProcessor.from_pretrained(str(ckpt))(wide, return_tensors="np")
    assert np.abs(pre([wide]) - theirs["pixel_values"]).max() < 1e-5


def test_export_command_says_what_it_checked(run_cli, ckpt, tmp_path):
    out = tmp_path / "sg-onnx"
    r = run_cli("export", str(ckpt), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "sigmoid scores vs SiglipModel max-abs" in r.stdout and "tokens equal on 12" in r.stdout
    assert json.loads((out / "manifest.json").read_text())["kind"] == "siglip"
    assert run_cli("models", "import", str(out), "--name", "sg2").exit_code == 0


def test_a_siglip_catalogs_multi_label_group_uses_its_own_sigmoid(
    run_cli, settings, ckpt_fast, tmp_path, data_dir
):
    """SigLIP scores each label on its own: a multi-label group takes every label whose
    sigmoid (the score `classify` shows) is at least one half, and the top one, with the
    same numbers. (This random tower's sigmoids are all small; the half is crossed in
    test_catalog's sigmoid eyes.)"""
    import shutil

    assert run_cli("models", "import", str(ckpt_fast)).exit_code == 0
    shop = tmp_path / "shop"
    shop.mkdir()
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        shutil.copy(data_dir / "photos" / name, shop / name)
    eyes = ["--scorer", "tiny-siglip2", "--precision", "fp32"]
    assert run_cli("index", shop, "--out", tmp_path / "cat", *eyes).exit_code == 0
    out = tmp_path / "tags.jsonl"
    r = run_cli("tag", tmp_path / "cat", "--labels", ",".join(LABELS), "--multi", "labels",
                "--out", out, *eyes)  # fmt: skip
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "tags.jsonl.plans.json").read_text())
    assert record["multi"]["labels"]["rule"].startswith("sigmoid >= 0.5")
    r = run_cli("classify", shop, "--labels", ",".join(LABELS), "--top-k", "4", "--json", *eyes)
    seen = {
        Path(x["image"]).name: {t["label"]: t["score"] for t in x["labels"]}  # the sigmoids
        for x in map(json.loads, r.stdout.splitlines())
    }
    for row in map(json.loads, out.read_text().splitlines()):
        scores = seen[Path(row["image"]).name]
        top = max(scores, key=scores.get)
        assert {t["label"] for t in row["labels"]} == {top} | {
            k for k, v in scores.items() if v >= 0.5
        }
        assert row["labels"][0]["score"] == pytest.approx(scores[top], abs=1e-5)
