"""A real GCS emulator (gcp-storage-emulator) on 127.0.0.1 for the whole test session.

Use it as a pytest plugin from a test module (``pytest_plugins`` only works in the root
conftest, so import the fixtures instead)::

    from tests.fakes.gcs_emulator import gcs_emulator, gcs_env  # noqa: F401

``gcs_env`` (function scope) sets ``STORAGE_EMULATOR_HOST`` after conftest's autouse fixture has
cleared it, wipes the emulator's storage and returns the base URL.

``gcs_proxy`` does the same through a :class:`GcsProxy`: a pass-through server in front of the
emulator that logs every request and injects the faults of tests/fakes/faults.py (a lost,
truncated or garbled upload reply, a hold), which the emulator itself cannot.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.faults import Faults, Reply, Request, read_body, send, start_server

# hop-by-hop or recomputed by faults.send: not copied from the emulator's reply
_SKIP_HEADERS = {
    "connection",
    "content-length",
    "content-type",
    "transfer-encoding",
    "server",
    "date",
}


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


class GcsProxy:
    """Forwards every request to the emulator at ``upstream`` (with this proxy's Host, so the
    resumable-upload URLs the emulator hands out point back here); ``faults`` logs them and
    injects faults, e.g. ``proxy.faults.mangle("PUT", "^/upload/", "truncated")``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults = Faults()
        self._server = start_server(_proxy_handler(self))

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def uploads(self) -> list[Request]:
        """The requests that carried file bytes (one per resumable or simple upload)."""
        return [r for r in self.faults.requests if r.method in ("PUT", "POST") and r.body]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def forward(self, req: Request, raw_path: str) -> Reply:
        conn = http.client.HTTPConnection(str(self.upstream.hostname), self.upstream.port, 30)
        try:
            headers = {k: v for k, v in req.headers.items() if k not in ("transfer-encoding",)}
            body = req.body if isinstance(req.body, bytes) else b""
            headers["content-length"] = str(len(body))
            conn.request(req.method, raw_path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            extra = {k: v for k, v in answer.getheaders() if k.lower() not in _SKIP_HEADERS}
            ctype = answer.getheader("content-type") or "application/json"
            return Reply(answer.status, data, extra, content_type=ctype)
        finally:
            conn.close()


def _proxy_handler(proxy: GcsProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            raw = read_body(self.rfile, headers)
            req = Request(self.command, parts.path, parse_qs(parts.query), headers, raw or None)
            proxy.faults.record(req)
            send(self, proxy.faults.serve(req, lambda: proxy.forward(req, self.path)))

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler


@pytest.fixture
def gcs_proxy(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsProxy]:
    """A wiped emulator behind a :class:`GcsProxy`; ``STORAGE_EMULATOR_HOST`` names the proxy."""
    gcs_emulator.wipe()
    proxy = GcsProxy(gcs_emulator.url)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    try:
        yield proxy
    finally:
        proxy.faults.clear()
        proxy.close()
