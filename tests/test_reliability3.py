"""Reliability, round three (issue 40): every file written through `files`, labels that cannot
crash a local model's grammar, labels normalised once, escaped terminal output, and the cases
that are not one-line errors. Each failed on 965a073 (the one-line cases are HOSTILE rows in
test_security.py)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_security import _run_dir

import offline_vision
from offline_vision.commands.labels import _conflict
from offline_vision.errors import BadInput
from offline_vision.labels.sets import parse_labels, parse_list

ROOT = Path(__file__).resolve().parents[1]


def _ovision(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "offline_vision", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        **kw,
    )


def test_every_file_the_package_writes_goes_through_files():
    """No write_text, write_bytes, savefig to a path, or open(…, "w"/"a"/"x") outside
    offline_vision/files.py: one place refuses links and non-regular files."""
    found = []
    for path in Path(offline_vision.__file__).parent.rglob("*.py"):
        if path.name == "files.py" and path.parent.name == "offline_vision":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
            modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]  # fmt: skip
            to_buffer = name == "savefig" and node.args and isinstance(node.args[0], ast.Name)
            writes = name in ("write_text", "write_bytes") or (
                name == "open"
                and not (isinstance(f, ast.Attribute) and getattr(f.value, "id", "") == "tarfile")
                and any(isinstance(m, str) and m[:1] in "wax" for m in modes)
            )
            if writes or (name == "savefig" and not (to_buffer and node.args[0].id == "buf")):
                found.append(f"{path.name}:{node.lineno} {name}")
    assert found == []


def test_report_out_never_writes_through_a_link(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    out = tmp_path / "rep"
    out.mkdir()
    (out / "runs.md").symlink_to(outside)
    r = _ovision("report", _run_dir(tmp_path, b""), "--out", out)
    assert r.returncode == 0, r.stderr
    assert outside.read_text() == "keep me\n"  # untouched
    assert not (out / "runs.md").is_symlink() and "accuracy" in (out / "runs.md").read_text()


def test_a_closed_pipe_is_not_an_error():
    r = subprocess.run(
        f"{sys.executable} -m offline_vision models list | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert "Error" not in r.stderr and "Broken pipe" not in r.stderr, r.stderr


def test_an_answers_terminal_escapes_are_shown_not_sent(run_cli, home):
    from fakes import ChatServer

    server = ChatServer(lambda body, headers: "\x1b]0;owned\x07hi\x1b[2J\nthere")
    try:
        r = run_cli("ask", "hi", "--reasoner", "openai:m", "--base-url", server.url)
    finally:
        server.stop()
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert r.stdout.splitlines() == ["\\x1b]0;owned\\x07hi\\x1b[2J", "there"]


def test_labels_expand_prints_every_kind_of_settled_problem():
    """`labels expand` died with KeyError 'renamed' on a clash kept by one label or on a
    re-asked unreadable name."""
    lines = [
        _conflict({"name": "dog", "labels": ["pooch", "hound"], "kept_by": "pooch"}),
        _conflict({"name": "cat", "labels": ["a", "b"], "renamed": {"a": "cat", "b": "kitten"}}),
        _conflict({"unreadable": "moggy", "label": "猫", "now": "cat"}),
    ]
    assert lines == [
        "clash: pooch, hound were all 'dog' (kept by pooch)",
        "clash: a, b were all 'cat' (asked again: a→cat, b→kitten)",
        "unreadable: 猫 was 'moggy', now 'cat'",
    ]


def test_labels_are_normalised_once_wherever_they_come_from(tmp_path):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    with pytest.raises(BadInput, match="is given twice"):  # one label after NFC: refused
        parse_labels(f"{composed},{decomposed}")
    f = tmp_path / "labels.txt"
    f.write_bytes("\ufeffcat\r\ndog\r\n".encode())
    assert parse_labels(f"@{f}").labels == ("cat", "dog")  # no BOM, no CR
    assert parse_list(["\ufeffcat", decomposed]).labels == ("cat", composed)
    with pytest.raises(BadInput, match="is given twice"):
        parse_list([composed, decomposed])
    for hidden in ("d\u202eog", "c\u200bat", "ca\u2066t"):
        with pytest.raises(BadInput, match="invisible characters"):
            parse_labels(f"cat,{hidden}")


def test_a_label_with_a_quote_never_crashes_the_local_bridge(tmp_path, home, tiny_clip):
    """`犬"` became a grammar key and llama.cpp died with SIGSEGV: now the bridge cannot run,
    says so in one line, and the labels are read as written (tiny CLIP, tiny GGUF)."""
    from tiny_gguf import CHATML, write_gguf

    gguf = write_gguf(tmp_path / "tiny.gguf", CHATML)
    r = _ovision(
        "classify", "examples/chelsea.png", "--labels", '猫,犬",車', "--reasoner", f"local:{gguf}",
        "--json", env={"OVISION_HOME": str(home)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr  # no signal death (it was -11)
    assert {x["label"] for x in json.loads(r.stdout)["labels"]} == {"猫", '犬"', "車"}
    said = [x for x in r.stderr.splitlines() if "unfamiliar" in x]
    assert len(said) == 1 and "no reasoner could bridge them" in said[0] and "quote" in said[0]
    assert "Traceback" not in r.stderr


def test_only_the_formats_meant_are_read_and_a_big_image_is_kept_small(tmp_path):
    """A PostScript file named .jpg went to Ghostscript where `gs` is installed; a 9000 × 9000
    PNG was kept whole in the batch (16 of them: 5.4 GB)."""
    from PIL import Image

    from offline_vision.errors import BadImage
    from offline_vision.images import MAX_SIDE, load_image

    ps = tmp_path / "photo.jpg"
    ps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(BadImage, match="not an image in a format read here"):
        load_image(ps)
    big = tmp_path / "big.png"
    Image.new("RGB", (4000, 2000), (200, 30, 30)).save(big)
    jpg = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 2000), (30, 200, 30)).save(jpg, quality=90)
    for p in (big, jpg):
        img = load_image(p)
        assert max(img.size) <= MAX_SIDE and img.size[0] == 2 * img.size[1]  # aspect kept


@pytest.mark.parametrize("damage", ["garbage", "locked"])
def test_a_broken_embedding_cache_is_bypassed_and_the_run_goes_on(tmp_path, damage, caplog):
    """A corrupt or locked text_embeddings.sqlite broke every run: now one warning, and the
    embeddings are kept in memory as if there were no cache file."""
    import sqlite3

    import numpy as np

    from offline_vision.models.scorer import TextCache

    path = tmp_path / "text_embeddings.sqlite"
    holder = None
    if damage == "garbage":
        path.write_bytes(b"not a database" * 100)
    else:
        TextCache(path)
        holder = sqlite3.connect(path)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds it
    try:
        cache = TextCache(path)
        cache.put_many("m", {("{}", "cat"): np.ones(3, np.float32)})
        got = cache.get_many("m", [("{}", "cat")])
    finally:
        if holder is not None:
            holder.close()
    warned = [r for r in caplog.records if "embedding cache" in r.getMessage()]
    assert len(warned) == 1 and "caching in memory only" in warned[0].getMessage()
    assert list(got) == [("{}", "cat")]  # kept in memory


@pytest.fixture
def endless():
    """A server on 127.0.0.1 whose body never ends (at most 64 MB, then it stops) or trickles
    a byte every 0.2 s (at most 10 s), as the path asks."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.do_GET()

        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            try:
                if self.path.startswith("/flood"):
                    for _ in range(1024):
                        self.wfile.write(b"x" * 65536)
                else:
                    for _ in range(50):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.2)
            except OSError:
                pass  # the client gave up: that is the point

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_download_is_bounded_in_bytes_and_in_time(endless, tmp_path, monkeypatch):
    """An endless body filled the disk, a trickle was never given up (timeouts were per read)."""
    import time

    import httpx

    from offline_vision.errors import DownloadError
    from offline_vision.models.provision.download import download

    monkeypatch.setenv("OVISION_MAX_DOWNLOAD_BYTES", "1000000")
    monkeypatch.setenv("OVISION_DOWNLOAD_DEADLINE_S", "1")
    with httpx.Client() as client:
        with pytest.raises(DownloadError, match="sent more than 1,000,000 bytes"):
            download(client, f"{endless}/flood", tmp_path / "config.json")
        assert not (tmp_path / "config.json.part").exists()  # nothing of it kept
        t = time.monotonic()
        with pytest.raises(DownloadError, match="gave up after 1 s"):
            download(client, f"{endless}/trickle", tmp_path / "tokenizer.json")
        assert time.monotonic() - t < 5
        assert (tmp_path / "tokenizer.json.part").stat().st_size > 0  # kept: a pull resumes it


