"""What every command module shares: the settings, and click options derived from the option
dataclasses (`offline_vision.options`), so each option is defined once.

Command modules import this, never `cli.py`, so each imports on its own.
"""

from __future__ import annotations

import click

from offline_vision.config import Settings
from offline_vision.options import cli_name, option_fields


def settings_of(ctx: click.Context) -> Settings:
    return ctx.find_root().obj


def _click_type(meta: dict):
    if meta["choices"] is not None:
        return click.Choice(meta["choices"])
    if meta["kind"] is int:
        return click.IntRange(meta["lo"], meta["hi"])
    if meta["kind"] is float:
        return click.FloatRange(meta["lo"], meta["hi"])
    return None


def _click_option(f):
    meta = f.metadata["option"]
    if meta["flag"]:  # a switch that turns the default off (`--no-probe` for probe=True)
        return click.option(
            meta["flag"], f.name, flag_value=not f.default, default=f.default, help=meta["help"]
        )
    if meta["kind"] is bool:
        return click.option(cli_name(f), f.name, is_flag=True, default=f.default, help=meta["help"])
    return click.option(
        cli_name(f),
        f.name,
        type=_click_type(meta),
        default=f.default,
        show_default=f.default is not None,
        metavar=meta["metavar"],
        help=meta["help"],
    )


def click_options(*classes, only: tuple[str, ...] | None = None):
    """Decorate a command with the option fields of `classes` (all, or those named in `only`)."""
    options = [
        _click_option(f)
        for cls in classes
        for f in option_fields(cls)
        if only is None or f.name in only
    ]
    return apply(options)


def apply(options):
    """Decorate with a list of click options, in order."""

    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def labels_option(default: str | None, help: str, name: str = "labels"):
    """`--labels`: a built-in set, a comma list or @file.txt (each command its own default)."""
    return click.option("--labels", name, default=default, show_default=True, help=help)
