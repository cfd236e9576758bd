"""The local model store: one directory per model, each with a manifest of files and sha256."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import jsonschema

from offline_vision.errors import (
    BadInput,
    BadModel,
    ChecksumMismatch,
    ModelFileMissing,
    ModelNotFound,
)
from offline_vision.files import open_output, write_atomic
from offline_vision.models.provision import registry
from offline_vision.models.provision.integrity import CHUNK, read_verified, sha256_file

MANIFEST = "manifest.json"
FORMAT = "ovision-bundle/1"
# A model name is one plain path component: it becomes a directory under the models folder.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def ensure_dir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


def check_name(name: object) -> str:
    """`name` if it is a plain registry-style model name; BadInput otherwise (`.`, `..`, `a/b`…)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.endswith("."):
        raise BadInput(
            f"invalid model name {name!r}: use letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit (no path separators)"
        )
    return name


def check_rel(rel: object) -> str:
    """A manifest file key, refused unless it is a relative POSIX path with no `..` or `.`."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        raise BadInput(f"unsafe file name {rel!r} in manifest")
    parts = PurePosixPath(rel).parts
    if rel.startswith("/") or any(p in ("..", ".", "") for p in parts) or rel.endswith("/"):
        raise BadInput(f"unsafe file name {rel!r} in manifest (absolute, '..' or '.')")
    return rel


def inside(root: Path, rel: str) -> Path:
    """root/rel, refused when its resolved location (symlinks followed) is not inside root."""
    path = root / check_rel(rel)
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise BadInput(f"{rel!r} resolves outside {root}; refusing it")
    return path


def provision_hint(name: str) -> str:
    if registry.MODELS.get(name, {}).get("kind") == "clip":
        return (
            f"run `ovision models pull {name}` where a model hub is reachable, "
            "or `ovision models import DIR|ARCHIVE` on an air-gapped machine"
        )
    return f"run `ovision models pull {name}`"


@dataclass(frozen=True)
class Bundle:
    """An installed model: a directory and the manifest that lists its verified files."""

    name: str
    path: Path
    manifest: dict

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def has(self, rel: str) -> bool:
        return rel in self.manifest["files"]

    def file(self, rel: str) -> Path:
        if rel not in self.manifest["files"]:
            raise ModelNotFound(f"{self.name} has no {rel}; {provision_hint(self.name)}")
        return self.path / rel

    def sha256(self, rel: str) -> str:
        return self.manifest["files"][rel]["sha256"]

    def read(self, rel: str) -> bytes:
        """The file's bytes, checked against the manifest's sha256 (for small files)."""
        return read_verified(self.file(rel), self.sha256(rel))

    def verified_path(self, rel: str) -> Path:
        """The file's path after a streamed sha256 check (for model files that a runtime maps
        itself: holding their bytes in Python as well would double peak memory)."""
        path = self.file(rel)
        if not path.exists():
            raise ModelFileMissing(f"{path} is missing; run `ovision models verify {self.name}`")
        digest = sha256_file(path)
        if digest != self.sha256(rel):
            raise ChecksumMismatch(
                f"{path}: sha256 {digest[:16]}… does not match the recorded "
                f"{self.sha256(rel)[:16]}… (the file changed or is corrupt; pull or import "
                f"{self.name} again)"
            )
        return path

    def verify(self) -> list[str]:
        """Re-hash every file; returns the problems found (empty when all is well)."""
        problems = []
        for rel, meta in self.manifest["files"].items():
            p = self.path / rel
            if not p.exists():
                problems.append(f"{rel}: missing")
            elif sha256_file(p) != meta["sha256"]:
                problems.append(f"{rel}: sha256 mismatch")
        return problems


# What each kind of bundle must hold, besides its manifest (CLIP's towers are named per
# precision in the manifest's own "files" map, so only the tokenizer is fixed).
REQUIRED = {
    "gguf": ("model.gguf",),
    "conse": ("image_model.onnx", "text_model.onnx", "tokenizer.json"),
    "clip": ("tokenizer.json",),
    "siglip": ("tokenizer.json",),
}
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["name", "kind", "files"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"enum": list(REQUIRED)},
        "files": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["sha256", "size"],
                "properties": {
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "size": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
}


def manifest_problem(manifest) -> str | None:
    """What is wrong with a bundle manifest (None: nothing)."""
    try:
        jsonschema.validate(manifest, MANIFEST_SCHEMA)
    except jsonschema.ValidationError as e:
        return f"{'/'.join(map(str, e.absolute_path)) or 'manifest'}: {e.message}"
    missing = [f for f in REQUIRED[manifest["kind"]] if f not in manifest["files"]]
    return f"a {manifest['kind']} bundle needs {', '.join(missing)}" if missing else None


def model_dir(models_dir: Path, name: str) -> Path:
    return models_dir / check_name(name)


def load(models_dir: Path, name: str) -> Bundle:
    d = model_dir(models_dir, name)
    mf = d / MANIFEST
    if not mf.exists():
        raise ModelNotFound(f"model {name!r} is not provisioned; {provision_hint(name)}")
    try:
        manifest = json.loads(mf.read_text())
    except (OSError, ValueError) as e:
        raise ChecksumMismatch(f"{mf} is unreadable ({e}); pull or import {name} again") from e
    problem = manifest_problem(manifest)
    if problem:
        raise BadModel(f"{mf}: {problem}; pull or import {name} again")
    return Bundle(name, d, manifest)


def installed(models_dir: Path) -> list[str]:
    if not models_dir.exists():
        return []
    return sorted(p.name for p in models_dir.iterdir() if (p / MANIFEST).exists())


def _copy_verified(src: Path, dest: Path, expected: str | None, *, move: bool) -> str:
    """Copy src to dest, hashing the bytes written; raises unless they hash to `expected`."""
    if src.is_symlink() or not src.is_file():
        raise BadInput(f"{src}: not a regular file")
    if move and expected is None:
        shutil.move(src, dest)
        return sha256_file(dest)
    h = hashlib.sha256()
    with open(src, "rb") as fin, open_output(dest, "xb") as fout:
        while block := fin.read(CHUNK * 8):
            h.update(block)
            fout.write(block)
    digest = h.hexdigest()
    if expected is not None and digest != expected:
        raise ChecksumMismatch(
            f"{src}: does not verify: sha256 {digest[:16]}… is not the manifest's {expected[:16]}…"
        )
    if move:
        src.unlink()
    return digest


def write_bundle(
    directory: Path,
    name: str,
    kind: str,
    files: dict[str, Path],
    meta: dict,
    *,
    expected: dict[str, str] | None = None,
    move: bool = False,
) -> dict:
    """Fill an empty `directory` with `files` and a manifest (written last); returns it.

    Every destination is checked to lie inside `directory`; with `expected` (rel → sha256) the
    bytes are hashed as they are copied, so what is installed is exactly what was verified.
    """
    listing = {}
    for rel, src in files.items():
        dest = inside(directory, rel)  # `directory` is fresh and only ever gets regular files
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = _copy_verified(Path(src), dest, (expected or {}).get(rel), move=move)
        listing[rel] = {"sha256": digest, "size": dest.stat().st_size}
    manifest = {"format": FORMAT, "name": name, "kind": kind, **meta, "files": listing}
    problem = manifest_problem(manifest)
    if problem:
        raise BadInput(f"{name}: not a usable bundle ({problem})")
    write_atomic(directory / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def replace_dir(new: Path, final: Path) -> None:
    """Put directory `new` at `final`; an existing `final` is moved aside first, then deleted."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / "d")
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old)


def install(
    models_dir: Path,
    name: str,
    kind: str,
    files: dict[str, Path],
    meta: dict,
    *,
    move: bool = False,
    expected: dict[str, str] | None = None,
) -> Bundle:
    """Copy (or move) `files` into a fresh model directory and write its manifest last.

    The manifest is what makes a model count as installed, so a crash mid-way leaves nothing
    that looks usable. Nothing outside `models_dir/name` is written.
    """
    final = model_dir(models_dir, name)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=models_dir))
    try:
        manifest = write_bundle(staging, name, kind, files, meta, expected=expected, move=move)
        replace_dir(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle(name, final, manifest)


def remove(models_dir: Path, name: str) -> None:
    d = model_dir(models_dir, name)
    if not (d / MANIFEST).exists():
        raise ModelNotFound(f"model {name!r} is not installed")
    shutil.rmtree(d)
