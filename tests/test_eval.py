"""The evaluation runner, datasets, statistics and report — no weights, no network."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from offline_vision.errors import DataError, RunError
from offline_vision.eval import records, runner
from offline_vision.eval.datasets import ImageFolder, Mnist, open_dataset, read_sample, select
from offline_vision.eval.report import report
from offline_vision.eval.stats import mcnemar_exact, percentile, wilson


class CountingTask:
    """Predicts item % 3 as a string; truth is item % 2. Optionally dies after `die_after` items."""

    name = "counting"

    def __init__(self, die_after: int | None = None, delay: float = 0.0):
        self.die_after, self.delay, self.calls, self.resumed = die_after, delay, 0, None

    def config(self) -> dict:
        return {"task": self.name}

    def resume(self, records):
        self.resumed = [r.id for r in records]

    def __call__(self, index: int) -> dict:
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt
        self.calls += 1
        time.sleep(self.delay)
        return {"truth": str(index % 2), "prediction": str(index % 3), "tokens": {"prompt": index}}


def _strip(records):
    return [{k: v for k, v in r.to_json().items() if k != "latency_s"} for r in records]


def test_interrupted_run_resumes_to_identical_results(tmp_path):
    indices = list(range(20, 0, -1))
    full = runner.run(CountingTask(), indices, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        runner.run(CountingTask(die_after=7), indices, tmp_path / "cut")
    assert len(records.read_records(tmp_path / "cut" / records.RECORDS)) == 7
    task = CountingTask()
    resumed = runner.run(task, indices, tmp_path / "cut")
    assert task.calls == 13 and task.resumed == indices[:7]
    session = ("latency_s", "this_session")  # what this process did, not what the run is
    assert {k: v for k, v in resumed.items() if k not in session} == {
        k: v for k, v in full.items() if k not in session
    }
    a = _strip(records.read_records(tmp_path / "full" / records.RECORDS))
    b = _strip(records.read_records(tmp_path / "cut" / records.RECORDS))
    assert a == b


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_eval import CountingTask
from offline_vision.eval import runner
runner.run(CountingTask(delay=0.05), list(range(60)), __import__("pathlib").Path({out!r}))
"""


def test_killed_process_resumes(tmp_path):
    out = tmp_path / "run"
    code = KILL_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code])
    path = out / records.RECORDS
    deadline = time.time() + 60
    while time.time() < deadline and (not path.exists() or path.read_text().count("\n") < 10):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(path, "a") as f:
        f.write('{"id": 99, "trunc')  # as if the kill landed mid-line
    got = len(records.read_records(path))
    assert 10 <= got < 60
    runner.run(CountingTask(), list(range(60)), out)
    clean = runner.run(CountingTask(), list(range(60)), tmp_path / "clean")
    final = json.loads((out / runner.SUMMARY).read_text())
    assert final["accuracy"] == clean["accuracy"] and final["n"] == 60
    assert _strip(records.read_records(path)) == _strip(
        records.read_records(tmp_path / "clean" / records.RECORDS)
    )


def test_resume_with_other_options_is_refused(tmp_path):
    runner.run(CountingTask(), [1, 2, 3], tmp_path / "r")
    with pytest.raises(RunError, match="different configuration"):
        runner.run(CountingTask(), [1, 2, 4], tmp_path / "r")


def test_summary_fields(tmp_path):
    s = runner.run(CountingTask(), list(range(12)), tmp_path / "r", classes=("0", "1"))
    # truth i%2, prediction i%3: correct when i%2 == i%3, i.e. i ≡ 0 or 1 (mod 6)
    assert s["correct"] == 4 and s["n"] == 12
    assert s["confusion"]["columns"] == ["0", "1", "2"]
    assert sum(map(sum, s["confusion"]["matrix"])) == 12
    assert s["per_class"]["0"] == {"n": 6, "correct": 2, "accuracy": 2 / 6}
    assert s["tokens"]["prompt"]["per_item"] == pytest.approx(5.5)
    assert s["latency_s"]["p95"] >= s["latency_s"]["p50"]


