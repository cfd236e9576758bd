"""Progress bars: on stderr, only on a terminal, only for work long enough to need one."""

from __future__ import annotations

from tqdm import tqdm


def bar(total: int | None, desc: str, *, unit: str = "it", min_total: int = 0, **kwargs) -> tqdm:
    """A tqdm bar that stays silent when stderr is not a TTY or `total` is below `min_total`."""
    quiet = total is not None and total < min_total
    return tqdm(
        total=total, desc=desc, unit=unit, disable=True if quiet else None, leave=False, **kwargs
    )
