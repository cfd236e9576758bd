"""Settings: one frozen dataclass, filled from `OVISION_*` environment variables in one place."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_vision.errors import BadInput

DEFAULT_HUB_URL = "https://huggingface.co"
DEFAULT_PYPI_URL = "https://pypi.org/simple"


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    n_logical = len(allowed) if allowed else (os.cpu_count() or 1)
    try:
        cores: set[tuple[str, str]] = set()
        phys = core = ""
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    core = value.strip()
                    cores.add((phys, core))
        if cores:
            return max(1, min(len(cores), n_logical))
    except OSError:
        pass
    return max(1, n_logical)


DEVICES = ("auto", "cpu", "cuda")
MAX_THREADS = 256  # OVISION_THREADS and --threads alike
PRECISIONS = ("auto", "fp32", "int8")  # of a CLIP ONNX bundle


def _hub_url(env) -> str:
    """OVISION_HUB_URL (or HF_ENDPOINT): an http(s) URL with a host, else one line."""
    from urllib.parse import urlsplit

    value = env.get("OVISION_HUB_URL") or env.get("HF_ENDPOINT") or DEFAULT_HUB_URL
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a bad port or bracket
        ok = False
    if not ok:
        name = "OVISION_HUB_URL" if env.get("OVISION_HUB_URL") else "HF_ENDPOINT"
        # Not echoed: a URL may carry credentials.
        raise BadInput(
            f"{name} is not an http(s) URL with a host; give one such as {DEFAULT_HUB_URL}"
        )
    return value


def _threads(value: str | None) -> int:
    if not value:
        return physical_cores()
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        raise BadInput(
            f"OVISION_THREADS={value!r}: give a whole number of threads (1–{MAX_THREADS})"
        )
    return n


def env_number(name: str, default: float, kind=int, *, low: float = 1) -> float:
    """A positive number from the environment, or one line saying what is wrong with it."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        n = kind(value)
    except ValueError:
        n = None
    if n is None or n < low:
        what = "a whole number" if kind is int else "a number"
        raise BadInput(f"{name}={value!r}: give {what} of at least {low:g}")
    return n


def _device(value: str | None) -> str:
    if value and value not in DEVICES:
        raise BadInput(f"OVISION_DEVICE={value!r}: unknown device; use one of {', '.join(DEVICES)}")
    return value or "auto"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


@dataclass(frozen=True)
class Settings:
    """Where models, caches and data live, and how hard to work."""

    home: Path  # models and caches (OVISION_HOME)
    data_dir: Path  # evaluation datasets (OVISION_DATA)
    runs_dir: Path  # evaluation outputs (OVISION_RUNS)
    hub_url: str = (
        DEFAULT_HUB_URL  # Hugging Face–compatible endpoint (OVISION_HUB_URL / HF_ENDPOINT)
    )
    pypi_url: str = DEFAULT_PYPI_URL  # PEP 503 simple index (OVISION_PYPI_URL / PIP_INDEX_URL)
    threads: int = 1
    device: str = "auto"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        home = (
            Path(env["OVISION_HOME"])
            if env.get("OVISION_HOME")
            else (_xdg("XDG_CACHE_HOME", ".cache") / "offline_vision")
        )
        data = (
            Path(env["OVISION_DATA"])
            if env.get("OVISION_DATA")
            else (_xdg("XDG_DATA_HOME", ".local/share") / "offline_vision" / "data")
        )
        runs = Path(env["OVISION_RUNS"]) if env.get("OVISION_RUNS") else Path("runs")
        values: dict[str, object] = {
            "home": home.expanduser(),
            "data_dir": data.expanduser(),
            "runs_dir": runs.expanduser(),
            "hub_url": _hub_url(env),
            "pypi_url": (
                env.get("OVISION_PYPI_URL") or env.get("PIP_INDEX_URL") or DEFAULT_PYPI_URL
            ),
            "threads": _threads(env.get("OVISION_THREADS")),
            "device": _device(env.get("OVISION_DEVICE")),
        }
        # Read elsewhere, at the point of use; parsed here so a bad value is one line at start.
        env_number("OVISION_MAX_UNPACK_BYTES", 0)
        env_number("OVISION_MAX_DOWNLOAD_BYTES", 0)
        env_number("OVISION_DOWNLOAD_DEADLINE_S", 0.0, float)
        env_number("OVISION_ANSWER_DEADLINE_S", 0.0, float)
        env_number("OVISION_RAY_START_TIMEOUT", 0.0, float)
        if env.get("OVISION_DICTIONARIES", "auto") not in ("auto", "none"):
            raise BadInput("OVISION_DICTIONARIES: auto (the installed ones) or none")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