def test_statistics_against_known_values():
    lo, hi = wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 9) == pytest.approx(0.021484375)  # 2 * (1 + 10) / 1024
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_datasets_and_samples(data_dir):
    cifar = open_dataset(data_dir, "cifar10")
    assert len(cifar) == 932 and cifar.classes[0] == "airplane"
    sample = read_sample(data_dir, cifar, "cifar10-300")
    assert len(sample) == 300
    assert [cifar.item(i).label for i in range(3)] == ["cat", "ship", "ship"]
    mnist = open_dataset(data_dir, "mnist")
    assert len(mnist) == 5000 and [mnist.item(i).label for i in range(3)] == ["7", "2", "1"]
    a = select(mnist, sample=None, limit=50, seed=0)
    assert a == select(mnist, sample=None, limit=50, seed=0) and len(set(a)) == 50
    with pytest.raises(DataError, match="at least 1"):
        select(mnist, sample=None, limit=0, seed=0)


def test_image_folder_without_manifest(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / cls / "a.png")
    ds = ImageFolder(tmp_path)
    assert ds.classes == ("cat", "dog") and [ds.item(i).label for i in ds.indices] == ["cat", "dog"]


def test_bad_data_gives_one_line_errors(run_cli, home, tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("OVISION_DATA", str(tmp_path / "nowhere"))
    r = run_cli("eval", "pixels", "--strategy", "majority", "--limit", "5")
    assert r.exit_code == 1 and "does not exist" in r.stderr and "Traceback" not in r.output

    bad = tmp_path / "data"
    shutil.copytree(data_dir / "mnist", bad / "mnist")
    monkeypatch.setenv("OVISION_DATA", str(bad))
    r = run_cli("eval", "pixels", "--strategy", "majority", "--limit", "0")
    assert r.exit_code == 1 and "--limit must be at least 1" in r.stderr
    (bad / "mnist" / "s.txt").write_text("1\n2\n99999\n")
    r = run_cli(
        "eval", "pixels", "--strategy", "majority", "--sample", str(bad / "mnist" / "s.txt")
    )
    assert r.exit_code == 1 and "99999 is out of range" in r.stderr
    r = run_cli("eval", "pixels", "--dataset", "imagenet", "--strategy", "majority")
    assert r.exit_code == 1 and "mnist" in r.stderr
    with pytest.raises(DataError, match="unknown dataset"):
        open_dataset(bad, "svhn")
    images = bad / "mnist" / "t10k-images-idx3-ubyte.gz"
    data = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(data[: len(data) // 2]))
    r = run_cli("eval", "pixels", "--strategy", "majority", "--limit", "5")
    assert r.exit_code == 1 and "header says" in r.stderr
    images.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + data[4:100]))
    with pytest.raises(DataError, match="bad IDX magic"):
        Mnist(bad / "mnist", "test")


def test_eval_pixels_baselines_and_report(run_cli, home, tmp_path):
    for strat in ("knn", "majority"):
        r = run_cli(
            "eval", "pixels", "--strategy", strat, "--limit", "40", "--out", tmp_path / strat
        )
        assert r.exit_code == 0, r.output
    knn = json.loads((tmp_path / "knn" / runner.SUMMARY).read_text())
    assert knn["accuracy"] > 0.85 and knn["config"]["k"] == 5
    r = run_cli(
        "report",
        tmp_path / "knn",
        tmp_path / "majority",
        "--baseline",
        tmp_path / "majority",
        "--out",
        tmp_path / "rep",
    )
    assert r.exit_code == 0, r.output
    assert "| knn | pixels | knn |" in r.stdout and "McNemar p" in r.stdout
    assert (tmp_path / "rep" / "knn.confusion.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "runs.csv").read_text().startswith("run,task,method")


def test_report_draws_the_feedback_curve(tmp_path):
    out = tmp_path / "fb"
    task = CountingTask()
    task.config = lambda: {"task": "pixels", "strategy": "feedback"}
    runner.run(task, list(range(30)), out)
    res = report([out], tmp_path / "rep")
    assert any(p.endswith("fb.over_time.png") for p in res["plots"])
