"""A fake OpenAI fine-tuning API on 127.0.0.1 for driving the real ``openai`` SDK offline.

Stdlib ``http.server`` in a thread, port 0, in-memory state. Covers files (multipart upload,
list, retrieve, delete), fine-tuning jobs (create, retrieve, list with metadata filter, cancel,
events with ``after`` pagination, checkpoints), chat completions (``stream=True`` as server-sent
events too) and the model list. Responses carry every field
the SDK's pydantic models declare. Failures are scriptable with :meth:`FakeOpenAI.fail`.

Jobs advance one step along ``FakeOpenAI.script`` (default validating_files → queued → running
→ running → succeeded) each time they are retrieved; a job created while ``fail_next_job`` is
set ends ``failed`` with that message instead.

Faults for the trust tests: :meth:`FakeOpenAI.mangle` carries a request out and then answers it
badly (``malformed`` JSON, an ``empty`` object, a ``truncated`` body, or no answer at all:
``drop``, a lost reply); :meth:`FakeOpenAI.hold` carries a request out (or not) and keeps the
client waiting until released, so a test can kill the client at that exact moment.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_SCRIPT = ("validating_files", "queued", "running", "running", "succeeded")


@dataclass
class Failure:
    method: str
    path: str  # prefix match on the URL path
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int
    after: bool  # perform the request first, then answer with the error


@dataclass
class Mangle:
    method: str
    path: str  # URL path (without /v1): exact, or a prefix when ``prefix``
    kind: str  # malformed | empty | truncated | drop
    times: int
    prefix: bool = False
    skip: int = 0  # answer this many matching requests normally first

    def matches(self, method: str, path: str) -> bool:
        same = path.startswith(self.path) if self.prefix else path == self.path
        return self.method == method and same


@dataclass
class Hold:
    method: str
    path: str
    before: bool  # True: hold before carrying the request out
    prefix: bool = False
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, or {"fields": {...}, "files": {...}} for multipart, or None


@dataclass
class FakeOpenAI:
    api_key: str | None = None  # when set, other keys get 401 (echoing the key, like OpenAI)
    script: tuple[str, ...] = DEFAULT_SCRIPT
    fail_next_job: str | None = None
    trained_tokens: int | None = None
    filter_metadata: bool = True  # False: ignore metadata[k]=v like some compatible servers
    requests: list[Request] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_bytes: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checkpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)
    mangles: list[Mangle] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)  # the Uploads API
    upload_parts: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._counter = 0
        self._steps: dict[str, int] = {}
        self._job_fail: dict[str, str] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client killed mid-request: nothing to report

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    # --- control -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        message: str = "scripted failure",
        code: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        after: bool = False,
    ) -> None:
        """The next ``times`` requests matching ``method path*`` get ``status``."""
        body = {"error": {"message": message, "type": "error", "param": None, "code": code}}
        self.failures.append(
            Failure(method.upper(), path, status, body, dict(headers or {}), times, after)
        )

    def mangle(
        self,
        method: str,
        path: str,
        kind: str,
        *,
        times: int = 1,
        prefix: bool = False,
        skip: int = 0,
    ) -> None:
        """Carry the next ``times`` ``method path`` requests out, then answer them badly:
        ``malformed`` (not JSON), ``empty`` (``{}``), ``truncated`` (half the body, then the
        connection closes) or ``drop`` (no answer: the reply is lost). The first ``skip``
        matching requests are answered normally."""
        assert kind in ("malformed", "empty", "truncated", "drop")
        self.mangles.append(Mangle(method.upper(), path, kind, times, prefix, skip))

    def hold(self, method: str, path: str, *, before: bool = False, prefix: bool = False) -> Hold:
        """Keep the next ``method path`` request waiting (after carrying it out, or ``before``)
        until ``hold.release`` is set; ``hold.reached`` is set when it arrives."""
        held = Hold(method.upper(), path, before, prefix)
        self.holds.append(held)
        return held

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self._counter:06d}"

    # --- plumbing ------------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path.removeprefix("/v1")
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        ctype = h.headers.get("content-type", "")
        body: Any = None
        if raw and ctype.startswith("application/json"):
            body = json.loads(raw)
        elif raw and ctype.startswith("multipart/form-data"):
            body = _parse_multipart(ctype, raw)
        headers = {k.lower(): v for k, v in h.headers.items()}
        held = next(
            (
                x
                for x in self.holds
                if x.method == h.command
                and (path.startswith(x.path) if x.prefix else path == x.path)
            ),
            None,
        )
        if held is not None:
            self.holds.remove(held)
            if held.before:
                held.reached.set()
                held.release.wait(60)
        with self._lock:
            result = self._answer(h, path, query, body, headers)
        if held is not None and not held.before:
            held.reached.set()
            held.release.wait(60)
        self._reply(h, *result)

    def _reply(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str],
        kind: str,
    ) -> None:
        if kind == "drop":
            h.close_connection = True
            return
        if isinstance(payload, _EventStream):
            _send_events(h, payload.events)
            return
        if kind == "malformed":
            data = b'{"id": "oops", "object": '
        elif kind == "empty":
            data = b"{}"
        else:
            data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for key, value in headers.items():
            h.send_header(key, value)
        h.end_headers()
        if kind == "truncated":
            h.wfile.write(data[: len(data) // 2])
            h.close_connection = True
            return
        h.wfile.write(data)

    def _answer(
        self,
        h: BaseHTTPRequestHandler,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        headers: dict[str, str],
    ) -> tuple[int, Any, dict[str, str], str]:
        """(status, payload, headers, how to answer) for this request."""
        self.requests.append(Request(h.command, path, query, headers, body))
        auth = headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            key = auth.removeprefix("Bearer ")
            return (
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {key}. You can find your "
                        "API key at https://platform.openai.com/account/api-keys.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                {},
                "ok",
            )
        failure = next(
            (
                f
                for f in self.failures
                if f.times > 0 and f.method == h.command and path.startswith(f.path)
            ),
            None,
        )
        if failure is not None:
            failure.times -= 1
            if not failure.after:
                return failure.status, failure.body, failure.headers, "ok"
        try:
            status, payload = self._route(h.command, path, query, body)
        except KeyError as exc:
            status, payload = 404, _error(f"No such object: {exc.args[0]}", "not_found")
        except _HTTPError as exc:
            status, payload = exc.status, exc.payload
        if failure is not None:
            return failure.status, failure.body, failure.headers, "ok"
        mangle = next(
            (m for m in self.mangles if m.times > 0 and m.method == h.command and m.path == path),
            None,
        )
        if mangle is not None and mangle.skip > 0:
            mangle.skip -= 1
        elif mangle is not None:
            mangle.times -= 1
            return status, payload, {}, mangle.kind
        return status, payload, {}, "ok"

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        seg = [s for s in path.split("/") if s]
        if seg == ["files"] and method == "POST":
            return 200, self._create_file(body)
        if seg == ["files"] and method == "GET":
            purpose = _q(query, "purpose")
            items = [f for f in self.files.values() if purpose in (None, f["purpose"])]
            return 200, _page(list(reversed(items)), query)
        if len(seg) == 2 and seg[0] == "files":
            if method == "DELETE":
                self.files.pop(seg[1])
                return 200, {"id": seg[1], "object": "file", "deleted": True}
            return 200, self.files[seg[1]]
        if seg == ["fine_tuning", "jobs"] and method == "POST":
            return 200, self._create_job(body)
        if seg == ["fine_tuning", "jobs"]:
            items = list(reversed(self.jobs.values()))
            wanted = {
                k[len("metadata[") : -1]: v[0]
                for k, v in query.items()
                if k.startswith("metadata[") and k.endswith("]") and self.filter_metadata
            }
            items = [
                j
                for j in items
                if all((j["metadata"] or {}).get(k) == v for k, v in wanted.items())
            ]
            return 200, _page(items, query)
        if len(seg) >= 3 and seg[:2] == ["fine_tuning", "jobs"]:
            job = self.jobs[seg[2]]
            rest = seg[3:]
            if not rest:
                self._advance(job)
                return 200, job
            if rest == ["cancel"] and method == "POST":
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    return 400, _error(f"Job {job['id']} has already completed.", "invalid_state")
                job["status"] = "cancelled"
                job["finished_at"] = int(time.time())
                return 200, job
            if rest == ["events"]:
                return 200, _page(list(reversed(self.events[job["id"]])), query)
            if rest == ["checkpoints"]:
                return 200, _page(list(reversed(self.checkpoints[job["id"]])), query)
        if seg == ["chat", "completions"] and method == "POST":
            return 200, self._chat(body)
        if seg[:1] == ["uploads"] and method == "POST":
            return 200, self._upload(seg[1:], body)
        if seg == ["models"] and method == "GET":
            models = ["gpt-4.1-mini", *(j["fine_tuned_model"] for j in self.jobs.values())]
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models if m
            ]
            return 200, {"object": "list", "data": data}
        raise KeyError(path)

    def _upload(self, rest: list[str], body: Any) -> dict[str, Any]:
        """POST /uploads, /uploads/{id}/parts, /uploads/{id}/complete."""
        if not rest:
            upload_id = self._id("upload")
            self.uploads[upload_id] = {
                "id": upload_id,
                "object": "upload",
                "bytes": body["bytes"],
                "created_at": int(time.time()),
                "expires_at": int(time.time()) + 3600,
                "filename": body["filename"],
                "purpose": body["purpose"],
                "status": "pending",
                "file": None,
            }
            return self.uploads[upload_id]
        upload = self.uploads[rest[0]]
        if rest[1:] == ["parts"]:
            part_id = self._id("part")
            data = body["files"].get("data", (None, b""))[1] or body["fields"].get("data", "")
            self.upload_parts[part_id] = data if isinstance(data, bytes) else data.encode()
            return {
                "id": part_id,
                "object": "upload.part",
                "created_at": int(time.time()),
                "upload_id": upload["id"],
            }
        if rest[1:] == ["complete"]:
            content = b"".join(self.upload_parts[p] for p in body["part_ids"])
            if len(content) != upload["bytes"]:
                raise _HTTPError(400, _error("bytes do not match the parts", "invalid_upload"))
            file = self._create_file(
                {
                    "files": {"file": (upload["filename"], content)},
                    "fields": {"purpose": upload["purpose"]},
                }
            )
            upload.update(status="completed", file=file)
            return upload
        raise KeyError("/".join(["uploads", *rest]))

    # --- behaviour -----------------------------------------------------------------------

    def _create_file(self, body: dict[str, Any]) -> dict[str, Any]:
        filename, content = body["files"]["file"]
        file_id = self._id("file")
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": body["fields"].get("purpose", ""),
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.files[file_id] = obj
        self.file_bytes[file_id] = content
        return obj

    def _create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["training_file"] not in self.files:
            raise _HTTPError(
                400, _error(f"invalid training_file: {body['training_file']}", "invalid_file")
            )
        job_id = self._id("ftjob")
        method = body.get("method") or {"type": "supervised", "supervised": {}}
        hp = dict((method.get(method["type"]) or {}).get("hyperparameters") or {})
        job = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": {
                "batch_size": hp.get("batch_size", "auto"),
                "learning_rate_multiplier": hp.get("learning_rate_multiplier", "auto"),
                "n_epochs": hp.get("n_epochs", "auto"),
            },
            "model": body["model"],
            "organization_id": "org-fake",
            "result_files": [],
            "seed": body.get("seed", 42),
            "status": self.script[0],
            "trained_tokens": None,
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "estimated_finish": None,
            "integrations": [],
            "metadata": body.get("metadata"),
            "method": method,
            "user_provided_suffix": body.get("suffix"),
        }
        self.jobs[job_id] = job
        self.events[job_id] = []
        self.checkpoints[job_id] = []
        self._steps[job_id] = 0
        if self.fail_next_job is not None:
            self._job_fail[job_id] = self.fail_next_job
            self.fail_next_job = None
        self._event(job_id, "info", f"Created fine-tuning job: {job_id}")
        return job

    def _event(
        self, job_id: str, level: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        self.events[job_id].append(
            {
                "id": self._id("ftevent"),
                "object": "fine_tuning.job.event",
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "data": data or {},
                "type": "metrics" if data else "message",
            }
        )

    def _advance(self, job: dict[str, Any]) -> None:
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        job_id = job["id"]
        step = self._steps[job_id] = min(self._steps[job_id] + 1, len(self.script) - 1)
        status = self.script[step]
        if status == "succeeded" and job_id in self._job_fail:
            status = "failed"
        job["status"] = status
        if status == "running":
            n = sum(1 for e in self.events[job_id] if e["type"] == "metrics") + 1
            loss = round(2.0 / n, 4)
            self._event(
                job_id, "info", f"Step {n}/3: training loss={loss}", {"step": n, "train_loss": loss}
            )
            self.checkpoints[job_id].append(
                {
                    "id": self._id("ftckpt"),
                    "object": "fine_tuning.job.checkpoint",
                    "created_at": int(time.time()),
                    "fine_tuned_model_checkpoint": (
                        f"ft:{job['model']}:org-fake::{job_id}:ckpt-step-{n}"
                    ),
                    "fine_tuning_job_id": job_id,
                    "metrics": {"step": float(n), "train_loss": loss},
                    "step_number": n,
                }
            )
        elif status == "failed":
            message = self._job_fail[job_id]
            job["error"] = {
                "code": "invalid_training_file",
                "message": message,
                "param": "training_file",
            }
            job["finished_at"] = int(time.time())
            self._event(job_id, "error", message)
        elif status == "succeeded":
            epochs = job["hyperparameters"]["n_epochs"]
            epochs = 3 if epochs == "auto" else int(epochs)
            if job["hyperparameters"]["n_epochs"] == "auto":
                job["hyperparameters"]["n_epochs"] = epochs
            size = len(self.file_bytes.get(job["training_file"], b""))
            job["trained_tokens"] = self.trained_tokens or max(1, size // 4) * epochs
            suffix = job.get("user_provided_suffix") or ""
            job["fine_tuned_model"] = f"ft:{job['model']}:org-fake:{suffix}:{job_id[-6:]}"
            job["finished_at"] = int(time.time())
            self._event(job_id, "info", "The job has successfully completed")

    def _chat(self, body: dict[str, Any]) -> Any:
        self.chats.append(body)
        last = next((m for m in reversed(body["messages"]) if m["role"] == "user"), {})
        content = f"echo[{body['model']}]: {last.get('content', '')}"
        if body.get("stream"):
            return self._chat_chunks(body["model"], content)
        return {
            "id": self._id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        }

    def _chat_chunks(self, model: str, content: str) -> _EventStream:
        """``stream=True``: the reply in word-sized ``chat.completion.chunk`` events."""
        chunk_id = self._id("chatcmpl")
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }

        words = content.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces]
        events.append(chunk({}, "stop"))
        return _EventStream(events)


@dataclass
class _EventStream:
    """A server-sent-events answer (``data: {json}`` lines, then ``data: [DONE]``)."""

    events: list[dict[str, Any]]


class _HTTPError(Exception):
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def _q(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """A cursor page over newest-first ``items``: those after ``after``, at most ``limit``."""
    after = _q(query, "after")
    limit = int(_q(query, "limit") or 20)
    if after is not None:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _error(message: str, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


def _send_events(h: BaseHTTPRequestHandler, events: list[dict[str, Any]]) -> None:
    data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    raw = data.encode()
    h.send_response(200)
    h.send_header("content-type", "text/event-stream")
    h.send_header("content-length", str(len(raw)))
    h.end_headers()
    h.wfile.write(raw)


def _parse_multipart(ctype: str, raw: bytes) -> dict[str, Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + raw
    )
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        if filename is not None:
            files[str(name)] = (filename, payload)
        else:
            fields[str(name)] = payload.decode()
    return {"fields": fields, "files": files}
