"""`ovision classify` end to end on the tiny CLIP: output formats and every bad input."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from offline_vision.models.provision import registry


def test_classify_table_and_json(run_cli, tiny_clip, data_dir):
    photo = data_dir / "photos" / "chelsea.png"
    r = run_cli("classify", photo, "--top-k", "5")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].endswith("chelsea.png") and len(lines) == 6
    probs = [float(line.split("%")[0]) for line in lines[1:]]
    assert probs == sorted(probs, reverse=True)

    r = run_cli(
        "classify", photo, data_dir / "photos" / "coffee.png", "--json", "--labels", "cat,dog,cup"
    )
    assert r.exit_code == 0
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["image"].rsplit("/", 1)[1] for o in objs] == ["chelsea.png", "coffee.png"]
    for o in objs:
        assert {x["label"] for x in o["labels"]} == {"cat", "dog", "cup"}
        assert abs(sum(x["probability"] for x in o["labels"]) - 1) < 1e-4
        assert o["scorer"]["scorer"] == "clip" and o["scorer"]["standin"] is False


def test_classify_directory_with_one_bad_file(run_cli, tiny_clip, tmp_path):
    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.jpg").write_text("not a jpeg")
    r = run_cli("classify", tmp_path, "--labels", "cat,dog", "--json")
    assert r.exit_code == 1
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(objs) == 4 and sum("error" in o for o in objs) == 1
    assert "1 of 4 images could not be classified" in r.stderr


def _one_line_error(r, *needles):
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1, r.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_bad_inputs_give_one_line_errors(run_cli, tiny_clip, tmp_path, data_dir):
    photo = data_dir / "photos" / "chelsea.png"
    _one_line_error(run_cli("classify", tmp_path / "missing.jpg"), "no such file")
    (tmp_path / "empty").mkdir()
    _one_line_error(run_cli("classify", tmp_path / "empty"), "contains no images")
    txt = tmp_path / "text.jpg"
    txt.write_text("hello")
    _one_line_error(run_cli("classify", txt), "not an image")
    zero = tmp_path / "zero.png"
    zero.write_bytes(b"")
    r = run_cli("classify", zero)
    assert r.exit_code == 1 and "empty file" in r.stderr
    _one_line_error(run_cli("classify", photo, "--labels", " , ,"), "empty label list")
    _one_line_error(
        run_cli("classify", photo, "--labels", "@" + str(tmp_path / "nope.txt")),
        "cannot read label file",
    )
    _one_line_error(run_cli("classify", photo, "--template", "no placeholder"), "must contain")


def test_duplicate_and_unicode_labels(run_cli, tiny_clip, data_dir, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("猫\ncafé\n\nchat noir\n", encoding="utf-8")
    r = run_cli("classify", data_dir / "photos" / "chelsea.png", "--labels", f"@{labels}", "--json")
    assert r.exit_code == 0
    got = [x["label"] for x in json.loads(r.stdout)["labels"]]
    assert sorted(got) == sorted(["猫", "café", "chat noir"])
    labels.write_text("猫\ncafé\n猫\n", encoding="utf-8")
    r = run_cli("classify", data_dir / "photos" / "chelsea.png", "--labels", f"@{labels}")
    _one_line_error(r, "label '猫' is given twice")


def test_model_not_provisioned_names_the_command(run_cli, home, data_dir):
    r = run_cli("classify", data_dir / "photos" / "chelsea.png", "--scorer", "clip")
    _one_line_error(r, f"ovision models pull {registry.CLIP}", "ovision models import")
    r = run_cli("classify", data_dir / "photos" / "chelsea.png")
    _one_line_error(r, "ovision models pull")


def test_tampered_model_file_is_refused(run_cli, tiny_clip, data_dir):
    target = tiny_clip.path / "vision_model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    r = run_cli("classify", data_dir / "photos" / "chelsea.png", "--labels", "cat,dog")
    _one_line_error(r, "vision_model.onnx", "does not match")
    r = run_cli("models", "verify", registry.CLIP)
    assert r.exit_code == 1 and "sha256 mismatch" in r.stdout


def test_corrupt_onnx_with_matching_manifest_is_one_line(run_cli, settings, tiny_export, data_dir):
    from offline_vision.models.provision import store

    files, meta = tiny_export
    bad = settings.home / "garbage.onnx"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    store.install(
        settings.models_dir, registry.CLIP, "clip", {**files, "vision_model.onnx": bad}, meta
    )
    r = run_cli(
        "classify",
        data_dir / "photos" / "chelsea.png",
        "--labels",
        "cat,dog",
        "--precision",
        "fp32",
    )
    _one_line_error(r, "not a loadable ONNX model")


def test_cuda_without_gpu_falls_back_with_warning(run_cli, tiny_clip, data_dir):
    r = run_cli(
        "classify", data_dir / "photos" / "chelsea.png", "--labels", "cat,dog", "--device", "cuda"
    )
    assert r.exit_code == 0
    assert "running on the CPU" in r.stderr or "using the CPU" in r.stderr
