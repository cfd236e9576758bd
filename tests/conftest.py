"""Shared fixtures. Unit tests use no weights and no network: sockets reach loopback only."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "", None}


def _is_loopback(host) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guard(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise ConnectionRefusedError(f"tests may only reach loopback, not {address[0]}")


def _connect(self, address):
    _guard(self, address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _guard(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    if not _is_loopback(host):
        raise socket.gaierror(f"tests may only resolve loopback, not {host}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config):
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
    socket.getaddrinfo = _getaddrinfo


def _data_dir() -> Path:
    """The shared evaluation data: OVISION_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("OVISION_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if not (d / "README.md").exists():
        pytest.fail(f"evaluation data not found at {d}; set OVISION_DATA", pytrace=False)
    return d


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh OVISION_HOME for one test (models, caches)."""
    h = tmp_path / "home"
    monkeypatch.setenv("OVISION_HOME", str(h))
    monkeypatch.setenv("OVISION_DATA", str(_data_dir()))
    monkeypatch.setenv("OVISION_THREADS", "1")
    return h


@pytest.fixture
def settings(home):
    from offline_vision.config import Settings

    return Settings.from_env()


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    from tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="session")
def tiny_export(tiny_ckpt, tmp_path_factory) -> tuple[dict, dict]:
    """The tiny checkpoint exported once by the project's own exporter: (files, meta)."""
    from offline_vision.export.clip import export_clip

    out = tmp_path_factory.mktemp("tiny_export")
    return export_clip(tiny_ckpt, out, photo_dir=_data_dir() / "photos", source={"type": "test"})


@pytest.fixture
def tiny_clip(settings, tiny_export):
    """The tiny CLIP installed as the default CLIP in this test's home."""
    from offline_vision.models import registry, store

    files, meta = tiny_export
    return store.install(settings.models_dir, registry.CLIP, "clip", files, meta)


@pytest.fixture
def fake_hub():
    from fake_servers import FakeHub

    hub = FakeHub().start()
    yield hub
    hub.stop()


@pytest.fixture
def run_cli():
    """Invoke `ovision …` in-process; returns click's Result (exit_code, stdout, stderr)."""
    from click.testing import CliRunner

    from offline_vision.cli import cli

    def run(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run
