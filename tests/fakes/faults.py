"""The request log and fault injection shared by every fake server in tests/fakes.

A fake records each request (:class:`Request`) in its :class:`Faults`, checks what it must check
first (the API key), then lets :meth:`Faults.serve` decide how to answer: normally (the fake's
own ``act`` carries the request out and builds a :class:`Reply`) or with the first scripted
:class:`Fault` whose method and path regex match. :func:`send` writes the reply. Fault kinds:

* ``status``: answer ``status`` with ``body``/``headers``, without carrying the request out, or
  (``after``) after carrying it out;
* ``drop``: close the connection without a reply, before acting or (``after``, a lost reply)
  after;
* ``truncated`` / ``malformed`` / ``empty``: act, then send half the body and close, a body that
  is not JSON, or ``{}`` (headers and, unless the fault gives one, status are the real reply's);
* ``hold``: keep the request waiting before acting (or after acting, before the reply) until
  ``fault.release`` is set; ``fault.reached`` is set when it arrives. For kill -9 tests.

Each fault applies to the next ``times`` matching requests, after letting ``skip`` through.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

BAD_REPLIES = ("truncated", "malformed", "empty")
KINDS = ("status", "drop", *BAD_REPLIES, "hold")
MALFORMED = b'{"id": "oops", "object": '  # cut off mid-object: not JSON
HOLD_LIMIT = 60.0  # seconds a held request waits for its release at most


@dataclass
class Request:
    method: str
    path: str  # as the fake routes it (OpenAI: without /v1; Vertex: without the version)
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any  # JSON, {"fields": {...}, "files": {...}} for multipart, raw bytes, or None
    version: str = ""  # the API version prefix where the fake strips one (Vertex)


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    fault: str = "ok"  # how it goes out: ok, or drop / truncated / malformed / empty

    def data(self) -> bytes:
        if self.fault == "malformed":
            return MALFORMED
        if self.fault == "empty":
            return b"{}"
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass
class Fault:
    method: str
    pattern: str  # regex searched in Request.path
    kind: str  # one of KINDS
    times: int = 1
    skip: int = 0  # let this many matching requests through first
    after: bool = True  # carry the request out before the fault takes effect
    status: int | None = None  # "status": the status; a bad reply: its status (else the real)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    reached: threading.Event = field(default_factory=threading.Event)  # for "hold"
    release: threading.Event = field(default_factory=threading.Event)

    def matches(self, req: Request) -> bool:
        return self.method == req.method and re.search(self.pattern, req.path) is not None


class Faults:
    """The request log and the scripted faults of one fake server."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.pending: list[Fault] = []
        self._lock = threading.Lock()

    # --- the log -------------------------------------------------------------------------

    def record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    def calls(self, method: str, pattern: str) -> list[Request]:
        """Requests so far with ``method`` whose path matches the regex ``pattern``."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # --- scripting -----------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        assert fault.kind in KINDS, fault.kind
        assert fault.after or fault.kind not in BAD_REPLIES, "a bad reply needs a reply"
        fault.method = fault.method.upper()
        with self._lock:
            self.pending.append(fault)
        return fault

    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: bool = False,
    ) -> Fault:
        """Answer ``status``/``body``: without acting, or ``after`` acting."""
        return self.add(
            Fault(method, pattern, "status", times, 0, after, status, body, dict(headers or {}))
        )

    def drop(
        self, method: str, pattern: str, *, times: int = 1, after: bool = True, skip: int = 0
    ) -> Fault:
        """Close the connection without answering; ``after`` acting, the reply is lost."""
        return self.add(Fault(method, pattern, "drop", times, skip, after))

    def mangle(
        self,
        method: str,
        pattern: str,
        kind: str,
        *,
        times: int = 1,
        skip: int = 0,
        status: int | None = None,
    ) -> Fault:
        """Act, then answer badly: ``truncated``, ``malformed``, ``empty`` (or ``drop``), with
        the real reply's status or ``status``."""
        assert kind in (*BAD_REPLIES, "drop"), kind
        return self.add(Fault(method, pattern, kind, times, skip, status=status))

    def hold(self, method: str, pattern: str, *, before: bool = False) -> Fault:
        """Keep the next matching request waiting until ``fault.release`` is set."""
        return self.add(Fault(method, pattern, "hold", after=not before))

    def clear(self) -> None:
        """Forget every fault not used up yet (held requests are released)."""
        with self._lock:
            for fault in self.pending:
                fault.release.set()
            self.pending.clear()

    # --- serving -------------------------------------------------------------------------

    def take(self, req: Request) -> Fault | None:
        """The fault that applies to ``req``, if any (one use of it is spent)."""
        with self._lock:
            fault = next((f for f in self.pending if f.times > 0 and f.matches(req)), None)
            if fault is None:
                return None
            if fault.skip > 0:
                fault.skip -= 1
                return None
            fault.times -= 1
            if fault.times <= 0:
                self.pending.remove(fault)
            return fault

    def serve(self, req: Request, act: Callable[[], Reply]) -> Reply:
        """The reply to ``req``: ``act()``'s, or what the matching fault makes of it. ``act``
        takes the fake's own lock; holds wait outside it."""
        fault = self.take(req)
        if fault is None:
            return act()
        if fault.kind == "hold":
            if not fault.after:
                _wait(fault)
            reply = act()
            if fault.after:
                _wait(fault)
            return reply
        if not fault.after:
            return _faulty(fault)
        reply = act()
        if fault.kind in BAD_REPLIES:
            reply.fault = fault.kind
            reply.status = reply.status if fault.status is None else fault.status
            return reply
        return _faulty(fault)