def test_a_hosted_answer_is_bounded_in_bytes_and_in_time(endless, monkeypatch):
    from offline_vision.errors import ReasonerError
    from offline_vision.models.reasoners.openai_compat import OpenAICompatReasoner

    monkeypatch.setattr("offline_vision.models.reasoners.openai_compat.MAX_ANSWER_BYTES", 10**6)
    monkeypatch.setenv("OVISION_ANSWER_DEADLINE_S", "1")
    ask = [{"role": "user", "content": "hi"}]
    with pytest.raises(ReasonerError, match="over 1,000,000 bytes"):
        OpenAICompatReasoner("m", base_url=f"{endless}/flood").complete(ask)
    with pytest.raises(ReasonerError, match=r"no whole answer .* in 1 s"):
        OpenAICompatReasoner("m", base_url=f"{endless}/trickle").complete(ask)


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        (
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "ran past",
        ),
        ("{% for a in range(2000) %}{{ 'x' * 2000 }}{% endfor %}", "wrote over"),
        ("{{ messages | tojson(indent=100000000) }}", None),  # capped: renders, small
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recurses without end"),
        ("{% for m in messages %}{{ m.content }", "does not parse"),  # a syntax error
    ],
)
def test_a_chat_templates_rendering_is_bounded(tmp_path, monkeypatch, template, needle):
    """Nested loops rendered for ever; tojson(indent=100000000) allocated 5.4 GB; a macro
    calling itself and a syntax error were tracebacks."""
    from tiny_gguf import write_gguf

    from offline_vision.errors import OVisionError
    from offline_vision.models.reasoners import grammar
    from offline_vision.models.reasoners.llama_cpp import LlamaCppReasoner

    monkeypatch.setattr(grammar, "RENDER_SECONDS", 1.0)
    r = LlamaCppReasoner(write_gguf(tmp_path / "t.gguf", template), name="t", n_ctx=512)
    ask = [{"role": "user", "content": "hi"}]
    if needle is None:
        assert len(r.prompt(ask)) < 1000
        return
    with pytest.raises(OVisionError, match=needle):  # one line at the CLI's edge
        r.prompt(ask)


