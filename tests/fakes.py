"""The tests' one set of fakes: a Hugging Face–style hub and a PEP 503 package index, the one
OpenAI-compatible chat server (all on 127.0.0.1, answering the same URLs as the real services,
so the real pull / verify / resume / retry code runs), and the one fake scorer.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import numpy as np

from offline_vision.labels.sets import CIFAR10
from offline_vision.models.scorer import cosine_probabilities, l2_normalize

LFS_SUFFIXES = (".safetensors", ".onnx", ".bin", ".whl", ".gguf")


class FakeHub:
    """repos[repo][revision][path] = bytes; plus fault injection per path."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}
        self.branches: dict[str, dict[str, str]] = {}  # repo → branch → the commit it points at
        self.packages: dict[str, dict[str, bytes]] = {}  # project → filename → bytes
        self.cut_after: dict[str, int] = {}  # path → bytes sent before the first reply breaks
        self.corrupt: set[str] = set()  # paths served with one byte flipped
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.auth: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self.html_api = False  # answer the API with a web page, as a captive portal does
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(
        self, repo: str, revision: str, files: dict[str, bytes], *, branch: str | None = None
    ) -> None:
        """`files` at commit `revision`; with `branch`, that branch now points at it."""
        self.repos.setdefault(repo, {})[revision] = dict(files)
        if branch:
            self.branches.setdefault(repo, {})[branch] = revision

    def add_package(self, project: str, filename: str, data: bytes) -> None:
        self.packages.setdefault(project, {})[filename] = data

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                path = unquote(urlparse(self.path).path)
                hub.requests.append((path, self.headers.get("Range")))
                hub.auth.append((path, self.headers.get("Authorization")))
                if hub.html_api:
                    return self._send(b"<html><body>Sign in to continue</body></html>", "text/html")
                if path.startswith("/api/models/"):
                    return self._api(path[len("/api/models/") :])
                if path.startswith("/simple/"):
                    return self._simple(path[len("/simple/") :].strip("/"))
                if path.startswith("/files/"):
                    return self._package_file(path[len("/files/") :])
                if "/resolve/" in path:
                    return self._resolve(path.lstrip("/"))
                self.send_error(404)

            def _api(self, rest: str):
                repo, _, revision = rest.partition("/revision/")
                revision = hub.branches.get(repo, {}).get(revision, revision)
                files = hub.repos.get(repo, {}).get(revision)
                if files is None:
                    return self.send_error(404)
                siblings = []
                for name, data in files.items():
                    entry = {"rfilename": name, "size": len(data)}
                    if name.endswith(LFS_SUFFIXES):
                        entry["lfs"] = {
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "size": len(data),
                        }
                    else:
                        entry["blobId"] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                    siblings.append(entry)
                self._send(json.dumps({"id": repo, "sha": revision, "siblings": siblings}).encode())

            def _resolve(self, rest: str):
                repo_part, _, tail = rest.partition("/resolve/")
                revision, _, name = tail.partition("/")
                data = hub.repos.get(repo_part, {}).get(revision, {}).get(name)
                if data is None:
                    return self.send_error(404)
                self._serve_bytes(name, data)

            def _simple(self, project: str):
                files = hub.packages.get(project)
                if files is None:
                    return self.send_error(404)
                links = "".join(
                    f'<a href="../../files/{fn}#sha256={hashlib.sha256(d).hexdigest()}">{fn}</a><br/>'
                    for fn, d in files.items()
                )
                self._send(f"<html><body>{links}</body></html>".encode(), "text/html")

            def _package_file(self, filename: str):
                for files in hub.packages.values():
                    if filename in files:
                        return self._serve_bytes(filename, files[filename])
                self.send_error(404)

            def _serve_bytes(self, name: str, data: bytes):
                if name in hub.corrupt:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = hub.cut_after.pop(name, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def _send(self, body: bytes, ctype: str = "application/json"):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class ChatServer:
    """The one fake OpenAI-compatible server: /v1/chat/completions on 127.0.0.1.

    `reply(body, headers)` makes each answer: a string is the assistant's content (a 200 with
    usage), a (status, headers, payload) triple is sent as it is (payload: bytes, else
    JSON-encoded). Every request is kept in `seen` as {"body", "headers"}."""

    def __init__(self, reply):
        server = self
        self.seen: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw) if raw else None
                headers = dict(self.headers)
                server.seen.append({"body": body, "headers": headers})
                out = reply(body, headers)
                status, extra, payload = (200, {}, completion(out)) if isinstance(out, str) else out
                payload = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **extra}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.seen]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    stop = close


