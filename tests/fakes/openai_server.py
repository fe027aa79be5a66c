"""A fake OpenAI fine-tuning API on 127.0.0.1 for driving the real ``openai`` SDK offline.

Stdlib ``http.server`` in a thread, port 0, in-memory state. Covers files (multipart upload,
list, retrieve, delete), fine-tuning jobs (create, retrieve, list with metadata filter, cancel,
events with ``after`` pagination, checkpoints), chat completions (``stream=True`` as server-sent
events too) and the model list. Responses carry every field the SDK's pydantic models declare.

Jobs advance one step along ``FakeOpenAI.script`` (default validating_files → queued → running
→ running → succeeded) each time they are retrieved; a job created while ``fail_next_job`` is
set ends ``failed`` with that message instead.

Faults come from tests/fakes/faults.py (``fake.faults`` has the request log and every kind):
:meth:`FakeOpenAI.fail` answers an error, :meth:`FakeOpenAI.mangle` carries a request out and
then answers it badly (``malformed`` JSON, an ``empty`` object, a ``truncated`` body, or no
answer at all: ``drop``, a lost reply); :meth:`FakeOpenAI.hold` carries a request out (or not)
and keeps the client waiting until released, so a test can kill the client at that moment.
Paths are given without ``/v1``, exactly or (``prefix``) as a prefix.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.faults import (
    Fault,
    Faults,
    Reply,
    Request,
    Served,
    parse_body,
    read_body,
    send,
    start_server,
)
from tests.fakes.sse import EventStream

DEFAULT_SCRIPT = ("validating_files", "queued", "running", "running", "succeeded")


@dataclass
class FakeOpenAI(Served):
    api_key: str | None = None  # when set, other keys get 401 (echoing the key, like OpenAI)
    script: tuple[str, ...] = DEFAULT_SCRIPT
    fail_next_job: str | None = None
    trained_tokens: int | None = None
    filter_metadata: bool = True  # False: ignore metadata[k]=v like some compatible servers
    stream_as_json: bool = False  # True: answer stream=True with one JSON reply (some servers)
    reply_text: str | None = None  # the chat reply's text instead of the echo ("" : empty)
    faults: Faults = field(default_factory=Faults)  # the request log and scripted faults
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_bytes: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checkpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    chats: list[dict[str, Any]] = field(default_factory=list)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)  # the Uploads API
    upload_parts: dict[str, bytes] = field(default_factory=dict)
    shutdown_dates: dict[str, str] = field(default_factory=dict)  # model id -> YYYY-MM-DD

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

        self._server = start_server(Handler)

    # --- control -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def requests(self) -> list[Request]:
        return self.faults.requests

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
    ) -> Fault:
        """The next ``times`` requests matching ``method path*`` get ``status``."""
        body = {"error": {"message": message, "type": "error", "param": None, "code": code}}
        pattern = "^" + re.escape(path)
        return self.faults.fail(
            method, pattern, status, body, headers=headers, times=times, after=after
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
    ) -> Fault:
        """Carry the next ``times`` ``method path`` requests out, then answer them badly:
        ``malformed`` (not JSON), ``empty`` (``{}``), ``truncated`` (half the body, then the
        connection closes) or ``drop`` (no answer: the reply is lost). The first ``skip``
        matching requests are answered normally."""
        return self.faults.mangle(method, _path_re(path, prefix), kind, times=times, skip=skip)

    def hold(self, method: str, path: str, *, before: bool = False, prefix: bool = False) -> Fault:
        """Keep the next ``method path`` request waiting (after carrying it out, or ``before``)
        until ``hold.release`` is set; ``hold.reached`` is set when it arrives."""
        return self.faults.hold(method, _path_re(path, prefix), before=before)

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self._counter:06d}"

    # --- plumbing ------------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        headers = {k.lower(): v for k, v in h.headers.items()}
        body = parse_body(headers, read_body(h.rfile, headers))
        query = parse_qs(parts.query, keep_blank_values=True)
        req = Request(h.command, parts.path.removeprefix("/v1"), query, headers, body)
        self.faults.record(req)
        reply = self._unauthorized(req) or self.faults.serve(req, lambda: self._answer(req))
        send(h, reply)

    def _unauthorized(self, req: Request) -> Reply | None:
        auth = req.headers.get("authorization", "")
        if self.api_key is None or auth == f"Bearer {self.api_key}":
            return None
        key = auth.removeprefix("Bearer ")
        return Reply(
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
        )

    def _answer(self, req: Request) -> Reply:
        """Carry the request out (under the lock) and say how it went."""
        with self._lock:
            try:
                status, payload = self._route(req.method, req.path, req.query, req.body)
            except KeyError as exc:
                status, payload = 404, _error(f"No such object: {exc.args[0]}", "not_found")
            except _HTTPError as exc:
                status, payload = exc.status, exc.payload
        if isinstance(payload, _Bytes):
            return Reply(status, payload.data, content_type="application/octet-stream")
        if isinstance(payload, EventStream):
            return Reply(status, payload.data(), content_type="text/event-stream")
        return Reply(status, payload)

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
        if len(seg) == 3 and seg[0] == "files" and seg[2] == "content" and method == "GET":
            return 200, _Bytes(self.file_bytes[seg[1]])  # KeyError: 404 like a deleted file
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
            for item in data:  # OpenAI's Model.shutdown_date, where one is announced
                if item["id"] in self.shutdown_dates:
                    item["shutdown_date"] = self.shutdown_dates[item["id"]]
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

    def seed_past_job(
        self,
        training: bytes,
        validation: bytes | None = None,
        *,
        model: str = "gpt-4o-mini-2024-07-18",
        method: str = "supervised",
        hyperparameters: dict[str, Any] | None = None,
        trained_tokens: int = 12_000,
    ) -> dict[str, Any]:
        """A job that finished before tuneport ran (launched elsewhere): its files, its tuned
        model (in ``/models``) and the job itself, as OpenAI keeps them."""
        with self._lock:
            ids = []
            for name, content in (("train.jsonl", training), ("valid.jsonl", validation)):
                if content is None:
                    ids.append(None)
                    continue
                obj = self._create_file(
                    {"files": {"file": (name, content)}, "fields": {"purpose": "fine-tune"}}
                )
                ids.append(obj["id"])
            hp = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
            hp.update(hyperparameters or {})
            job = self._create_job(
                {
                    "model": model,
                    "training_file": ids[0],
                    "validation_file": ids[1],
                    "method": {"type": method, method: {"hyperparameters": hp}},
                    "suffix": "legacy",
                }
            )
            job.update(
                status="succeeded",
                trained_tokens=trained_tokens,
                fine_tuned_model=f"ft:{model}:org-fake:legacy:{job['id'][-6:]}",
                finished_at=int(time.time()),
            )
            self._steps[job["id"]] = len(self.script) - 1
            return job

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
        last: dict[str, Any] = next(
            (m for m in reversed(body["messages"]) if m["role"] == "user"), {}
        )
        content = f"echo[{body['model']}]: {last.get('content', '')}"
        if self.reply_text is not None:
            content = self.reply_text
        if body.get("stream") and not self.stream_as_json:
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

    def _chat_chunks(self, model: str, content: str) -> EventStream:
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
        return EventStream(events)


@dataclass
class _Bytes:
    """A file's content (``GET /files/{id}/content``), sent as it was uploaded."""

    data: bytes


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


def _path_re(path: str, prefix: bool) -> str:
    """The regex for an API path given exactly, or as a prefix."""
    return "^" + re.escape(path) + ("" if prefix else "$")


@contextmanager
def serving_openai(monkeypatch: Any, key: str, *, poll_now: bool = False) -> Iterator[FakeOpenAI]:
    """A :class:`FakeOpenAI` that the CLI and the SDK reach the documented way
    (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``); ``poll_now`` makes watching poll without waiting."""
    with FakeOpenAI(api_key=key) as server:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        if poll_now:
            monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
        yield server
