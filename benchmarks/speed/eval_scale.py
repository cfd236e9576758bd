"""Hosted-reasoner throughput: `ovision eval pixels --strategy zero-shot` (one request per
item) against a fake OpenAI-compatible server on 127.0.0.1 that answers after 300 ms, at
--concurrency 1, 4 and 16 on 200 MNIST test digits → benchmarks/results/eval_scale.json.

The Ray backend and the two-node runs of issue 19 are not built yet: not measured here.

    python -m benchmarks.speed.eval_scale
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.common import write

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


def main() -> None:
    server, url = serve()
    rows = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for c in (1, 4, 16):
                out = Path(tmp) / f"c{c}"
                t = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "offline_vision",
                        "-q",
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
                print(c, rows[c], flush=True)
    finally:
        server.shutdown()
    base = rows[1]["items_per_s"]
    result = {
        "delay_s": DELAY,
        "items": ITEMS,
        "command": "ovision eval pixels --strategy zero-shot --reasoner openai:fake --concurrency C",
        "concurrency": rows,
        "speedup": {c: r["items_per_s"] / base for c, r in rows.items()},
        "target": "≥ 12× at 16 against 1",
    }
    write("eval_scale", result)
    print(json.dumps(result["speedup"]))


if __name__ == "__main__":
    main()
