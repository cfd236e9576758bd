"""What every `ovision` command module shares: the settings and the options defined once.

Command modules import this, never `cli.py`, so each imports on its own; `cli.py` imports them
all and registers their commands in one list.
"""

from __future__ import annotations

import click

from offline_vision.config import Settings


def settings_of(ctx: click.Context) -> Settings:
    return ctx.find_root().obj


def apply(options):
    """Decorate with a list of click options, in order."""

    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
scorer_option = click.option(
    "--scorer",
    type=click.Choice(["auto", "clip", "conse"]),
    default="auto",
    show_default=True,
    help="auto: CLIP when provisioned, else the ConSE stand-in (weaker, announced).",
)
precision_option = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "int8"]),
    default="auto",
    show_default=True,
    help="CLIP ONNX precision.",
)
device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="ONNX Runtime device (auto: CUDA when onnxruntime-gpu sees a GPU).  [default: auto]",
)
reasoner_option = click.option(
    "--reasoner",
    default="local",
    show_default=True,
    help="local | local:NAME | local:/path/model.gguf | openai:MODEL (server from --base-url).",
)
base_url_option = click.option(
    "--base-url",
    help="OpenAI-compatible server for openai:MODEL (default: $OPENAI_BASE_URL, else OpenAI). "
    "The key comes from $OPENAI_API_KEY only.",
)
ctx_option = click.option(
    "--ctx",
    "ctx_",
    type=click.IntRange(256),
    help="Context window of a local model [default: 8192].",
)


def labels_option(default: str, help: str, name: str = "labels"):
    """`--labels`: a built-in set, a comma list or @file.txt (each command its own default)."""
    return click.option("--labels", name, default=default, show_default=True, help=help)
