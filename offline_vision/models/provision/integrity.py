"""sha256 checks for model files (no network code here, so loading a model stays light)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from offline_vision.errors import ChecksumMismatch, ModelFileMissing

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_verified(path: Path, sha256: str) -> bytes:
    """Read a whole file and check its sha256 on the same bytes that will be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise ModelFileMissing(f"{path} is missing; run `ovision models verify`") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ChecksumMismatch(
            f"{path}: sha256 {digest[:16]}… does not match the recorded {sha256[:16]}… "
            "(the file changed or is corrupt; `ovision models pull` or `import` it again)"
        )
    return data


def git_blob_sha1(path: Path) -> str:
    """The id git (and the Hugging Face hub) gives a non-LFS file."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
