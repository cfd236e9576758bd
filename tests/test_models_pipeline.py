"""End to end on the real default models (marked `models`): what a fresh machine gets from
`ovision models pull` classifies, reads digits and holds a dialogue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline_vision.labels.sets import CIFAR10

pytestmark = pytest.mark.models

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chelsea.png"
CAT_LABELS = {"tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian Mau"}


def test_classify_example_photo_with_conse(run_cli_real):
    r = run_cli_real("classify", EXAMPLE, "--scorer", "conse", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    top = [x["label"] for x in out["labels"]]
    assert len(top) == 5 and set(top[:3]) & CAT_LABELS, top
    assert out["scorer"]["scorer"] == "conse" and out["scorer"]["standin"] is True


def test_conse_zero_shot_on_cifar10(run_cli_real, tmp_path):
    r = run_cli_real(
        "eval",
        "clip",
        "--scorer",
        "conse",
        "--dataset",
        "cifar10",
        "--sample",
        "cifar10-300",
        "--limit",
        "100",
        "--out",
        tmp_path / "t1",
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "t1" / "summary.json").read_text())
    assert s["accuracy"] >= 0.5, s["accuracy"]  # chance is 0.1; all 932 images give ≈ 0.64


def test_pixels_retrieved_reads_a_digit(run_cli_real, tmp_path):
    r = run_cli_real(
        "eval",
        "pixels",
        "--strategy",
        "retrieved",
        "--limit",
        "5",
        "--reasoner",
        "local:qwen2.5-coder-0.5b-instruct-q4_k_m",
        "--out",
        tmp_path / "px",
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "px" / "summary.json").read_text())
    assert s["n"] == 5 and s["accuracy"] >= 0.6


def test_dialogue_on_a_cifar_image(run_cli_real, real_settings):
    photo = real_settings.data_dir / "cifar10" / "test" / "ship" / "00001.png"
    r = run_cli_real(
        "dialogue",
        photo,
        "--rounds",
        "2",
        "--trust",
        "1",  # always ask the LLM, however sure the eyes are
        "--scorer",
        "conse",
        "--json",
        "--reasoner",
        "local:qwen2.5-coder-0.5b-instruct-q4_k_m",
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["answer"]["label"] in CIFAR10
    assert 1 <= len(d["rounds"]) <= 2 and all(len(x["candidates"]) >= 2 for x in d["rounds"])


def test_classify_with_descriptions_from_the_default_llm(run_cli_real):
    """The issue's command: descriptions written once per label set, then read from the cache."""
    args = ("classify", EXAMPLE, "--labels", "cifar10", "--knowledge", "descriptions")
    r = run_cli_real(*args, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["knowledge"]["strategy"] == "descriptions" and len(out["labels"]) == 5
    assert {x["label"] for x in out["labels"]} <= set(CIFAR10)
    r = run_cli_real("labels", "expand", "--labels", "cifar10", "--strategy", "descriptions")
    assert r.exit_code == 0 and "from the cache" in r.stdout, r.output
    again = json.loads(run_cli_real(*args, "--json").stdout)
    assert again == out


def test_japanese_labels_are_bridged_by_the_default_llm(real_settings, tmp_path):
    """The bridge issue's command, with a fresh cache (the real models, linked in): the default
    1.5B names the labels, 猫 comes first, one line says so; the second run reads the cache."""
    from click.testing import CliRunner

    from offline_vision.cli import cli

    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(real_settings.models_dir)
    env = {"OVISION_HOME": str(home), "OVISION_DATA": str(real_settings.data_dir)}
    args = ["classify", str(EXAMPLE), "--labels", "飛行機,自動車,鳥,猫,鹿,犬,カエル,馬,船,トラック"]
    for source in ("written by local:", "from the cache"):
        r = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        said = [line for line in r.stderr.splitlines() if "bridged to English names" in line]
        assert len(said) == 1 and source in said[0], r.stderr
        assert r.stdout.splitlines()[1].split()[1] == "猫", r.stdout  # the user's label, first
