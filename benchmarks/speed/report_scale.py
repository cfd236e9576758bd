"""`ovision report --html` at scale: two runs of 10,000 items each → page size, build time, and
load time in headless Chromium with the network off → benchmarks/results/report_scale.json.

The records are synthetic (no model runs): ids 0–4,999 are the shared MNIST test digits (real
thumbnails), 5,000–9,999 have no image at hand (no thumbnail), so the size is a lower bound for
10,000 thumbnails; the thumbnail bytes per item are reported to scale it.

    python -m benchmarks.speed.report_scale
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import websocket

from benchmarks.common import write
from offline_vision.config import Settings
from offline_vision.eval import html, runner
from offline_vision.eval.report import load_run

N = 10_000


class Synthetic:
    name = "pixels"

    def __init__(self, salt: int):
        self.salt = salt

    def config(self):
        return {"task": "pixels", "dataset": "mnist", "strategy": f"synthetic-{self.salt}"}

    def resume(self, records):
        pass

    def __call__(self, i):
        truth = str(i % 10)
        pred = truth if (i * 7 + self.salt) % 10 > 2 else str((i + 1) % 10)
        prompt = "Which digit is this? " + " ".join("0.5" for _ in range(40))
        return {"truth": truth, "prediction": pred, "question": prompt}


def load_seconds(page: Path) -> float:
    """From navigation to the first page of items rendered, in headless Chromium, offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "--remote-allow-origins=*",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                target = next(
                    p
                    for p in httpx.get(f"http://127.0.0.1:{port}/json").json()
                    if p["type"] == "page"
                )
                break
            except (httpx.HTTPError, StopIteration):
                time.sleep(0.1)
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], suppress_origin=True)
        n = 0

        def call(method, **params):
            nonlocal n
            n += 1
            ws.send(json.dumps({"id": n, "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == n:
                    return msg.get("result", {})

        call("Network.enable")
        call(
            "Network.emulateNetworkConditions",
            offline=True,
            latency=0,
            downloadThroughput=-1,
            uploadThroughput=-1,
        )
        t = time.perf_counter()
        call("Page.navigate", url=page.as_uri())
        while True:
            r = call(
                "Runtime.evaluate",
                expression="document.querySelectorAll('.item').length",
                returnByValue=True,
            )
            if r.get("result", {}).get("value"):
                return time.perf_counter() - t
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for salt in (1, 2):
            out = Path(tmp) / f"run{salt}"
            runner.run(
                Synthetic(salt), list(range(N)), out, classes=tuple(str(d) for d in range(10))
            )
            runs.append(load_run(out))
        t = time.perf_counter()
        page = html.write(
            runs, Path(tmp) / "page.html", baseline=runs[0], data_dir=settings.data_dir
        )
        build_s = time.perf_counter() - t
        size = page.stat().st_size
        text = page.read_text()
        thumbs = text.count("data:image/")
        loads = [load_seconds(page) for _ in range(3)]
    result = {
        "items": N,
        "runs": 2,
        "page_bytes": size,
        "thumbnails": thumbs,
        "build_s": build_s,
        "load_s": loads,
        "note": "synthetic records; ids 0-4999 with MNIST thumbnails, 5000-9999 without",
    }
    write("report_scale", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
