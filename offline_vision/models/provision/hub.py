"""A Hugging Face–compatible model hub: list a pinned revision's files and fetch them verified."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from offline_vision.errors import ChecksumMismatch, DownloadError
from offline_vision.models.provision.download import download, safe_url
from offline_vision.models.provision.integrity import git_blob_sha1


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int | None
    sha256: str | None  # LFS files: the hub states their sha256
    blob_id: str | None  # other files: their git blob sha1


MAX_LISTING_BYTES = 32 * 2**20  # a repository's file list; 2,000,000 entries took 1.5 GB


def _revision(client: httpx.Client, endpoint: str, repo: str, revision: str) -> dict:
    url = f"{endpoint.rstrip('/')}/api/models/{repo}/revision/{revision}"
    where = safe_url(endpoint)
    try:
        with client.stream("GET", url, params={"blobs": "true"}) as r:
            if r.status_code != 200:
                raise DownloadError(
                    f"the hub answered HTTP {r.status_code} for {repo}@{revision[:12]}"
                )
            body = bytearray()
            for block in r.iter_bytes():
                body += block
                if len(body) > MAX_LISTING_BYTES:
                    raise DownloadError(
                        f"{where}: the file list of {repo} is over {MAX_LISTING_BYTES:,} bytes; "
                        "refused"
                    )
            content_type = r.headers.get("content-type", "?")
    except httpx.HTTPError as e:
        raise DownloadError(f"cannot reach the model hub at {where} ({type(e).__name__})") from None
    # A captive portal or proxy answers 200 with a web page: that is "no hub", not a crash.
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise DownloadError(
            f"{where} did not answer like a model hub (got {content_type})"
        ) from None


def resolve(client: httpx.Client, endpoint: str, repo: str, revision: str) -> str:
    """The commit `revision` (a branch, a tag or a commit) names on the hub now."""
    answer = _revision(client, endpoint, repo, revision)
    commit = answer.get("sha") if isinstance(answer, dict) else None
    if not isinstance(commit, str) or not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise DownloadError(f"the hub named no commit for {repo}@{revision}")
    return commit


def list_files(client: httpx.Client, endpoint: str, repo: str, revision: str) -> dict[str, HubFile]:
    where = safe_url(endpoint)
    answer = _revision(client, endpoint, repo, revision)
    try:
        siblings = answer["siblings"]
        files = {}
        for s in siblings:
            lfs = s.get("lfs") or {}
            size = lfs.get("size", s.get("size"))
            if size is not None and (not isinstance(size, int) or size < 0):
                raise ValueError("a size that is no count of bytes")
            files[s["rfilename"]] = HubFile(
                path=s["rfilename"],
                size=size,
                sha256=lfs.get("sha256"),
                blob_id=None if lfs else s.get("blobId"),
            )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DownloadError(f"{where} did not answer like a model hub (no file list)") from None
    return files


def fetch(
    client: httpx.Client,
    endpoint: str,
    repo: str,
    revision: str,
    info: HubFile,
    dest: Path,
    *,
    pinned_sha256: str | None = None,
) -> str:
    """Download one file of a pinned revision; returns its sha256 after every check passed."""
    if pinned_sha256 and info.sha256 and pinned_sha256 != info.sha256:
        raise ChecksumMismatch(f"{repo}/{info.path}: the hub's sha256 differs from the pinned one")
    url = f"{endpoint.rstrip('/')}/{repo}/resolve/{revision}/{info.path}"
    digest = download(
        client, url, dest, sha256=pinned_sha256 or info.sha256, size=info.size, desc=info.path
    )
    if info.blob_id and git_blob_sha1(dest) != info.blob_id:
        dest.unlink()
        raise ChecksumMismatch(f"{repo}/{info.path}: git blob id does not match the hub's")
    return digest


def fetch_many(
    client: httpx.Client,
    endpoint: str,
    repo: str,
    revision: str,
    listing: dict[str, HubFile],
    wanted: dict[str, str | dict | None],
    dest: Path,
) -> dict[str, str]:
    """Fetch `wanted` ({path: pinned sha256, {"sha256": …} or None}) of repo@revision, whose
    file list is `listing`, into dest; returns {path: sha256}."""
    got = {}
    for path, pinned in wanted.items():
        info = listing.get(path)
        if info is None:
            raise DownloadError(f"{repo}@{revision[:12]} has no file {path}")
        pinned_sha = pinned["sha256"] if isinstance(pinned, dict) else pinned
        got[path] = fetch(
            client, endpoint, repo, revision, info, dest / path, pinned_sha256=pinned_sha
        )
    return got
