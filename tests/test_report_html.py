"""`ovision report --html`: one self-contained page. The page is built from real run directories
(no weights: the records are written here), checked as text, and — marked `browser` — opened in
headless Chromium with the network off, driven through the DevTools protocol."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from offline_vision.eval import runner
from offline_vision.eval.tasks import DialogueTask

EVIL = '<script>window.PWNED=1</script><img src=x onerror="window.PWNED=2">'
CLASSES = ("airplane", "automobile", "bird", "cat", "deer")
SCREENSHOT = Path(__file__).resolve().parents[1] / "runs" / "report-html.png"


class EyesTask:
    name = "clip"

    def config(self):
        return {
            "task": "clip",
            "dataset": "cifar10",
            "scorer": {"scorer": "conse", "standin": True},
        }

    def resume(self, records):
        pass

    def __call__(self, i):
        truth = CLASSES[i % 5]
        pred = truth if i % 3 else CLASSES[(i + 1) % 5]
        return {"truth": truth, "prediction": pred, "top": [[pred, 0.6], [truth, 0.3]]}


class DialogueLikeTask:
    """Records shaped as `eval dialogue` writes them; the summary is the real task's."""

    name = "dialogue"
    summary_extra = staticmethod(DialogueTask.summary_extra)

    def config(self):
        return {
            "task": "dialogue",
            "dataset": "cifar10",
            "mode": "known",
            "policy": "adaptive",
            "reasoner": {"name": "scripted"},
            "scorer": {"scorer": "conse", "standin": True},
        }

    def resume(self, records):
        pass

    def __call__(self, i):
        truth = CLASSES[i % 5]
        pred = truth if i % 2 else CLASSES[(i + 2) % 5]
        rounds = [
            {
                "round": 1,
                "candidates": [truth, "cat"],
                "scores": [[truth, 0.7], ["cat", 0.3]],
                "raw": EVIL if i == 0 else f"is it a {truth}?",
                "fallback": None,
            },
            {
                "round": 2,
                "candidates": [pred, "dog"],
                "scores": [[pred, 0.8], ["dog", 0.2]],
                "raw": "narrowing",
                "fallback": None,
            },
        ]
        return {
            "truth": truth,
            "prediction": pred,
            "dialogue": {
                "rounds": rounds,
                "answer": {"label": pred, "raw": EVIL if i == 0 else pred, "rule": "choice"},
                "mode": "known",
                "stopped_after": None,
                "answer_by_round": [truth, pred],
                "probe_s": 0.0,
            },
        }


@pytest.fixture
def two_runs(tmp_path):
    ids = list(range(40))
    runner.run(EyesTask(), ids, tmp_path / "t1", classes=CLASSES)
    runner.run(DialogueLikeTask(), ids, tmp_path / "t2<b>", classes=CLASSES)
    return tmp_path / "t1", tmp_path / "t2<b>"


def _page(run_cli, two_runs, tmp_path) -> tuple[Path, str]:
    t1, t2 = two_runs
    out = tmp_path / "page.html"
    r = run_cli("report", t1, t2, "--baseline", t1, "--html", "--out", out)
    assert r.exit_code == 0, r.output
    return out, out.read_text(encoding="utf-8")


def test_pixel_runs_show_the_grid_and_the_prompt(run_cli, home, tmp_path):
    class Pixels:
        name = "pixels"

        def config(self):
            return {"task": "pixels", "dataset": "mnist", "strategy": "zero-shot"}

        def resume(self, records):
            pass

        def __call__(self, i):
            return {"truth": "7", "prediction": "1", "question": "Which digit? <b>0.5</b>"}

    runner.run(Pixels(), [0, 1], tmp_path / "px")
    out = tmp_path / "px.html"
    assert run_cli("report", tmp_path / "px", "--html", "--out", out).exit_code == 0
    data = json.loads(
        re.search(r'type="application/json">(.*?)</script>', out.read_text(), re.S).group(1)
    )
    item = data["items"][0]
    assert item["grid"].startswith("data:image/png;base64,") and item["img"] != item["grid"]
    assert item["runs"]["0"]["detail"]["prompt"] == "Which digit? <b>0.5</b>"


