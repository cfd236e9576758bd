"""`eval … --concurrency N` with a hosted reasoner: a fake OpenAI-compatible server on
127.0.0.1 that answers after a fixed delay; the concurrent run equals the sequential one."""

from __future__ import annotations

import json

import pytest
from fake_servers import DelayedServer

from offline_vision.eval import runner


@pytest.fixture
def delayed():
    s = DelayedServer()
    yield s
    s.server.stop()


TIMINGS = {"latency_s", "probe_s", "probe_s_mean", "this_session"}  # seconds, not results


def _untimed(x):
    if isinstance(x, dict):
        return {k: _untimed(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list):
        return [_untimed(v) for v in x]
    return x


def _strip(records):
    return sorted((_untimed(r) for r in records), key=lambda r: r["id"])


def test_concurrent_hosted_run_equals_the_sequential_one(
    run_cli, home, tiny_clip, delayed, tmp_path
):
    common = [
        "eval",
        "dialogue",
        "--dataset",
        "cifar10",
        "--limit",
        "12",
        "--scorer",
        "clip",
        "--reasoner",
        "openai:m",
        "--base-url",
        delayed.server.url,
        "--trust",
        "1",
    ]
    r = run_cli(*common, "--out", tmp_path / "seq")
    assert r.exit_code == 0, r.output
    assert delayed.peak == 1
    r = run_cli(*common, "--out", tmp_path / "par", "--concurrency", "6")
    assert r.exit_code == 0, r.output
    assert delayed.peak > 1  # requests really overlapped
    seq = json.loads((tmp_path / "seq" / runner.SUMMARY).read_text())
    par = json.loads((tmp_path / "par" / runner.SUMMARY).read_text())
    assert _untimed(seq) == _untimed(par)
    a = _strip(runner.read_records(tmp_path / "seq" / runner.RECORDS))
    b = _strip(runner.read_records(tmp_path / "par" / runner.RECORDS))
    assert a == b and len(b) == 12  # one whole line per item, none twice
    assert par["this_session"]["concurrency"] == 6


def test_concurrency_with_a_local_gguf_is_refused(run_cli, home):
    r = run_cli("eval", "dialogue", "--limit", "3", "--concurrency", "4")
    assert r.exit_code == 1 and "needs an openai: reasoner" in r.stderr


@pytest.mark.parametrize("side_by_side", [{"concurrency": 2}, {"ray": object()}])
def test_sequential_tasks_refuse_concurrency_and_ray(tmp_path, side_by_side):
    from offline_vision.errors import RunError

    class Feedback:
        name, sequential = "pixels", True

    with pytest.raises(RunError, match=r"depends on the ones before it.*without --ray"):
        runner.run(Feedback(), [1, 2], tmp_path / "r", **side_by_side)
