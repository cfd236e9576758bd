"""The local model store: one directory per model, each with a manifest of files and sha256."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from offline_vision.errors import ChecksumMismatch, ModelNotFound
from offline_vision.models import registry
from offline_vision.models.integrity import read_verified, sha256_file

MANIFEST = "manifest.json"
FORMAT = "ovision-bundle/1"


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
            raise ChecksumMismatch(f"{path} is missing; run `ovision models verify {self.name}`")
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


def model_dir(models_dir: Path, name: str) -> Path:
    return models_dir / name


def load(models_dir: Path, name: str) -> Bundle:
    d = model_dir(models_dir, name)
    mf = d / MANIFEST
    if not mf.exists():
        raise ModelNotFound(f"model {name!r} is not provisioned; {provision_hint(name)}")
    try:
        manifest = json.loads(mf.read_text())
    except (OSError, ValueError) as e:
        raise ChecksumMismatch(f"{mf} is unreadable ({e}); pull or import {name} again") from e
    return Bundle(name, d, manifest)


def installed(models_dir: Path) -> list[str]:
    if not models_dir.exists():
        return []
    return sorted(p.name for p in models_dir.iterdir() if (p / MANIFEST).exists())


def install(
    models_dir: Path,
    name: str,
    kind: str,
    files: dict[str, Path],
    meta: dict,
    *,
    move: bool = False,
) -> Bundle:
    """Copy (or move) `files` into a fresh model directory and write its manifest last.

    The manifest is what makes a model count as installed, so a crash mid-way leaves nothing
    that looks usable.
    """
    final = model_dir(models_dir, name)
    staging = final.with_name(f".{name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    listing = {}
    for rel, src in files.items():
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if move:
            shutil.move(src, dest)
        else:
            shutil.copyfile(src, dest)
        listing[rel] = {"sha256": sha256_file(dest), "size": dest.stat().st_size}
    manifest = {"format": FORMAT, "name": name, "kind": kind, **meta, "files": listing}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return Bundle(name, final, manifest)


def remove(models_dir: Path, name: str) -> None:
    d = model_dir(models_dir, name)
    if not (d / MANIFEST).exists():
        raise ModelNotFound(f"model {name!r} is not installed")
    shutil.rmtree(d)
