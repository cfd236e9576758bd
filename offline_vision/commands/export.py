"""`ovision export`: a Hugging Face CLIP or SigLIP checkpoint directory → an ONNX bundle, validated."""

from __future__ import annotations

import json
from pathlib import Path

import click

from offline_vision.commands.common import json_option, settings_of


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Bundle directory to write (default: <checkpoint>-onnx). Install it with `models import`.",
)
@click.option(
    "--force", is_flag=True, help="Replace --out even if it is a directory this tool did not make."
)
@json_option
@click.pass_context
def export_cmd(ctx, checkpoint: Path, out: Path | None, force: bool, as_json: bool):
    """Export a Hugging Face CLIP or SigLIP CHECKPOINT directory to ONNX (fp32 + int8),
    validated against transformers (SigLIP: its tokens, pixels and sigmoid scores too).

    An existing --out is replaced only if it is empty or an earlier export (or with --force);
    the new export is written beside it and renamed into place.
    """
    from offline_vision.models.provision.bundles import export_checkpoint

    out = out or checkpoint.with_name(checkpoint.name + "-onnx")
    manifest = export_checkpoint(settings_of(ctx), checkpoint, out, force=force)
    v = manifest["validation"]
    if as_json:
        click.echo(json.dumps({"path": str(out), "validation": v}))
        return
    click.echo(f"wrote {out}")
    for tower in ("image", "text"):
        fp32, int8 = v["fp32_vs_pytorch"][tower], v["int8_vs_fp32"][tower]
        click.echo(
            f"  {tower}: fp32 vs PyTorch cosine {fp32['cosine_min']:.6f} max-abs {fp32['max_abs']:.1e};"
            f" int8 vs fp32 cosine {int8['cosine_min']:.4f}"
        )
    if "sigmoid_scores_max_abs" in v:
        click.echo(
            f"  sigmoid scores vs SiglipModel max-abs {v['sigmoid_scores_max_abs']:.1e}; "
            f"tokens equal on {v['tokenizer_texts_equal']} texts; pixels max-abs "
            f"{v['pixels_max_abs']:.1e}"
        )
    click.echo(f"install with: ovision models import {out}")