def test_a_hubs_file_list_is_bounded_and_checked(monkeypatch):
    """A 2,000,000-entry listing took 1.5 GB; a size that is a string or negative was taken."""
    import httpx

    from offline_vision.errors import DownloadError
    from offline_vision.models.provision import hub

    def listing(sizes):
        siblings = [{"rfilename": f"f{i}", "size": s} for i, s in enumerate(sizes)]
        body = json.dumps({"sha": "a" * 40, "siblings": siblings}).encode()
        return httpx.Client(
            transport=httpx.MockTransport(lambda req: httpx.Response(200, content=body))
        )

    for bad in ("12", -5):
        with pytest.raises(DownloadError, match="no file list"):
            hub.list_files(listing([10, bad]), "http://127.0.0.1:9", "o/m", "main")
    monkeypatch.setattr(hub, "MAX_LISTING_BYTES", 1000)
    with pytest.raises(DownloadError, match="file list of o/m is over 1,000 bytes"):
        hub.list_files(listing(range(200)), "http://127.0.0.1:9", "o/m", "main")
    assert hub.list_files(listing([10]), "http://127.0.0.1:9", "o/m", "main")["f0"].size == 10


DEEP = "[" * 100_000 + "]" * 100_000  # nested past Python's recursion limit


@pytest.mark.parametrize(
    "reply",
    [
        lambda body, headers: (200, {}, DEEP.encode()),  # the response body itself
        lambda body, headers: DEEP,  # the assistant's content, asked for JSON
    ],
)
def test_a_hosted_answer_nested_past_the_recursion_limit_is_one_line(run_cli, home, reply):
    from fakes import ChatServer

    server = ChatServer(reply)
    try:
        args = ["ask", "hi", "--reasoner", "openai:m", "--base-url", server.url]
        r = run_cli(*args, "--schema", _schema_file(home))
    finally:
        server.stop()
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert len([x for x in r.stderr.splitlines() if x.strip()]) == 1, r.stderr
    assert not isinstance(r.exception, RecursionError)