class Scriptable:
    """The log and fault methods of a fake whose paths are matched by regex (Together,
    Fireworks, Vertex): ``fake.fail(...)``, ``fake.drop(...)``, ``fake.mangle(...)``... A fake
    sets ``self.faults`` and says how its errors look in :meth:`error_body`."""

    faults: Faults

    @property
    def requests(self) -> list[Request]:
        return self.faults.requests

    def calls(self, method: str, pattern: str) -> list[Request]:
        return self.faults.calls(method, pattern)

    def error_body(self, status: int, message: str, **details: Any) -> Any:
        raise NotImplementedError

    def fail(
        self,
        method: str,
        pattern: str,
        status: int = 500,
        *,
        times: int = 1,
        message: str = "injected fault",
        headers: dict[str, str] | None = None,
        after: bool = False,
        **details: Any,
    ) -> Fault:
        """The next ``times`` matching requests get ``status`` (the fake's error envelope with
        ``message`` and ``details``), without being carried out unless ``after``."""
        body = self.error_body(status, message, **details)
        return self.faults.fail(
            method, pattern, status, body, headers=headers, times=times, after=after
        )

    def drop(
        self, method: str, pattern: str, *, times: int = 1, after: bool = True, skip: int = 0
    ) -> Fault:
        """Close the connection without answering; with ``after`` the request is acted on."""
        return self.faults.drop(method, pattern, times=times, after=after, skip=skip)

    def mangle(
        self, method: str, pattern: str, kind: str, *, times: int = 1, skip: int = 0
    ) -> Fault:
        """Act on the request, then answer it ``truncated``, ``malformed`` or ``empty``."""
        return self.faults.mangle(method, pattern, kind, times=times, skip=skip)

    def garble(self, method: str, pattern: str, *, times: int = 1) -> Fault:
        """Act on the request, then answer 200 with a body that is not valid JSON."""
        return self.faults.mangle(method, pattern, "malformed", times=times, status=200)

    def hold(self, method: str, pattern: str, *, before: bool = False) -> Fault:
        """Keep the next matching request waiting (after acting, or ``before``) until
        ``fault.release`` is set; ``fault.reached`` is set when it arrives."""
        return self.faults.hold(method, pattern, before=before)


def _wait(fault: Fault) -> None:
    fault.reached.set()
    fault.release.wait(HOLD_LIMIT)


def _faulty(fault: Fault) -> Reply:
    if fault.kind == "drop":
        return Reply(0, fault="drop")
    return Reply(fault.status or 500, fault.body, dict(fault.headers))


# --- HTTP plumbing shared by the fakes -----------------------------------------------------


def send(h: BaseHTTPRequestHandler, reply: Reply) -> None:
    """Write ``reply`` (or, for its fault, no reply / a truncated one) to the client."""
    if reply.fault == "drop":
        h.close_connection = True
        return
    data = reply.data()
    h.send_response(reply.status)
    h.send_header("Content-Type", reply.content_type)
    h.send_header("Content-Length", str(len(data)))
    for key, value in reply.headers.items():
        h.send_header(key, value)
    h.end_headers()
    if reply.fault == "truncated":
        h.wfile.write(data[: len(data) // 2])
        h.wfile.flush()
        h.close_connection = True
        return
    h.wfile.write(data)


def handler_for(handle: Callable[[Request], Reply]) -> type[BaseHTTPRequestHandler]:
    """An HTTP/1.1 handler that reads each request (path as sent, body by
    :func:`parse_body`) and sends what ``handle`` (e.g. a fake's) answers."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # header and body writes would wait ~40 ms for an ACK

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = parse_body(headers, read_body(self.rfile, headers))
            send(
                self,
                handle(Request(self.command, parts.path, parse_qs(parts.query), headers, body)),
            )

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler


def read_body(rfile: io.BufferedIOBase, headers: dict[str, str]) -> bytes:
    """The request body, by Content-Length or chunked transfer encoding."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := int(rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(rfile.read(size))
            rfile.readline()
        rfile.readline()
        return b"".join(chunks)
    length = int(headers.get("content-length") or 0)
    return rfile.read(length) if length else b""


def parse_body(headers: dict[str, str], raw: bytes) -> Any:
    """JSON (``{"_unparseable": text}`` if broken), multipart as ``{"fields", "files"}``, else
    the raw bytes; ``None`` for no body."""
    ctype = headers.get("content-type", "")
    if not raw:
        return None
    if ctype.startswith("application/json"):
        try:
            return json.loads(raw)
        except ValueError:
            return {"_unparseable": raw.decode("utf-8", "replace")}
    if ctype.startswith("multipart/form-data"):
        return parse_multipart(ctype, raw)
    return raw


def parse_multipart(ctype: str, raw: bytes) -> dict[str, Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + raw
    )
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, payload)
        else:
            fields[name] = payload.decode()
    return {"fields": fields, "files": files}


class QuietServer(ThreadingHTTPServer):
    """A threading server on 127.0.0.1 that does not report clients that went away."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed client is no news
            super().handle_error(request, client_address)


class Served:
    """A fake running in a :class:`QuietServer` (``self._server``, from :func:`start_server`):
    its root URL, ``close()``, and ``with Fake() as fake:`` to close it."""

    _server: QuietServer

    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_server(handler: type[BaseHTTPRequestHandler]) -> QuietServer:
    """A :class:`QuietServer` on a free port, serving in a daemon thread (``shutdown()`` and
    ``server_close()`` stop it)."""
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    return server