def completion(content: str, usage: dict | None = None) -> dict:
    """An OpenAI chat completion carrying `content`."""
    return {
        "choices": [{"message": {"role": "assistant", "content": content}}],
        "usage": usage if usage is not None else {"prompt_tokens": 7, "completion_tokens": 1},
    }


def scripted(*replies):
    """A `reply` giving `replies` in turn, the last one again once they run out."""
    queue = list(replies)
    return lambda body, headers: queue.pop(0) if len(queue) > 1 else queue[0]


class DelayedServer:
    """Deterministic answers to the dialogue's requests, each after `delay` seconds; counts how
    many were in flight at once."""

    def __init__(self, delay: float = 0.05):
        self.delay, self.inflight, self.peak = delay, 0, 0
        self.lock = threading.Lock()
        self.server = ChatServer(self.reply)

    def reply(self, body: dict, headers: dict) -> str:
        with self.lock:
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)
        time.sleep(self.delay)
        with self.lock:
            self.inflight -= 1
        rf = body.get("response_format") or {}
        schema = (rf.get("json_schema") or {}).get("schema") or rf.get("schema") or {}
        props = schema.get("properties", {})
        if "answer" in props:
            return json.dumps({"answer": props["answer"]["enum"][0]})
        if "candidates" in props:
            enum = props["candidates"].get("items", {}).get("enum") or list(CIFAR10)
            words = body["messages"][-1]["content"].lower()
            picked = [c for c in enum if c in words][:2] or enum[:2]
            return json.dumps({"candidates": picked if len(picked) == 2 else enum[:2]})
        return "cat"


class FakeScorer:
    """The one fake scorer, implementing the Scorer protocol over towers given as functions,
    `text(str)` and `image(obj)` → a vector: a label is the normalised mean of its templates'
    text vectors, probabilities the scaled softmax of cosines (float64 throughout, so the
    replay locks hold to the last digit). No weights; as deterministic as the functions."""

    standin = True
    score_kind = "softmax"

    def __init__(
        self, text, image, *, logit_scale=10.0, key="fake", kind="fake", templates=("{}",)
    ):
        self.text_model_key, self.logit_scale, self.kind = key, float(logit_scale), kind
        self.templates, self._text, self._image = tuple(templates), text, image
        self.encoded: list[str] = []  # every text the text tower was run on, in order
        self.images_encoded = 0

    def describe(self) -> dict:
        return {"scorer": self.kind, "standin": True}

    def knows_word(self, word: str) -> bool | None:
        return None  # no tokenizer: only a label's script tells

    def encode_images(self, images) -> np.ndarray:
        self.images_encoded += len(images)
        return l2_normalize(np.stack([self._image(im) for im in images]))

    def encode_with_features(self, images):
        return self.encode_images(images), None  # no richer features

    def encode_labels(self, labels, templates=("{}",)) -> np.ndarray:
        rows = []
        for label in labels:
            texts = [t.format(label) for t in templates]
            self.encoded += texts
            rows.append(np.mean([self._text(t) for t in texts], axis=0))
        return l2_normalize(np.stack(rows))

    def probabilities(self, image_embeddings, label_embeddings) -> np.ndarray:
        return cosine_probabilities(image_embeddings, label_embeddings, self.logit_scale)

    def scores(self, image_embeddings, label_embeddings) -> np.ndarray:
        return self.probabilities(image_embeddings, label_embeddings)