def test_page_is_self_contained_and_escaped(run_cli, home, two_runs, tmp_path):
    _out, text = _page(run_cli, two_runs, tmp_path)
    # no external fetches: every src/href is inline data
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)
    assert "<link" not in text and "@import" not in text
    # the untrusted answer appears only as data, never as markup
    assert EVIL not in text and "<b>" not in text and "t2&lt;b&gt;" in text
    assert text.count("<script") == 2  # the data block and the page's own script
    data = json.loads(
        re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S).group(1)
    )
    first = data["items"][0]["runs"]["1"]["detail"]
    assert first["rounds"][0]["raw"] == EVIL  # intact as text inside the data
    assert data["items"][0]["img"].startswith("data:image/")  # the shared CIFAR-10 thumbnails
    assert 'class="confusion"' in text and "accuracy had it answered after round r" in text
    assert "won /" in text and "lost, p =" in text  # McNemar against the baseline


class DevTools:
    """Just enough of the DevTools protocol over a websocket: call a method, collect events."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id, self.events = 0, []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg.get("result", {})
            self.events.append(msg)

    def js(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return r["result"].get("value")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail(
        "Chromium is not installed: apt-get install chromium (scripts/install.sh does it "
        "for the test extra when run as root)",
        pytrace=False,
    )


@pytest.mark.browser
def test_page_in_headless_chromium_offline(run_cli, home, two_runs, tmp_path):
    out, _ = _page(run_cli, two_runs, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "--remote-allow-origins=*",
            "--window-size=1280,1600",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import httpx

        target = None
        for _ in range(200):
            try:
                pages = httpx.get(f"http://127.0.0.1:{port}/json", timeout=1).json()
                target = next(p for p in pages if p.get("type") == "page")
                break
            except (httpx.HTTPError, StopIteration, ValueError):
                time.sleep(0.1)
        assert target, "Chromium's DevTools endpoint did not come up"
        cdp = DevTools(target["webSocketDebuggerUrl"])
        cdp.call("Network.enable")
        cdp.call(
            "Network.emulateNetworkConditions",
            offline=True,
            latency=0,
            downloadThroughput=-1,
            uploadThroughput=-1,
        )
        cdp.call("Page.enable")
        t = time.perf_counter()
        cdp.call("Page.navigate", url=out.as_uri())
        for _ in range(200):
            if (
                cdp.js("document.readyState") == "complete"
                and cdp.js("document.querySelectorAll('.item').length") > 0
            ):
                break
            time.sleep(0.05)
        load_s = time.perf_counter() - t
        assert cdp.js("document.querySelectorAll('#runs tr').length") == 3  # header + 2 runs
        assert cdp.js("document.querySelectorAll('svg.confusion').length") == 2
        assert cdp.js("document.querySelectorAll('svg.curve').length") == 1  # by round, dialogue
        assert cdp.js("document.getElementById('count').textContent") == "40 items"
        assert cdp.js("window.PWNED") is None  # the <script> in an LLM answer never ran …
        first = cdp.js(
            "document.querySelector('.item pre') && document.querySelector('.item pre').textContent"
        )
        assert first == EVIL  # … it is shown as text
        # a filter click changes the list: the items the two runs disagree on
        n = cdp.js("""(() => { const s = document.getElementById('f-status'); s.value = 'disagree';
                   s.dispatchEvent(new Event('change')); return document.getElementById('count').textContent; })()""")
        want = sum(1 for i in range(40) if bool(i % 3) != bool(i % 2))
        assert n == f"{want} items" and cdp.js("document.querySelectorAll('.item').length") == want
        # every request the page made stayed on disk or inline
        urls = [
            e["params"]["request"]["url"]
            for e in cdp.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls
        shot = cdp.call("Page.captureScreenshot", format="png")["data"]
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(base64.b64decode(shot))
        print(f"page {out.stat().st_size} bytes, loaded in {load_s:.2f} s; screenshot {SCREENSHOT}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
