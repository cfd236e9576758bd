"""One retry loop for everything that talks to a server (downloads, chat calls)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")
MAX_WAIT = 10.0  # seconds: the longest pause, whatever a server's Retry-After asks


class Transient(Exception):
    """A failure worth another try: `problem` says what happened, `wait` is the server's
    Retry-After in seconds where it gave one."""

    def __init__(self, problem: str, wait: float | None = None):
        super().__init__(problem)
        self.problem, self.wait = problem, wait


def retrying(attempt: Callable[[], T], *, tries: int, backoff: float) -> T:
    """`attempt()`'s result, calling it up to `tries` times while it raises Transient (or an
    httpx timeout or transport error), pausing backoff·2ⁿ seconds between tries (or the
    server's Retry-After), never longer than MAX_WAIT. After the last try the last problem is
    raised as Transient, for the caller to name in its own error."""
    problem = Transient("no attempt made")
    for n in range(tries):
        try:
            return attempt()
        except Transient as e:
            problem = e
        except httpx.TimeoutException:
            problem = Transient("timed out")
        except httpx.TransportError as e:
            problem = Transient(f"unreachable ({type(e).__name__})")
        if n < tries - 1:
            wait = problem.wait if problem.wait is not None else backoff * 2**n
            time.sleep(min(wait, MAX_WAIT))
    raise problem