def _schema_file(home) -> str:
    path = home.parent / "schema.json"
    path.write_text('{"type": "object"}')
    return str(path)


def test_a_checkpoints_json_nested_past_the_recursion_limit_is_one_line(tmp_path):
    from offline_vision.errors import ExportError
    from offline_vision.export.checks import json_object

    (tmp_path / "config.json").write_text(DEEP)
    with pytest.raises(ExportError, match="nested too deeply"):
        json_object(tmp_path / "config.json")


def test_two_runs_named_alike_keep_their_own_plots(run_cli, home, tmp_path):
    """a/run and b/run: their rows and plots are a-run and b-run (one overwrote the other)."""
    for parent, strategy in (("a", "knn"), ("b", "majority")):
        out = tmp_path / parent / "run"
        r = run_cli("eval", "pixels", "--strategy", strategy, "--limit", "10", "--out", out)
        assert r.exit_code == 0, r.output
    r = run_cli("report", tmp_path / "a" / "run", tmp_path / "b" / "run", "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    assert "| a-run |" in r.stdout and "| b-run |" in r.stdout
    assert {p.name for p in (tmp_path / "rep").glob("*.confusion.png")} == {
        "a-run.confusion.png",
        "b-run.confusion.png",
    }


@pytest.mark.parametrize(
    ("respond", "needle"),
    [
        (lambda req: ("302", {"Location": str(req.url)}, b""), "TooManyRedirects"),
        (lambda req: ("200", {"Content-Encoding": "gzip"}, b"not gzip" * 20), "DecodingError"),
    ],
)
def test_a_redirect_loop_or_a_bad_gzip_body_is_one_line(tmp_path, respond, needle):
    """Both escaped the download as httpx exceptions: a traceback."""
    import httpx

    from offline_vision.errors import DownloadError
    from offline_vision.models.provision.download import download

    def handler(req):
        status, headers, body = respond(req)
        return httpx.Response(int(status), headers=headers, content=body)

    client = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True)
    with pytest.raises(DownloadError, match=needle):
        download(client, "http://127.0.0.1:9/f.bin", tmp_path / "f.bin")
    assert not (tmp_path / "f.bin").exists()


HOSTILE_LABELS = [
    '猫"',
    "犬\\",
    "車{0}",
    "鳥[1]",
    "馬'",
    "船<b>&amp;",
    "魚|x|",
    "蛙`$(id)`",
    "鹿%s#",
]


def _names_for_every_key(body, headers):
    """A hosted reasoner that names each asked label (the schema's keys, whatever they hold)."""
    schema = body["response_format"]["json_schema"]["schema"]
    keys = list(schema["properties"])
    entry = next(iter(schema["properties"].values()))
    if entry.get("type") == "object":
        return json.dumps(
            {k: {"meaning": "a thing", "word": f"thing {chr(97 + i)}"} for i, k in enumerate(keys)}
        )
    if entry.get("type") == "array":
        return json.dumps({k: [f"thing {chr(97 + i)}"] for i, k in enumerate(keys)})
    return json.dumps({k: f"thing {chr(97 + i)}" for i, k in enumerate(keys)})


