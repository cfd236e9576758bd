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
    # The bridge's dictionaries (the llm extra) only where a test gives its own: names written
    # by the scripted or fake reasoners alone, whatever is installed.
    monkeypatch.setenv("OVISION_DICTIONARIES", "none")
    from offline_vision.labels.dictionaries import installed

    installed.cache_clear()
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
    from offline_vision.models.provision import registry, store

    files, meta = tiny_export
    return store.install(settings.models_dir, registry.CLIP, "clip", files, meta)


@pytest.fixture
def fake_hub():
    from fakes import FakeHub

    hub = FakeHub().start()
    yield hub
    hub.stop()


@pytest.fixture
def raw():
    """Loopback chat servers answering each POST with the next (status, headers, body) given."""
    from fakes import ChatServer, scripted

    made = []

    def make(*script):
        made.append(ChatServer(scripted(*script)))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def names_server():
    """A hosted reasoner on 127.0.0.1 that names CIFAR-10's classes from their Japanese."""
    from fakes import ChatServer
    from test_bridge import names_reply

    server = ChatServer(names_reply)
    yield server
    server.stop()


@pytest.fixture
def run_cli():
    """Invoke `ovision …` in-process; returns click's Result (exit_code, stdout, stderr)."""
    from click.testing import CliRunner

    from offline_vision.cli import cli

    def run(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


# --- the real default models (tests marked `models`) --------------------------------------------

_REAL_ENV = {k: os.environ.get(k) for k in ("OVISION_HOME", "OVISION_DATA")}


@pytest.fixture(scope="session")
def real_settings():
    """Settings for the machine's provisioned models (`ovision models pull` puts them there)."""
    from offline_vision.config import Settings
    from offline_vision.models.provision import registry, store

    s = Settings.from_env(
        home=Path(_REAL_ENV["OVISION_HOME"]) if _REAL_ENV["OVISION_HOME"] else None,
        data_dir=_data_dir(),
    )
    missing = [
        n
        for n in (registry.GGUF, registry.GGUF_FAST, registry.CONSE)
        if n not in store.installed(s.models_dir)
    ]
    if missing:
        pytest.fail(
            f"models not provisioned in {s.models_dir}: {', '.join(missing)}; run "
            f"`ovision models pull {' '.join(missing)}`",
            pytrace=False,
        )
    return s


@pytest.fixture
def run_cli_real(real_settings):
    from click.testing import CliRunner

    from offline_vision.cli import cli

    def run(*args: str):
        env = {"OVISION_HOME": str(real_settings.home), "OVISION_DATA": str(real_settings.data_dir)}
        return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def llama_server(real_settings, tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, serving the 0.5B GGUF."""
    import subprocess
    import time

    import httpx

    from offline_vision.models.provision import registry, store

    gguf = store.load(real_settings.models_dir, registry.GGUF_FAST).file("model.gguf")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path_factory.mktemp("server") / "llama_server.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--model_alias",
            "qwen-0.5b",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--n_threads",
            str(real_settings.threads),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited: {log.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 120 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
