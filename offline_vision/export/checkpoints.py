"""Which exporter a checkpoint directory goes to, read from its config.json (no torch here)."""

from __future__ import annotations

from pathlib import Path

from offline_vision.errors import BadInput
from offline_vision.export.checks import json_object


def checkpoint_kind(config: dict, where: str) -> str:
    """'clip' or 'siglip' for a config the exporters take; else one line saying why not."""
    kind, arch = config.get("model_type"), config.get("architectures") or []
    if kind == "clip" or "CLIPModel" in arch:
        return "clip"
    if kind == "siglip":  # SigLIP, and SigLIP 2's fixed-resolution checkpoints
        return "siglip"
    if kind == "siglip2":
        raise BadInput(
            f"{where}: a SigLIP 2 NaFlex (variable-resolution) checkpoint, not taken yet; the "
            "fixed-resolution SigLIP 2 checkpoints (model_type siglip, e.g. "
            "google/siglip2-base-patch16-224) are"
        )
    raise BadInput(f"{where}: a {kind or 'unknown'} checkpoint, not CLIPModel or SiglipModel")


def export_checkpoint(
    ckpt: Path, out: Path, *, photo_dir: Path | None, source: dict
) -> tuple[str, dict, dict]:
    """Export a CLIP or SigLIP checkpoint directory into `out`: (kind, files, manifest meta)."""
    if not (ckpt / "config.json").is_file():
        raise BadInput(f"{ckpt}: no config.json, so not a checkpoint directory")
    kind = checkpoint_kind(json_object(ckpt / "config.json"), str(ckpt))
    if kind == "siglip":
        from offline_vision.export.siglip import export_siglip as export
    else:
        from offline_vision.export.clip import export_clip as export
    files, meta = export(ckpt, out, photo_dir=photo_dir, source=source)
    return kind, files, meta
