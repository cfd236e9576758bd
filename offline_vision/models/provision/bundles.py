"""The air-gapped path: import a bundle, checkpoint, GGUF or archive; export a checkpoint; pack."""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from pathlib import Path

from offline_vision.config import Settings
from offline_vision.errors import BadInput, ChecksumMismatch, ModelFileMissing
from offline_vision.files import replacing
from offline_vision.models.provision import archive, registry, store
from offline_vision.models.provision.integrity import sha256_file
from offline_vision.models.provision.store import ensure_dir


def import_path(settings: Settings, path: Path, name: str | None = None) -> store.Bundle:
    """Install from a directory or archive: an exported bundle, or a CLIP checkpoint to export."""
    if name is not None:
        store.check_name(name)
    if not path.exists():
        raise BadInput(f"{path}: no such file or directory")
    if path.is_file() and path.name.endswith(archive.SUFFIXES):
        with tempfile.TemporaryDirectory(dir=ensure_dir(settings.home)) as tmp:
            return import_path(settings, archive.unpack(path, Path(tmp)), name)
    if path.is_file() and path.suffix == ".gguf":
        return _import_gguf(settings, path, name)
    if path.is_dir() and (path / store.MANIFEST).exists():
        return _import_bundle(settings, path, name)
    if path.is_dir() and (path / "config.json").exists():
        from offline_vision.export.checkpoints import export_checkpoint

        source = _directory_source(path)
        with tempfile.TemporaryDirectory(dir=ensure_dir(settings.home)) as tmp:
            photos = settings.data_dir / "photos"
            kind, files, meta = export_checkpoint(path, Path(tmp), photo_dir=photos, source=source)
            if name is None:
                name = registry.CLIP if kind == "clip" else _name_of(path)
            return store.install(settings.models_dir, name, kind, files, meta, move=True)
    raise BadInput(
        f"{path}: not a model bundle (manifest.json), a CLIP or SigLIP checkpoint (config.json "
        "+ model.safetensors), a .gguf file or an archive of one"
    )


def _name_of(ckpt: Path) -> str:
    """A checkpoint directory's name as an install name, or one line asking for --name."""
    name = ckpt.resolve().name.lower()
    if not store.NAME_RE.fullmatch(name) or name in registry.MODELS:
        raise BadInput(f"{ckpt}: name the install with --name (its directory name will not do)")
    return name


def _directory_source(ckpt: Path) -> dict:
    """Where a checkpoint directory came from: its path and each file's sha256."""
    return {
        "type": "directory",
        "path": str(ckpt.resolve()),
        "files": {f.name: sha256_file(f) for f in sorted(ckpt.iterdir()) if f.is_file()},
    }


def read_manifest(path: Path) -> dict:
    """A bundle's manifest, checked for shape; every file key is refused unless it is safe."""
    mf = path / store.MANIFEST
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadInput(f"{mf}: not a readable JSON manifest ({e})") from None
    if not isinstance(manifest, dict):
        raise BadInput(f"{mf}: a manifest is a JSON object, not {type(manifest).__name__}")
    for key, kind in (("kind", str), ("files", dict)):
        if not isinstance(manifest.get(key), kind):
            raise BadInput(f"{mf}: missing or malformed {key!r}")
    for rel, meta in manifest["files"].items():
        store.check_rel(rel)
        if not (isinstance(meta, dict) and isinstance(meta.get("sha256"), str)):
            raise BadInput(f"{mf}: file {rel!r} has no sha256")
    return manifest


def _import_bundle(settings: Settings, path: Path, name: str | None) -> store.Bundle:
    manifest = read_manifest(path)
    target = store.check_name(name if name is not None else manifest.get("name", path.name))
    # Sources are resolved inside the bundle (no symlink leads out), and the bytes copied are
    # the bytes hashed against the manifest.
    files = {rel: store.inside(path, rel) for rel in manifest["files"]}
    missing = [rel for rel, src in files.items() if not src.is_file()]
    if missing:
        raise ModelFileMissing(f"{path}: bundle does not verify: {', '.join(missing)} missing")
    expected = {rel: m["sha256"] for rel, m in manifest["files"].items()}
    meta = {k: v for k, v in manifest.items() if k not in ("format", "name", "kind", "files")}
    return store.install(
        settings.models_dir, target, manifest["kind"], files, meta, expected=expected
    )


def _import_gguf(settings: Settings, path: Path, name: str | None) -> store.Bundle:
    digest = sha256_file(path)
    known = [
        n for n, s in registry.MODELS.items() if s.get("kind") == "gguf" and s["sha256"] == digest
    ]
    if not known:
        raise BadInput(
            f"{path}: sha256 {digest[:16]}… is not a registry GGUF; use any GGUF directly with "
            f"--reasoner local:{path}"
        )
    meta = {
        "source": {"type": "import", "path": str(path.resolve())},
        "about": registry.MODELS[known[0]]["about"],
    }
    # The bytes installed are the bytes hashed: install checks its copy against `digest`.
    return store.install(
        settings.models_dir,
        name if name is not None else known[0],
        "gguf",
        {"model.gguf": path},
        meta,
        expected={"model.gguf": digest},
    )


def _is_our_export(d: Path) -> bool:
    try:
        manifest = json.loads((d / store.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == store.FORMAT


def export_checkpoint(settings: Settings, checkpoint: Path, out: Path, *, force: bool) -> dict:
    """Export a CLIP or SigLIP checkpoint directory to a bundle at `out`; returns the manifest.

    `out` is replaced only when it is missing, empty, an earlier export (its manifest says so)
    or `force` is given; the export is written to a fresh sibling and renamed into place, so a
    failure leaves `out` as it was.
    """
    from offline_vision.export.checkpoints import export_checkpoint

    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not _is_our_export(out) and not force:
        raise BadInput(
            f"--out {out} is a non-empty directory that is not an ovision export; "
            "choose another --out, or pass --force to replace it"
        )
    if checkpoint.resolve() == out.resolve() or checkpoint.resolve().is_relative_to(out.resolve()):
        raise BadInput(f"--out {out} would replace the checkpoint itself")
    source = _directory_source(checkpoint)
    parent = ensure_dir(out.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=parent))
    try:
        kind, files, meta = export_checkpoint(
            checkpoint, work / "onnx", photo_dir=settings.data_dir / "photos", source=source
        )
        (work / "bundle").mkdir()
        manifest = store.write_bundle(work / "bundle", out.name, kind, files, meta, move=True)
        store.replace_dir(work / "bundle", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def pack(settings: Settings, name: str, out: Path) -> Path:
    """Write an installed model (verified first) as an archive that `import` accepts."""
    bundle = store.load(settings.models_dir, name)
    problems = bundle.verify()
    if problems:
        raise ChecksumMismatch(f"{name} does not verify ({'; '.join(problems)}); pull it again")
    gz = out.name.endswith((".tar.gz", ".tgz"))
    with replacing(out) as tmp, tarfile.open(tmp, "w:gz" if gz else "w") as t:
        t.add(bundle.path / store.MANIFEST, arcname=f"{name}/{store.MANIFEST}")
        for rel in bundle.manifest["files"]:
            t.add(bundle.path / rel, arcname=f"{name}/{rel}")
    return out
