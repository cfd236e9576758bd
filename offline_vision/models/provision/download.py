"""Resumable, verified downloads (the only module that touches the network)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import httpx

from offline_vision.config import env_number
from offline_vision.errors import ChecksumMismatch, DownloadError
from offline_vision.files import open_output
from offline_vision.progress import bar as progress_bar
from offline_vision.retry import Transient, retrying

RETRIES = 4
TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # per read: a trickle passes it, the deadline not
# A file listed without a size (a config, a tokenizer) is refused past this many bytes; one
# with a size, past its size. OVISION_MAX_DOWNLOAD_BYTES overrides the first.
MAX_UNSIZED_BYTES = 256 * 2**20
# Each download gives up after this many seconds plus one per 100 kB it should hold (a 1 GB
# GGUF: 10,600 s at the least, 100 kB/s); OVISION_DOWNLOAD_DEADLINE_S overrides the first.
# What came stays in the .part file: pulling again resumes it.
DEADLINE_S = 600.0
MIN_RATE = 100_000  # bytes per second


class HostToken(httpx.Auth):
    """A bearer token sent to one host only (HF_TOKEN to the hub, never to a package index).

    httpx drops the Authorization header itself when a redirect leaves the origin."""

    def __init__(self, host: str, token: str):
        self.host, self.token = host, token

    def auth_flow(self, request: httpx.Request):
        if request.url.host == self.host:
            request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def make_client(token_host: str | None = None) -> httpx.Client:
    """A download client; with `token_host` (the hub's URL), HF_TOKEN goes to that host only."""
    auth = None
    token = os.environ.get("HF_TOKEN")
    if token and token_host:
        auth = HostToken(httpx.URL(token_host).host, token)
    return httpx.Client(
        follow_redirects=True,
        timeout=TIMEOUT,
        headers={"User-Agent": "offline_vision"},
        auth=auth,
        trust_env=True,
    )


def _hash_prefix(path: Path) -> hashlib._Hash:
    if not path.exists():
        return hashlib.sha256()
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256")


def download(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    desc: str | None = None,
) -> str:
    """Download `url` to `dest`, resuming a previous `.part`, and return the file's sha256.

    With `sha256` given, a mismatch deletes the partial file and raises ChecksumMismatch.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    label = desc or dest.name

    def attempt() -> str:
        h, whole = _stream_into(client, url, part, size, label)
        got = part.stat().st_size
        if size is not None and got < size:
            raise Transient(f"connection closed at {got} of {size} bytes")
        digest = h.hexdigest()
        if whole and sha256 is not None and digest != sha256:
            # The server said the part holds the whole file (416), but it is not the file:
            # not a download error, a stale part. Start again from nothing.
            part.unlink()
            raise Transient("a complete-looking partial file did not verify")
        if sha256 is not None and digest != sha256:
            part.unlink()
            raise ChecksumMismatch(
                f"{label}: downloaded sha256 {digest[:16]}… is not the pinned {sha256[:16]}… "
                f"(from {_safe(url)}); the partial file was deleted"
            )
        if size is not None and got != size:
            part.unlink()
            raise ChecksumMismatch(f"{label}: got {got} bytes, expected {size}")
        os.replace(part, dest)
        return digest

    try:
        return retrying(attempt, tries=RETRIES, backoff=0.5)
    except Transient as e:
        raise DownloadError(f"{label}: download from {_safe(url)} failed ({e.problem})") from None
    except httpx.HTTPError as e:  # not worth retrying: a redirect loop, a body that is not gzip
        raise DownloadError(
            f"{label}: download from {_safe(url)} failed ({type(e).__name__})"
        ) from None


def _stream_into(
    client: httpx.Client, url: str, part: Path, size: int | None, label: str
) -> tuple[hashlib._Hash, bool]:
    """Append `url`'s bytes to `part` (resuming from its length); returns the whole file's
    running sha256, and whether the server said the part already held all of it (HTTP 416 to
    the resuming range: the caller verifies it). Transient failures raise Transient."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    h = _hash_prefix(part)
    headers = {"Range": f"bytes={have}-"} if have else {}
    with client.stream("GET", url, headers=headers) as r:
        if r.status_code == 416 and have and (size is None or have == size):
            return h, True  # nothing left to fetch: the part may be complete
        if r.status_code == 200 and have:
            have = 0  # the server ignored the range: start over
            h = hashlib.sha256()
            part.unlink()
        elif r.status_code not in (200, 206):
            if r.status_code == 429 or r.status_code >= 500:
                raise Transient(f"HTTP {r.status_code}")
            raise DownloadError(f"{label}: HTTP {r.status_code} from {_safe(url)}")
        total = size or (have + int(r.headers.get("Content-Length", 0)) or None)
        cap = (
            size
            if size is not None
            else int(env_number("OVISION_MAX_DOWNLOAD_BYTES", MAX_UNSIZED_BYTES))
        )
        limit = (
            env_number("OVISION_DOWNLOAD_DEADLINE_S", DEADLINE_S, float) + (size or 0) / MIN_RATE
        )
        deadline, got = time.monotonic() + limit, have
        with (
            open_output(part, "ab") as f,
            progress_bar(total, label, unit="B", initial=have, unit_scale=True) as bar,
        ):
            for block in r.iter_bytes():
                got += len(block)
                if got > cap:
                    f.close()
                    part.unlink()
                    raise DownloadError(
                        f"{label}: {_safe(url)} sent more than {cap:,} bytes"
                        + (" (its listed size)" if size is not None else " (no size listed)")
                    )
                f.write(block)
                h.update(block)
                bar.update(len(block))
                if time.monotonic() > deadline:
                    raise DownloadError(
                        f"{label}: gave up after {limit:.0f} s with {got:,} bytes from "
                        f"{_safe(url)}; pulling again resumes it"
                    )
    return h, False


def _safe(url: str) -> str:
    """A URL without query or credentials, fit for an error message."""
    return safe_url(str(httpx.URL(url).copy_with(query=None)))


def safe_url(url: str) -> str:
    """`url` with any user:password removed: what may be printed, logged or recorded."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<unparseable URL>"
    if not u.userinfo:
        return url
    return str(u.copy_with(username=None, password=None))
