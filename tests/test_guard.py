"""The network guard and import hygiene hold."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.conftest import NetworkBlockedError


def test_non_local_connection_is_refused() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkBlockedError):
            sock.connect(("93.184.216.34", 443))
    finally:
        sock.close()


def test_non_local_name_resolution_is_refused() -> None:
    with pytest.raises(NetworkBlockedError):
        socket.getaddrinfo("api.openai.com", 443)


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket()
    try:
        client.connect(server.getsockname())
    finally:
        client.close()
        server.close()


def test_importing_cli_does_not_import_torch_or_sdks() -> None:
    code = (
        "import sys, tuneport.cli.app, tuneport.providers.registry;"
        "mods = ('torch', 'transformers', 'openai', 'google.genai');"
        "heavy = [m for m in mods if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