def test_hostile_characters_in_labels_and_schema_keys_never_crash(
    run_cli, home, tiny_clip, data_dir, tmp_path
):
    """Quotes, backslashes, braces, brackets, markup, pipes, backticks and format specifiers in
    labels through classify (bridged by a hosted reasoner), eval clip --labels, the report, tag
    to CSV, and in ask --schema keys: every label comes back exactly as written."""
    import csv

    from fakes import ChatServer

    server = ChatServer(_names_for_every_key)
    llm = ["--reasoner", "openai:m", "--base-url", server.url]
    photo = data_dir / "photos" / "chelsea.png"
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(HOSTILE_LABELS) + "\n", encoding="utf-8")
    try:
        r = run_cli("classify", photo, "--labels", f"@{labels}", "--top-k", "9", "--json", *llm)
        assert r.exit_code == 0, r.output
        assert {x["label"] for x in json.loads(r.stdout)["labels"]} == set(HOSTILE_LABELS)
        assert "bridged to English names" in r.stderr
        ten = tmp_path / "ten.txt"
        ten.write_text("\n".join([*HOSTILE_LABELS, "x|y"]) + "\n", encoding="utf-8")
        run = tmp_path / "run"
        r = run_cli("eval", "clip", "--limit", "3", "--labels", f"@{ten}", "--out", run, *llm)
        assert r.exit_code == 0, r.output
        records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
        assert all(x["prediction"] in [*HOSTILE_LABELS, "x|y"] for x in records)
        r = run_cli("report", run, "--out", tmp_path / "rep")
        assert r.exit_code == 0, r.output
        cat = tmp_path / "cat"
        assert run_cli("index", data_dir / "photos", "--out", cat).exit_code == 0
        out = tmp_path / "tags.csv"
        r = run_cli("tag", cat, "--labels", f"@{labels}", "--out", out, *llm)
        assert r.exit_code == 0, r.output
        rows = list(csv.reader(out.open(encoding="utf-8")))
        assert {row[1] for row in rows[1:]} <= set(HOSTILE_LABELS)
        schema = tmp_path / "schema.json"
        keys = {k: {"type": "string"} for k in ['a"b', "c\\d", "{e}", "f\nnewline"]}
        schema.write_text(json.dumps({"type": "object", "properties": keys}))
        r = run_cli("ask", "hi", "--schema", schema, *llm)
        assert "Traceback" not in r.output
    finally:
        server.stop()
    assert r.exit_code in (0, 1) and len([x for x in r.stderr.splitlines() if x.strip()]) <= 1


@pytest.mark.parametrize(
    "tokenizer",
    [
        '{"model": {"type": "BPE", "vocab": 5}}',  # valid JSON, not a tokenizer
        '{"version": "1.0", "model": {"type": "Nonesuch"}}',
        "[]",
        '{"model": null}',
    ],
)
def test_a_malformed_tokenizer_json_is_one_line(run_cli, home, tiny_clip, tmp_path, tokenizer):
    """A crafted bundle whose tokenizer.json (its sha256 in the manifest) is no tokenizer: a
    traceback from the Rust tokenizers library where it was loaded."""
    import hashlib
    import shutil

    bundle = tmp_path / "bad-tok"
    shutil.copytree(tiny_clip.path, bundle)
    (bundle / "tokenizer.json").write_text(tokenizer)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["name"] = "bad-tok"
    manifest["files"]["tokenizer.json"]["sha256"] = hashlib.sha256(tokenizer.encode()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    r = run_cli("models", "import", bundle)
    if r.exit_code == 0:  # taken in: then it is refused where it is used, in one line
        r = run_cli("classify", home / "x.png", "--scorer", "bad-tok", "--labels", "a,b")
    assert r.exit_code == 1 and "tokenizer" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("tokenizer", ['{"model": {"type": "BPE", "vocab": 5}}', "[]", "{bad"])
def test_a_checkpoints_malformed_tokenizer_json_is_one_line(tmp_path, tiny_ckpt, tokenizer):
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt, ckpt)
    (ckpt / "tokenizer.json").write_text(tokenizer)
    r = _ovision("export", str(ckpt), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert "tokenizer" in r.stderr and not (tmp_path / "o").exists()
