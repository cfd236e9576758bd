"""`eval … --concurrency N` with a hosted reasoner: a fake OpenAI-compatible server on
127.0.0.1 that answers after a fixed delay; the concurrent run equals the sequential one."""

from __future__ import annotations

import json

import pytest
from fakes import DelayedServer
from run_compare import untimed, untimed_records

from offline_vision.eval import records, runner


@pytest.fixture
def delayed():
    s = DelayedServer()
    yield s
    s.server.stop()


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
    assert untimed(seq) == untimed(par)
    a = untimed_records(records.read_records(tmp_path / "seq" / records.RECORDS))
    b = untimed_records(records.read_records(tmp_path / "par" / records.RECORDS))
    assert a == b and len(b) == 12  # one whole line per item, none twice
    assert par["this_session"]["concurrency"] == 6


def test_concurrency_with_a_local_gguf_is_refused(run_cli, home):
    r = run_cli("eval", "dialogue", "--limit", "3", "--concurrency", "4")
    assert r.exit_code == 1 and "needs an openai: reasoner" in r.stderr


def _ray_source():
    from offline_vision.eval.cluster import RaySource

    return RaySource(plan=None, concurrency=1)  # refused before it would connect


@pytest.mark.parametrize("side_by_side", [lambda: runner.Threads(2), _ray_source])
def test_sequential_tasks_refuse_concurrency_and_ray(tmp_path, side_by_side):
    from offline_vision.errors import RunError

    class Feedback:
        name, sequential = "pixels", True

    with pytest.raises(RunError, match=r"depends on the ones before it.*without --ray"):
        runner.run(Feedback(), [1, 2], tmp_path / "r", source=side_by_side())
