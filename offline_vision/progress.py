"""What the user sees while work runs: progress bars (on stderr, only on a terminal, only for
work long enough to need one) and the one-line announcements of the `ovision` logger."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

log = logging.getLogger("ovision")


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        return prefix + record.getMessage()


def announce_on_stderr(quiet: bool = False) -> None:
    """The `ovision` logger's lines on stderr, one line each ("warning: " before warnings)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def announce_unless_configured() -> None:
    """The Python API: the command line's announcements (what was bridged, which eyes), unless
    the application has configured the `ovision` logger or logging as a whole."""
    if log.handlers:  # ours (an earlier command in this process) is renewed; others are kept
        mine = all(isinstance(h.formatter, _StderrFormatter) for h in log.handlers)
    else:
        mine = log.level == logging.NOTSET and not logging.getLogger().handlers
    if mine:
        announce_on_stderr()


def bar(total: int | None, desc: str, *, unit: str = "it", min_total: int = 0, **kwargs) -> tqdm:
    """A tqdm bar that stays silent when stderr is not a TTY or `total` is below `min_total`."""
    quiet = total is not None and total < min_total
    return tqdm(
        total=total, desc=desc, unit=unit, disable=True if quiet else None, leave=False, **kwargs
    )
