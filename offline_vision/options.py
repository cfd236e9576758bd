"""Options defined once: a field of a frozen dataclass, with its default and its help.

The click options (`commands.common.click_options`), the Python API (which takes the
dataclasses) and the Ray recipes (which carry them, picklable, to the workers) all come from
these fields — adding an option is one field. Fields without `option(...)` metadata are
settings of the library, not of the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from offline_vision.errors import BadInput

T = TypeVar("T")


def option(
    default: Any,
    help: str,
    *,
    choices: Sequence[str] | None = None,
    lo: float | None = None,
    hi: float | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    kind: type | None = None,
    cli: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option `--<name>` (underscores as dashes).

    `choices` comes from the table that defines them; `lo`/`hi` bound a number; `flag` names
    a switch that sets the field to `not default` (e.g. `--no-probe` for `probe=True`); `kind`
    is the type where the default (None) does not say it; `cli` an option name other than the
    field's.
    """
    meta = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "lo": lo,
        "hi": hi,
        "flag": flag,
        "metavar": metavar,
        "kind": kind or (type(default) if default is not None else str),
        "cli": cli,
    }
    return dataclasses.field(default=default, metadata={"option": meta})


def option_fields(cls) -> list[dataclasses.Field]:
    """The fields of `cls` that are command-line options, in their order."""
    return [f for f in dataclasses.fields(cls) if "option" in f.metadata]


def cli_name(f: dataclasses.Field) -> str:
    return f.metadata["option"]["cli"] or "--" + f.name.replace("_", "-")


def check(obj: object) -> None:
    """Every option field of `obj` within its declared choices and bounds (the Python API and
    the Ray recipes get the command line's checks, from the same metadata); else one line."""
    for f in option_fields(type(obj)):
        meta, value = f.metadata["option"], getattr(obj, f.name)
        if value is None:
            continue
        if meta["choices"] is not None and value not in meta["choices"]:
            raise BadInput(f"{cli_name(f)} {value!r}: use one of {', '.join(meta['choices'])}")
        lo, hi = meta["lo"], meta["hi"]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise BadInput(f"{cli_name(f)} {value}: must be {span}")


class Options:
    """Base of the option dataclasses: their fields are checked against their declarations
    when made, by the command line, the Python API or a Ray recipe alike."""

    def __post_init__(self) -> None:
        check(self)


def take(cls: type[T], values: dict) -> T:
    """`cls` built from the command's keyword arguments, its option fields popped from them."""
    return cls(**{f.name: values.pop(f.name) for f in option_fields(cls) if f.name in values})
