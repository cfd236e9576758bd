"""What every command module shares: the settings, and click options derived from the option
dataclasses (`offline_vision.options`), so each option is defined once.

Command modules import this, never `cli.py`, so each imports on its own.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from offline_vision.config import Settings
from offline_vision.errors import BadInput
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


def json_flag(help: str = "Machine-readable output."):
    """`--json` (as `as_json`), with what it prints."""
    return click.option("--json", "as_json", is_flag=True, help=help)


json_option = json_flag()


def seed_option(help: str = "Random seed."):
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


def template_option(default_help: str):
    """`--template`: a template with {} or an ensemble name; `default_help` says the default."""
    return click.option(
        "--template",
        help=f"Prompt template with {{}} or an ensemble name (cifar10, imagenet, single); "
        f"default: {default_help}.",
    )


top_k_option = click.option(
    "--top-k", type=click.IntRange(1), default=5, show_default=True, help="Labels shown per image."
)
batch_size_option = click.option(
    "--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Images per batch."
)


def eval_data_options(dataset: str, *, seed_help: str = "Random seed of the item draw."):
    """Which items an evaluation runs on, and where its run directory is."""
    return [
        click.option("--dataset", default=dataset, show_default=True),
        click.option(
            "--sample",
            help="Sample file name or path, e.g. cifar10-300, one index a line (default: all).",
        ),
        click.option("--limit", type=int, help="Only the first N selected items."),
        seed_option(seed_help),
        click.option(
            "--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<name>)."
        ),
    ]


def labels_option(default: str | None, help: str, name: str = "labels"):
    """`--labels`: a built-in set, a comma list or @file.txt (each command its own default)."""
    return click.option("--labels", name, default=default, show_default=True, help=help)


_ray_opts = [
    click.option(
        "--ray",
        "use_ray",
        is_flag=True,
        help="Run on Ray workers, each loading the models once; this process alone writes the "
        "results. Starts a local Ray unless --ray-address is given (pip install "
        "'offline_vision[cluster]'; Ray keeps its own logs under /tmp/ray).",
    ),
    click.option(
        "--ray-address",
        metavar="HOST:PORT",
        help="With --ray: join this running cluster (`ray start --head` prints it); every node "
        "needs offline_vision, the models and the data at the same paths.",
    ),
    click.option(
        "--workers",
        type=click.IntRange(1, 4096),
        help="With --ray: how many workers.  [default: the CPUs ÷ --threads-per-worker]",
    ),
    click.option(
        "--threads-per-worker",
        type=click.IntRange(1, 256),
        default=1,
        show_default=True,
        help="With --ray: CPU threads each worker's models use (the CPUs Ray reserves for it).",
    ),
]


def ray_options(command):
    """Add --ray, --ray-address, --workers and --threads-per-worker; the command receives
    `ray` instead: (address, workers, threads) with --ray, else None (for `ray_plan`)."""

    @functools.wraps(command)
    def wrapper(*args, use_ray, ray_address, workers, threads_per_worker, **kw):
        if not use_ray and (ray_address or workers or threads_per_worker != 1):
            raise BadInput("--ray-address, --workers and --threads-per-worker need --ray")
        spec = (ray_address, workers, threads_per_worker) if use_ray else None
        return command(*args, ray=spec, **kw)

    for option in reversed(_ray_opts):
        wrapper = option(wrapper)
    return wrapper
