"""A real GCS emulator (gcp-storage-emulator) on 127.0.0.1 for the whole test session.

Use it as a pytest plugin from a test module (``pytest_plugins`` only works in the root
conftest, so import the fixtures instead)::

    from tests.fakes.gcs_emulator import gcs_emulator, gcs_env  # noqa: F401

``gcs_env`` (function scope) sets ``STORAGE_EMULATOR_HOST`` after conftest's autouse fixture has
cleared it, wipes the emulator's storage and returns the base URL.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class GcsEmulator:
    url: str
    server: Any

    def wipe(self) -> None:
        """Forget every bucket and object (between tests)."""
        self.server.wipe()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield GcsEmulator(url=f"http://127.0.0.1:{port}", server=server)
    finally:
        server.stop()


@pytest.fixture
def gcs_env(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    gcs_emulator.wipe()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    return gcs_emulator.url
