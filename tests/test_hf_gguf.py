"""A stronger LLM one command away: `ovision models pull hf:ORG/REPO:QUANT` (or /FILE.gguf)
takes a chat GGUF from a (fake) hub, records the commit and the file's sha256, resumes a cut
download, and the pulled model answers as `--reasoner local:NAME` — tiny random GGUFs."""

from __future__ import annotations

import hashlib
import json

import pytest
from tiny_gguf import CHATML, write_gguf

from offline_vision.errors import BadInput
from offline_vision.models.provision import store
from offline_vision.models.provision.hf import HubSpec, gguf_file, hf_name, parse_hf

REPO = "test-org/Tiny-Chat-GGUF"
COMMIT = "c3" * 20


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory):
    d = tmp_path_factory.mktemp("hub-gguf")
    return {
        "tiny-chat-Q4_K_M.gguf": write_gguf(d / "q4.gguf", CHATML, seed=1).read_bytes(),
        "tiny-chat-Q8_0.gguf": write_gguf(d / "q8.gguf", CHATML, seed=2).read_bytes(),
        "README.md": b"# a tiny chat model\n",
    }


@pytest.fixture
def hub(fake_hub, ggufs, monkeypatch):
    fake_hub.add_repo(REPO, COMMIT, ggufs, branch="main")
    monkeypatch.setenv("OVISION_HUB_URL", fake_hub.url)
    return fake_hub


def test_pull_a_quant_records_it_and_it_answers_ask(run_cli, settings, hub, ggufs):
    r = run_cli("models", "pull", f"hf:{REPO}:Q4_K_M")
    assert r.exit_code == 0, r.output
    name = "tiny-chat-gguf-q4_k_m"
    assert f"{name}: installed at" in r.stdout and COMMIT[:12] in r.stdout
    bundle = store.load(settings.models_dir, name)
    source = bundle.manifest["source"]
    want = hashlib.sha256(ggufs["tiny-chat-Q4_K_M.gguf"]).hexdigest()
    assert (source["repo"], source["revision"]) == (REPO, COMMIT)
    assert source["files"] == {"tiny-chat-Q4_K_M.gguf": want}  # only the file asked for
    assert bundle.sha256("model.gguf") == want
    rows = [json.loads(x) for x in run_cli("models", "list", "--json").stdout.splitlines()]
    row = next(x for x in rows if x["name"] == name)
    assert (row["kind"], row["sha256"], row["revision"]) == ("gguf", want, COMMIT)
    r = run_cli("ask", "Pick one", "--choices", "cat,dog", "--reasoner", f"local:{name}", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["value"] in ("cat", "dog") and out["reasoner"]["name"] == f"local:{name}"
    assert run_cli("models", "rm", name).exit_code == 0
    assert name not in store.installed(settings.models_dir)


def test_a_cut_download_resumes_where_it_stopped(run_cli, settings, hub, ggufs):
    path = "tiny-chat-Q8_0.gguf"
    hub.cut_after[path] = 5000  # the first reply breaks after 5,000 bytes
    r = run_cli("models", "pull", f"hf:{REPO}/{path}", "--name", "tiny-q8")
    assert r.exit_code == 0, r.output
    ranges = [rng for p, rng in hub.requests if p.endswith(path)]
    assert ranges[0] is None and ranges[-1] == "bytes=5000-"  # resumed, not restarted
    got = store.load(settings.models_dir, "tiny-q8").sha256("model.gguf")
    assert got == hashlib.sha256(ggufs[path]).hexdigest()


def test_the_gguf_is_named_or_the_choice_is_one_line(run_cli, hub):
    r = run_cli("models", "pull", f"hf:{REPO}")  # two .gguf files: which?
    assert r.exit_code == 1 and "name one with :QUANT or /FILE.gguf" in r.stderr
    said = [line for line in r.stderr.splitlines() if "pulling…" not in line]
    assert len(said) == 1 and "tiny-chat-Q4_K_M.gguf" in said[0]
    r = run_cli("models", "pull", f"hf:{REPO}:Q2_K")
    assert r.exit_code == 1 and "no .gguf for Q2_K" in r.stderr


def test_hub_specs_are_checked_before_any_request():
    assert parse_hf("hf:org/m-GGUF:Q4_K_M@v1") == HubSpec("org/m-GGUF", "v1", "Q4_K_M")
    assert parse_hf("hf:org/m/sub/x.gguf") == HubSpec("org/m", None, None, "sub/x.gguf")
    assert hf_name("hf:org/Qwen2.5-7B-Instruct-GGUF:Q4_K_M") == "qwen2.5-7b-instruct-gguf-q4_k_m"
    for bad in ("hf:../ok", "hf:org/../x", "hf:org/m@../../x", "hf:org/m/../x.gguf", "hf:org"):
        with pytest.raises(BadInput):
            parse_hf(bad)
    files = ["m-Q4_K_M.gguf", "m-Q4_K_S.gguf", "big-Q8_0-00001-of-00002.gguf"]
    assert gguf_file(HubSpec("o/m", quant="q4_k_m"), files) == "m-Q4_K_M.gguf"
    with pytest.raises(BadInput, match=r"no \.gguf for Q8_0"):  # split GGUFs are not taken
        gguf_file(HubSpec("o/m", quant="Q8_0"), files)


def test_a_name_that_cannot_be_installed_is_refused_before_any_request(run_cli, hub):
    hub.requests.clear()
    r = run_cli("models", "pull", f"hf:{REPO}:Q4_K_M", "--name", "tiny_ü")
    assert r.exit_code == 1 and "not a plain name" in r.stderr and hub.requests == []
