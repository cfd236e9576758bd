"""Any OpenAI-compatible `/v1/chat/completions` server (the hosted option), over httpx.

Constrained answers use the strongest mechanism the server accepts, found on first use:
`response_format` json_schema (OpenAI), then json_object + schema (llama.cpp, vLLM and others),
then plain instructions — in every case followed by validation and one repair turn.
The API key is sent in a header only; it never appears in errors, logs or transcripts.
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
from urllib.parse import urlparse

import httpx

from offline_vision.config import env_number
from offline_vision.errors import ReasonerError
from offline_vision.models.provision.download import safe_url
from offline_vision.models.reasoners.base import BaseReasoner, Usage
from offline_vision.prompts import CHOICE_INSTRUCTION, CHOICE_ONLY, SCHEMA_INSTRUCTION
from offline_vision.retry import Transient, retrying

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRIES = 4
MAX_ANSWER_BYTES = 16 * 2**20  # a chat answer of a few thousand tokens is some kilobytes
ANSWER_DEADLINE_S = 600.0  # per request, the whole answer; OVISION_ANSWER_DEADLINE_S overrides
MODES = ("json_schema", "json_object", "prompt")
MIN_SECRET = 6  # characters; see _redact


def _is_local(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def rejects_format(r: httpx.Response) -> bool:
    """The server refused the request's response_format (some, like llama-cpp-python's, say so
    with a 500 that names the field rather than a 400/422)."""
    if r.status_code in (400, 404, 422):
        return True
    return r.status_code >= 500 and "response_format" in r.text


def choice_schema(choices) -> dict:
    return {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": list(choices)}},
        "required": ["answer"],
        "additionalProperties": False,
    }


class OpenAICompatReasoner(BaseReasoner):
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        backoff: float = 0.5,
        client: httpx.Client | None = None,
    ):
        """`client`: the HTTP client to send through (tests give one with an
        `httpx.MockTransport`); the key and URL credentials go with each request either way."""
        self.model = model
        self.name = f"openai:{model}"
        self._key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._secrets = [self._key] if self._key else []
        auth = None
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise ReasonerError("the reasoner's base URL is not a valid URL") from None
        if parsed.userinfo:
            # user:password in the URL: never shown or recorded, and never a silent substitute
            # for the Bearer key.
            if self._key:
                raise ReasonerError(
                    f"{safe_url(url)}: the base URL carries credentials and OPENAI_API_KEY is "
                    "set; use one of them"
                )
            auth = httpx.BasicAuth(parsed.username, parsed.password)
            token = base64.b64encode(f"{parsed.username}:{parsed.password}".encode()).decode()
            self._secrets += [token, parsed.password, parsed.username]
            url = safe_url(url)
        self.base_url = url  # credential-free: safe to print and record
        if not self._key and auth is None and not _is_local(self.base_url):
            raise ReasonerError(
                f"OPENAI_API_KEY is not set; {self.base_url} needs a key (set it in the environment)"
            )
        self._headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._auth = auth
        self._client = client or httpx.Client(timeout=timeout)
        self._backoff = backoff
        self._mode: str | None = None  # the constrained-output mode this server accepts

    def describe(self) -> dict:
        return {
            "reasoner": "openai_compat",
            "name": self.name,
            "model": self.model,
            "base_url": self.base_url,
            "constraint_mode": self._mode,
        }

    def _redact(self, text: str) -> str:
        """`text` with every secret of this reasoner replaced (before any truncation). Only
        secrets of at least MIN_SECRET characters are replaced: a shorter one is no secret
        worth the name, and replacing it would rewrite answers ("c" in every word)."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= MIN_SECRET:
                text = text.replace(secret, "***")
        return text

    def _post(self, body: dict) -> httpx.Response:
        url = f"{self.base_url}/chat/completions"

        def attempt() -> httpx.Response:
            r = self._bounded_post(url, body)
            if r.status_code == 429 or (r.status_code >= 500 and not rejects_format(r)):
                raise Transient(f"HTTP {r.status_code}", _seconds(r.headers.get("Retry-After")))
            return r

        try:
            return retrying(attempt, tries=RETRIES, backoff=self._backoff)
        except Transient as e:
            raise ReasonerError(
                f"{self.name}: server at {self.base_url} {e.problem} after {RETRIES} tries"
            ) from None

    def _bounded_post(self, url: str, body: dict) -> httpx.Response:
        """The server's whole answer, refused past MAX_ANSWER_BYTES or ANSWER_DEADLINE_S (an
        endless body grew until memory ran out; a trickle passed the per-read timeout)."""
        auth = self._auth or httpx.USE_CLIENT_DEFAULT  # URL credentials, where given
        limit = env_number("OVISION_ANSWER_DEADLINE_S", ANSWER_DEADLINE_S, float)
        deadline, got, chunks = time.monotonic() + limit, 0, []
        with self._client.stream("POST", url, json=body, headers=self._headers, auth=auth) as r:
            for block in r.iter_bytes():
                got += len(block)
                if got > MAX_ANSWER_BYTES:
                    raise ReasonerError(
                        f"{self.name}: the answer from {self.base_url} is over "
                        f"{MAX_ANSWER_BYTES:,} bytes; refused"
                    )
                if time.monotonic() > deadline:
                    raise ReasonerError(
                        f"{self.name}: no whole answer from {self.base_url} in {limit:.0f} s "
                        "(OVISION_ANSWER_DEADLINE_S)"
                    )
                chunks.append(block)
            drop = (b"content-encoding", b"content-length", b"transfer-encoding")
            kept = [(k, v) for k, v in r.headers.raw if k.lower() not in drop]  # body decoded
            return httpx.Response(
                r.status_code, headers=kept, content=b"".join(chunks), request=r.request
            )

    def _request(self, messages, *, choices, schema, max_tokens, temperature, seed, mode) -> dict:
        body = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        wanted = choice_schema(choices) if choices is not None else schema
        if choices is not None:
            body["max_tokens"] = max_tokens + 16  # room for the {"answer": …} wrapper
        if wanted is not None:
            if mode == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": wanted, "strict": True},
                }
            elif mode == "json_object":
                body["response_format"] = {"type": "json_object", "schema": wanted}
            else:
                hint = (
                    CHOICE_INSTRUCTION.format(choices=", ".join(map(json.dumps, choices)))
                    if choices is not None
                    else SCHEMA_INSTRUCTION.format(schema=json.dumps(schema))
                )
                body["messages"] = [*body["messages"], {"role": "user", "content": hint}]
        return body

    def _raw(
        self, messages, *, choices, schema, max_tokens, temperature, seed
    ) -> tuple[str, Usage]:
        modes = [self._mode] if self._mode else list(MODES)
        if choices is None and schema is None:
            modes = ["prompt"]
        for mode in modes:
            body = self._request(
                messages,
                choices=choices,
                schema=schema,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
                mode=mode,
            )
            r = self._post(body)
            if "response_format" in body and rejects_format(r):
                continue  # this server does not take that response_format: try the next mode
            if r.status_code == 401:
                raise ReasonerError(f"{self.name}: the server rejected the API key (HTTP 401)")
            if r.status_code != 200:
                raise ReasonerError(
                    f"{self.name}: HTTP {r.status_code}: {self._redact(r.text)[:200]}"
                )
            if choices is not None or schema is not None:
                self._mode = mode
            return self._parse(r, choices)
        raise ReasonerError(f"{self.name}: the server refused every response_format")

    def choice_probabilities(self, messages, choices) -> dict[str, float] | None:
        """From the server's `logprobs` for the answer's first token (top 20), where each choice
        starts with a token of its own; None where the server gives none or they are ambiguous."""
        hint = CHOICE_ONLY.format(choices=", ".join(choices))
        body = {
            "model": self.model,
            "messages": [*messages, {"role": "user", "content": hint}],
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": 20,
        }
        r = self._post(body)
        try:
            top = r.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            pairs = [
                (str(t["token"]).strip().strip('"{').lower(), float(t["logprob"])) for t in top
            ]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None
        scores = {}
        for choice in choices:
            matched = [(tok, lp) for tok, lp in pairs if tok and choice.lower().startswith(tok)]
            if not matched:
                return None  # not among the top 20: the server's numbers cannot rank it
            tok, lp = max(matched, key=lambda x: x[1])
            if sum(c.lower().startswith(tok) for c in choices) > 1:
                return None  # a first token shared by two choices cannot tell them apart
            scores[choice] = lp
        top_lp = max(scores.values())
        total = sum(math.exp(v - top_lp) for v in scores.values())
        return {c: math.exp(v - top_lp) / total for c, v in scores.items()}

    def _parse(self, r: httpx.Response, choices) -> tuple[str, Usage]:
        try:
            data = r.json()
            text = data["choices"][0]["message"].get("content") or ""
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as e:
            raise ReasonerError(
                f"{self.name}: malformed response ({e}): {self._redact(r.text)[:200]!r}"
            ) from None
        # A server that echoes the key back must not get it into transcripts or records.
        text = self._redact(text)
        if choices is not None:
            try:  # {"answer": "..."} → the answer itself, so validation sees the choice
                obj = json.loads(text)
                if isinstance(obj, dict) and isinstance(obj.get("answer"), str):
                    text = obj["answer"]
            except (ValueError, RecursionError):  # nested past Python's limit: no answer object
                pass
        return text, _usage(data.get("usage"), self.name)


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds; None for an HTTP date or anything that is not a plain number."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


def _usage(u, name: str) -> Usage:
    """Token counts as the server gave them (absent: 0); a malformed report is an error."""
    if u is None:
        return Usage(0, 0, None)
    counts = (
        [u.get(k, 0) for k in ("prompt_tokens", "completion_tokens")] if isinstance(u, dict) else []
    )
    if len(counts) != 2 or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts
    ):
        raise ReasonerError(f"{name}: malformed response (usage is not a pair of token counts)")
    return Usage(counts[0], counts[1], None)
