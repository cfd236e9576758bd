"""Evaluation throughput → benchmarks/results/eval_scale.json, three parts (all by default):

- hosted: `ovision eval pixels --strategy zero-shot` (one request per item) against a fake
  OpenAI-compatible server on 127.0.0.1 that answers after 300 ms, at --concurrency 1, 4, 16
  on 200 MNIST test digits.
- local: T1 (`eval clip`, ConSE stand-in) over the 932 shared CIFAR-10 images and T2 (`eval
  dialogue --policy adaptive --trust 1`, 0.5B GGUF) over 60 images: sequential (--threads 2,
  the whole machine) against `--ray --workers 2 --threads-per-worker 1` and `--workers 1
  --threads-per-worker 2`.
- nodes: two Ray nodes on this machine (`ray start --head --num-cpus 1`, `ray start --address
  … --num-cpus 1`), the same 60-image T2 run joined to them with --ray-address.

    python -m benchmarks.speed.eval_scale [hosted local nodes]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.common import RESULTS, machine, write

DELAY = 0.3
ITEMS = 200


def serve() -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(DELAY)
            rf = body.get("response_format") or {}
            schema = (rf.get("json_schema") or {}).get("schema") or rf.get("schema") or {}
            enum = schema.get("properties", {}).get("answer", {}).get("enum") or ["0"]
            payload = json.dumps(
                {
                    "choices": [
                        {
                            "message": {
                                "role": "assistant",
                                "content": json.dumps({"answer": enum[0]}),
                            }
                        }
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 3},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def hosted() -> dict:
    server, url = serve()
    rows = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for c in (1, 4, 16):
                out = Path(tmp) / f"c{c}"
                t = time.perf_counter()
                subprocess.run(
                    [
                        *OVISION,
                        "eval",
                        "pixels",
                        "--strategy",
                        "zero-shot",
                        "--limit",
                        str(ITEMS),
                        "--reasoner",
                        "openai:fake",
                        "--base-url",
                        url,
                        "--concurrency",
                        str(c),
                        "--out",
                        str(out),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                wall = time.perf_counter() - t
                s = json.loads((out / "summary.json").read_text())
                rows[c] = {
                    "items_per_s": s["this_session"]["items_per_s"],
                    "wall_s": wall,
                    "accuracy": s["accuracy"],
                }
                print("hosted", c, rows[c], flush=True)
    finally:
        server.shutdown()
    base = rows[1]["items_per_s"]
    return {
        "delay_s": DELAY,
        "items": ITEMS,
        "command": "ovision eval pixels --strategy zero-shot --reasoner openai:fake --concurrency C",
        "concurrency": rows,
        "speedup": {c: r["items_per_s"] / base for c, r in rows.items()},
        "target": "≥ 12× at 16 against 1",
    }


OVISION = [sys.executable, "-m", "offline_vision", "-q"]
RAY = str(Path(sys.executable).with_name("ray"))
T1 = ["eval", "clip", "--scorer", "conse"]  # the 932 shared images
T2 = [
    "eval",
    "dialogue",
    "--scorer",
    "conse",
    "--reasoner",
    "local:qwen2.5-coder-0.5b-instruct-q4_k_m",
]
T2 += ["--policy", "adaptive", "--trust", "1", "--limit", "60"]
# name → (options before the command, options after it)
LAYOUTS = {
    "sequential": (["--threads", "2"], []),
    "ray 2 workers x 1 thread": ([], ["--ray", "--workers", "2", "--threads-per-worker", "1"]),
    "ray 1 worker x 2 threads": ([], ["--ray", "--workers", "1", "--threads-per-worker", "2"]),
}


def _measure(args: list[str], out: Path, layout: tuple[list[str], list[str]], env=None) -> dict:
    """One run: items/s over the whole run (Ray's start included) and after it."""
    root, rest = layout
    t = time.perf_counter()
    subprocess.run([*OVISION, *root, *args, *rest, "--out", str(out)], check=True, env=env)
    wall = time.perf_counter() - t
    s = json.loads((out / "summary.json").read_text())
    session = s["this_session"]
    startup = session.get("startup_s", 0.0)
    return {
        "items": session["items"],
        "process_wall_s": round(wall, 2),
        "run_wall_s": session["wall_s"],
        "ray_startup_s": startup,
        "items_per_s": session["items_per_s"],
        "items_per_s_after_startup": round(session["items"] / (session["wall_s"] - startup), 3),
        "accuracy": s["accuracy"],
        "per_worker": s.get("per_worker"),
        "per_node": s.get("per_node"),
    }


def local() -> dict:
    parts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in (("t1_conse_932", T1), ("t2_adaptive_trust1_0.5b_60", T2)):
            rows = {}
            for label, layout in LAYOUTS.items():
                rows[label] = _measure(args, Path(tmp) / f"{name}-{len(rows)}", layout)
                print(name, label, rows[label], flush=True)
            base = rows["sequential"]["items_per_s"]
            parts[name] = {
                "command": "ovision " + " ".join(args) + " [layout]",
                "layouts": {k: " ".join(a + b) for k, (a, b) in LAYOUTS.items()},
                "runs": rows,
                "speedup_vs_sequential": {k: r["items_per_s"] / base for k, r in rows.items()},
            }
    return parts


def nodes() -> dict:
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # the token every node of the cluster shares
    port = "6391"
    address = f"127.0.0.1:{port}"
    start = [RAY, "start", "--num-cpus", "1", "--node-ip-address", "127.0.0.1"]
    try:
        subprocess.run(
            [*start, "--head", "--port", port, "--include-dashboard", "false"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [*start, "--address", address], check=True, env=env, stdout=subprocess.DEVNULL
        )
        time.sleep(5)
        with tempfile.TemporaryDirectory() as tmp:
            layout = ["--ray", "--ray-address", address, "--workers", "2"]
            run = _measure(T2, Path(tmp) / "nodes", ([], layout), env=env)
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, stdout=subprocess.DEVNULL)
    print("nodes", run, flush=True)
    return {
        "cluster": f"ray start --head --num-cpus 1 --port {port}; ray start --address {address} --num-cpus 1",
        "command": "ovision " + " ".join(T2) + " --ray --ray-address " + address + " --workers 2",
        "run": run,
        "nodes_with_items": len(run["per_node"] or {}),
    }


def main() -> None:
    wanted = sys.argv[1:] or ["hosted", "local", "nodes"]
    path = RESULTS / "eval_scale.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    result = {k: previous[k] for k in ("hosted", "local", "nodes") if k in previous}
    for part in wanted:  # each part written as soon as it is measured
        result[part] = {"hosted": hosted, "local": local, "nodes": nodes}[part]()
        result[part]["measured"] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), **machine()}
        write("eval_scale", result)


if __name__ == "__main__":
    main()
