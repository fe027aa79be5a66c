"""Test-session guards: no network beyond loopback, one BLAS thread, an isolated home."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Before torch is imported anywhere: tiny matmuls are ~50x slower with 2 threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlockedError(RuntimeError):
    pass


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_local(address):
        raise NetworkBlockedError(f"test tried to reach non-local address {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_local(address):
        raise NetworkBlockedError(f"test tried to reach non-local address {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("localhost",) and not _is_local((name, 0)):
            raise NetworkBlockedError(f"test tried to resolve non-local host {name!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo

_SECRET_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "STORAGE_EMULATOR_HOST",
    "TOGETHER_API_KEY",
    "TOGETHER_BASE_URL",
    "TOGETHER_PROJECT_ID",
    "FIREWORKS_API_KEY",
    "FIREWORKS_ACCOUNT_ID",
    "FIREWORKS_BASE_URL",
    "TUNEPORT_PRICES",
)


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Each test gets its own TUNEPORT_HOME and no provider credentials from the host."""
    for name in _SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TUNEPORT_HOME", str(tmp_path_factory.mktemp("tuneport-home")))
    yield


# a frozen copy of the price table: tests pin their dollar figures to it, not to the shipped file
PRICES = FIXTURES / "prices-test.toml"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shipped_prices: read the shipped prices.toml, not fixtures/prices-test.toml"
    )


@pytest.fixture(autouse=True)
def _pinned_prices(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in price table is fixtures/prices-test.toml (``--prices`` and $TUNEPORT_PRICES
    still merge over it), so a price change in prices.toml breaks only the tests of that file."""
    if request.node.get_closest_marker("shipped_prices") is None:
        from tuneport.pricing import table

        monkeypatch.setattr(table, "builtin_path", lambda: PRICES)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def echo_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example plugin (tests/fakes/plugin_backend.py) installed through its entry point, as
    `pip install` of a package declaring it would leave it."""
    import sys

    from tuneport.providers import registry

    plugin = "tests.fakes.plugin_backend"
    dist = tmp_path / "site" / "tuneport_echo-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tuneport-echo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[tuneport.backends]\necho = {plugin}:BACKEND\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, plugin, raising=False)
    registry.refresh()
    yield
    registry.refresh()
