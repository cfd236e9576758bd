"""`eval … --ray`: a local Ray (2 CPUs) runs the items on workers; the driver alone writes.

Tests marked `cluster` start Ray (the `cluster` extra); each runs the CLI as its own process so
workers and the driver can be killed the way a machine kills them. The reasoner is a fake
OpenAI-compatible server on 127.0.0.1 with deterministic answers; the eyes are the tiny CLIP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fakes import DelayedServer
from run_compare import PLACEMENT, TIMINGS, untimed, untimed_records

from offline_vision.eval import records, runner

N = 16
DROP = TIMINGS | PLACEMENT


@pytest.fixture(scope="module")
def ray_installed():
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.fail("the cluster tests need Ray: pip install -e '.[cluster]'", pytrace=False)


@pytest.fixture(scope="module")
def server():
    s = DelayedServer(delay=0.1)
    yield s
    s.server.stop()


def _args(server, out, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "offline_vision",
        "eval",
        "dialogue",
        "--limit",
        str(N),
        "--scorer",
        "clip",
        "--reasoner",
        "openai:m",
        "--base-url",
        server.server.url,
        "--trust",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def _run(args) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def _lines(out) -> list[dict]:
    path = out / records.RECORDS
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def _wait_for_records(out, proc, n: int) -> list[dict]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        got = _lines(out)
        if len(got) >= n:
            return got
        time.sleep(0.02)
    raise AssertionError(f"no {n} records before the run ended: {proc.poll()}")


def _same_as_sequential(seq, out) -> dict:
    a = untimed_records(records.read_records(seq / records.RECORDS), DROP)
    b_raw = records.read_records(out / records.RECORDS)
    assert len(b_raw) == len({r.id for r in b_raw}) == N  # nothing lost, nothing twice
    b = untimed_records(b_raw, DROP)
    assert a == b
    summary = json.loads((out / runner.SUMMARY).read_text())
    assert untimed(summary, DROP) == untimed(json.loads((seq / runner.SUMMARY).read_text()), DROP)
    return summary


@pytest.fixture(scope="module")
def seq_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sequential") / "run"


@pytest.fixture
def sequential(home, tiny_clip, server, seq_dir):
    """The sequential run every Ray run must match (run once per module)."""
    if not (seq_dir / runner.SUMMARY).exists():
        r = _run(_args(server, seq_dir))
        assert r.returncode == 0, r.stderr
    return seq_dir


@pytest.mark.cluster
def test_ray_run_equals_the_sequential_run(ray_installed, sequential, server, tmp_path, run_cli):
    out = tmp_path / "ray"
    r = _run(_args(server, out, "--ray", "--workers", "2"))
    assert r.returncode == 0, r.stderr
    summary = _same_as_sequential(sequential, out)
    session = summary["this_session"]
    assert session["backend"] == "ray" and session["workers"] == 2
    assert sorted(summary["per_worker"]) == ["w0", "w1"]  # both did work
    assert sum(summary["per_worker"].values()) == N
    for rec in records.read_records(out / records.RECORDS):
        assert rec.worker["pid"] != os.getpid() and rec.latency_s > 0
    table = run_cli("report", sequential, out, "--out", tmp_path / "report").output
    counts = ", ".join(f"{w} {k}" for w, k in summary["per_worker"].items())
    assert f"| {session['items_per_s']:.2f} | {counts} |" in table  # throughput, items per worker


@pytest.mark.cluster
def test_a_killed_worker_loses_nothing(ray_installed, sequential, server, tmp_path):
    out = tmp_path / "ray"
    proc = subprocess.Popen(
        _args(server, out, "--ray", "--workers", "2"), stderr=subprocess.PIPE, text=True
    )
    third = _wait_for_records(out, proc, 3)[2]
    os.kill(third["worker"]["pid"], signal.SIGKILL)  # it has its next item in flight
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary = _same_as_sequential(sequential, out)
    assert summary["this_session"]["retried"] >= 1
    assert f"worker {third['worker']['name']} died" in err


@pytest.mark.cluster
def test_a_killed_driver_resumes_to_the_same_summary(ray_installed, sequential, server, tmp_path):
    out = tmp_path / "ray"
    args = _args(server, out, "--ray", "--workers", "2")
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for_records(out, proc, 4)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
    proc.wait(timeout=60)
    before = len(_lines(out))
    assert before < N
    r = _run(args)
    assert r.returncode == 0, r.stderr
    summary = _same_as_sequential(sequential, out)
    assert summary["this_session"]["items"] == N - before


def test_ray_without_the_extra_is_one_line_naming_it(
    run_cli, home, tiny_clip, monkeypatch, tmp_path
):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where it is missing
    monkeypatch.chdir(tmp_path)  # the default run directory is runs/… under the working one
    r = run_cli("eval", "clip", "--scorer", "clip", "--limit", "2", "--ray")
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0
    assert "pip install 'offline_vision[cluster]'" in r.stderr
    assert not (tmp_path / "runs").exists()  # refused before any run directory was written


def test_ray_options_need_ray(run_cli, home):
    r = run_cli("eval", "clip", "--limit", "2", "--workers", "2")
    assert r.exit_code == 1 and "need --ray" in r.stderr


def test_an_address_nobody_answers_is_one_line_at_once(ray_installed, run_cli, home, tiny_clip):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    t = time.monotonic()
    r = run_cli(
        "eval",
        "clip",
        "--scorer",
        "clip",
        "--limit",
        "2",
        "--ray",
        "--ray-address",
        f"127.0.0.1:{port}",
    )
    assert r.exit_code == 1 and "no Ray cluster answers at" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and time.monotonic() - t < 60


def test_index_and_hub_credentials_do_not_travel_to_workers(settings):
    from dataclasses import replace

    from offline_vision.commands.eval import ray_plan

    mine = replace(settings, pypi_url="https://u:s3cret@idx/simple", hub_url="https://u:t0k@hub")
    task, plan = ray_plan((None, 2, 1), lambda s, **kw: s, mine)  # the "task" is its settings
    assert "s3cret" not in repr(plan.recipe) and "t0k" not in repr(plan.recipe)
    assert task.data_dir == mine.data_dir and plan.workers == 2


@pytest.mark.cluster
def test_index_on_ray_data_equals_the_sequential_index(ray_installed, home, tiny_clip, tmp_path):
    """`index --ray`: the images embedded by Ray Data actors, the driver writing the catalog —
    the same rows and embeddings as the run on this process; a bad image is one error line."""
    import numpy as np
    from PIL import Image

    from offline_vision.catalog.store import Catalog

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), np.uint8)).save(imgs / f"{i:02d}.png")
    (imgs / "broken.png").write_text("not a png")
    cats = {}
    for name, extra in (("seq", []), ("ray", ["--ray", "--workers", "2"])):
        cats[name] = tmp_path / name
        args = [sys.executable, "-m", "offline_vision", "index", str(imgs), "--out"]
        r = _run(
            [*args, str(cats[name]), "--scorer", "clip", "--batch-size", "8", "--json", *extra]
        )
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert (out["added"], out["failed"]) == (40, 1), out
        assert "broken.png" in r.stderr
    a, b = (Catalog.open(cats[n]).rows() for n in ("seq", "ray"))
    assert a.paths == b.paths and a.sha256 == b.sha256
    np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-6)
