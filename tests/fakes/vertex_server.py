"""A local fake of the Vertex AI REST surface tuneport uses, for the real google-genai client.

stdlib ``http.server`` on 127.0.0.1 (port 0), in-memory state, minimal camelCase JSON that fits
the SDK's pydantic models. Covers tuning jobs (create/get/list/cancel), ``generateContent`` and
``countTokens``, endpoints (get/undeploy/delete), models (delete) and operations. Every request
is recorded (method, path, query, JSON body, headers) so tests can assert what was sent, and
faults are injected per route (regex on the unversioned path) with tests/fakes/faults.py:
:meth:`~FakeVertex.fail` (an HTTP error in Vertex's envelope, ``grpc_status=``, before or
``after`` carrying the request out), :meth:`~FakeVertex.drop` (no reply: before acting, or after
it, an unknown outcome), :meth:`~FakeVertex.mangle` / :meth:`~FakeVertex.garble` (act, then a
truncated, malformed or empty reply) and :meth:`~FakeVertex.hold`.

Job progress: each ``GET`` of a job advances it one step along ``script`` (default: PENDING →
RUNNING (epoch 1 done) → SUCCEEDED; with ``outcome="fail"`` the last step is FAILED).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.faults import Faults, QuietServer, Reply, Request, Scriptable, send, start_server

DEFAULT_EPOCHS = 4  # what the fake "service" picks when the request leaves epochCount unset
BILLABLE_TOKENS = 1234


@dataclass
class Job:
    data: dict[str, Any]
    script: list[str]
    step: int = 0


class FakeVertex(Scriptable):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults = Faults()  # the request log and scripted faults
        self.jobs: dict[str, Job] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.outcome = "succeed"
        self.truncated_examples = 0  # reported in the job's tuning data stats
        self.list_ignores_filter = False
        self.issued_token = "ya29.fake-service-account-token"
        self.reply_parts: list[dict[str, Any]] | None = None  # generateContent override
        self._ids = 0
        self.httpd: QuietServer | None = None

    # --- helpers for tests -------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def error_body(
        self, status: int, message: str, grpc_status: str = "INTERNAL", **details: Any
    ) -> Any:
        return _error(status, grpc_status, message)

    def _next_id(self) -> str:
        self._ids += 1
        return str(1000 + self._ids)

    # --- routing ------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: Any, headers: dict[str, str]) -> Reply:
        parsed = urlparse(raw_path)
        parts = parsed.path.lstrip("/").split("/", 1)
        version, path = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        req = Request(method, path, parse_qs(parsed.query), headers, body, version)
        self.faults.record(req)
        return self.faults.serve(req, lambda: self._act(req))

    def _act(self, req: Request) -> Reply:
        with self.lock:
            return Reply(*self._route(req))

    def _route(self, req: Request) -> tuple[int, Any]:
        m, p = req.method, req.path
        loc = r"projects/[^/]+/locations/[^/]+"
        routes: list[tuple[str, str, Any]] = [
            ("POST", rf"^({loc})/tuningJobs$", self._create_job),
            ("GET", rf"^({loc})/tuningJobs$", self._list_jobs),
            ("GET", rf"^({loc}/tuningJobs/[^/:]+)$", self._get_job),
            ("POST", rf"^({loc}/tuningJobs/[^/:]+):cancel$", self._cancel_job),
            ("POST", rf"^({loc}/.+):generateContent$", self._generate),
            ("POST", rf"^({loc}/.+):countTokens$", self._count_tokens),
            ("GET", rf"^({loc}/endpoints/[^/:]+)$", self._get_endpoint),
            ("POST", rf"^({loc}/endpoints/[^/:]+):undeployModel$", self._undeploy),
            ("DELETE", rf"^({loc}/endpoints/[^/:]+)$", self._delete_endpoint),
            ("DELETE", rf"^({loc}/models/[^/:]+)$", self._delete_model),
            ("GET", rf"^({loc}/operations/[^/:]+)$", self._get_operation),
            ("POST", r"^(token)$", self._token),
        ]
        for method, pattern, fn in routes:
            match = re.match(pattern, p)
            if method == m and match:
                result: tuple[int, Any] = fn(req, match.group(1))
                return result
        return 404, _error(404, "NOT_FOUND", f"no route {m} {p}")

    # --- tuning jobs ---------------------------------------------------------------------------

    def _create_job(self, req: Request, parent: str) -> tuple[int, Any]:
        body = req.body or {}
        if not body.get("baseModel"):
            return 400, _error(400, "INVALID_ARGUMENT", "baseModel is required")
        spec_key = next(
            (k for k in ("supervisedTuningSpec", "preferenceOptimizationSpec") if k in body), None
        )
        if spec_key is None or not body[spec_key].get("trainingDatasetUri"):
            return 400, _error(400, "INVALID_ARGUMENT", "trainingDatasetUri is required")
        spec = json.loads(json.dumps(body[spec_key]))
        spec.setdefault("hyperParameters", {}).setdefault("epochCount", str(DEFAULT_EPOCHS))
        job_id = self._next_id()
        data: dict[str, Any] = {
            "name": f"{parent}/tuningJobs/{job_id}",
            "state": "JOB_STATE_PENDING",
            "createTime": "2026-11-23T10:00:00.000000Z",
            "baseModel": body["baseModel"],
            spec_key: spec,
            "labels": body.get("labels", {}),
        }
        for key in ("tunedModelDisplayName", "description"):
            if key in body:
                data[key] = body[key]
        final = "JOB_STATE_SUCCEEDED" if self.outcome == "succeed" else "JOB_STATE_FAILED"
        self.jobs[data["name"]] = Job(data, ["JOB_STATE_RUNNING", final])
        return 200, data

    def _advance(self, job: Job) -> None:
        if job.step >= len(job.script):
            return
        state = job.script[job.step]
        job.step += 1
        data = job.data
        data["state"] = state
        parent = data["name"].split("/tuningJobs/")[0]
        if state == "JOB_STATE_RUNNING":
            data["startTime"] = "2026-11-23T10:01:00Z"
            data["tuningJobState"] = "TUNING_JOB_STATE_TUNING"
            data["tuningJobMetadata"] = {"completedEpochCount": "1"}
        elif state == "JOB_STATE_SUCCEEDED":
            spec_key = next(k for k in data if k.endswith("Spec"))
            epochs = data[spec_key]["hyperParameters"]["epochCount"]
            model_id, endpoint_id = self._next_id(), self._next_id()
            model = f"{parent}/models/{model_id}@1"
            endpoint = f"{parent}/endpoints/{endpoint_id}"
            data["tunedModel"] = {"model": model, "endpoint": endpoint}
            data["endTime"] = "2026-11-23T11:00:00Z"
            data.pop("tuningJobState", None)
            data["tuningJobMetadata"] = {"completedEpochCount": str(epochs)}
            stats_key = (
                "supervisedTuningDataStats"
                if spec_key == "supervisedTuningSpec"
                else "preferenceOptimizationDataStats"
            )
            data["tuningDataStats"] = {
                stats_key: {
                    "totalBillableTokenCount": str(BILLABLE_TOKENS),  # int64 as a JSON string
                    "tuningDatasetExampleCount": "12",
                }
            }
            if self.truncated_examples:
                data["tuningDataStats"][stats_key]["totalTruncatedExampleCount"] = str(
                    self.truncated_examples
                )
            self.models[model.split("@")[0]] = {"name": model.split("@")[0]}
            self.endpoints[endpoint] = {
                "name": endpoint,
                "deployedModels": [{"id": f"dm-{model_id}", "model": model}],
            }
        elif state == "JOB_STATE_FAILED":
            data["endTime"] = "2026-11-23T10:30:00Z"
            data["error"] = {"code": 3, "message": "Dataset line 3: contents must end with model"}
        elif state == "JOB_STATE_CANCELLED":
            data["endTime"] = "2026-11-23T10:20:00Z"

    def _get_job(self, req: Request, name: str) -> tuple[int, Any]:
        job = self.jobs.get(name)
        if job is None:
            return 404, _error(404, "NOT_FOUND", f"TuningJob {name} not found")
        self._advance(job)
        return 200, job.data

    def _list_jobs(self, req: Request, parent: str) -> tuple[int, Any]:
        jobs = [j.data for n, j in self.jobs.items() if n.startswith(parent + "/")]
        jobs.reverse()  # newest first, like the API
        flt = (req.query.get("filter") or [""])[0]
        match = re.fullmatch(r'labels\.([a-z0-9_-]+)="([^"]*)"', flt)
        if match and not self.list_ignores_filter:
            key, value = match.groups()
            jobs = [j for j in jobs if j.get("labels", {}).get(key) == value]
        size = int((req.query.get("pageSize") or ["50"])[0])
        start = int((req.query.get("pageToken") or ["0"])[0])
        page = jobs[start : start + size]
        out: dict[str, Any] = {"tuningJobs": page}
        if start + size < len(jobs):
            out["nextPageToken"] = str(start + size)
        return 200, out

    def _cancel_job(self, req: Request, name: str) -> tuple[int, Any]:
        job = self.jobs.get(name)
        if job is None:
            return 404, _error(404, "NOT_FOUND", f"TuningJob {name} not found")
        if job.data["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
            return 400, _error(400, "FAILED_PRECONDITION", "job already ended")
        job.data["state"] = "JOB_STATE_CANCELLING"
        job.script = ["JOB_STATE_CANCELLED"]
        job.step = 0
        return 200, {}

    # --- inference ---------------------------------------------------------------------------

    def _generate(self, req: Request, model: str) -> tuple[int, Any]:
        if "/endpoints/" in model and model not in self.endpoints:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {model} not found")
        contents = (req.body or {}).get("contents", [])
        last = contents[-1]["parts"][-1].get("text", "") if contents else ""
        text = f"[{model.rsplit('/', 1)[-1]}] echo: {last}"
        parts = self.reply_parts or [{"text": text}]
        return 200, {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
        }

    def _count_tokens(self, req: Request, model: str) -> tuple[int, Any]:
        return 200, {"totalTokens": count_words(req.body or {})}

    # --- endpoints, models, operations -----------------------------------------------------

    def _operation(self, parent: str) -> dict[str, Any]:
        name = f"{parent}/operations/{self._next_id()}"
        self.operations[name] = {"name": name, "done": True, "response": {}}
        return {"name": name, "done": False}

    def _parent(self, name: str) -> str:
        match = re.match(r"projects/[^/]+/locations/[^/]+", name)
        assert match
        return match.group(0)

    def _get_endpoint(self, req: Request, name: str) -> tuple[int, Any]:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {name} not found")
        return 200, endpoint

    def _undeploy(self, req: Request, name: str) -> tuple[int, Any]:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {name} not found")
        wanted = (req.body or {}).get("deployedModelId")
        before = len(endpoint["deployedModels"])
        endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] != wanted]
        if len(endpoint["deployedModels"]) == before:
            return 400, _error(400, "INVALID_ARGUMENT", f"no deployed model {wanted}")
        return 200, self._operation(self._parent(name))

    def _delete_endpoint(self, req: Request, name: str) -> tuple[int, Any]:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {name} not found")
        if endpoint["deployedModels"]:
            return 400, _error(
                400,
                "FAILED_PRECONDITION",
                "Endpoint has deployed models; undeploy them before deleting it",
            )
        del self.endpoints[name]
        return 200, self._operation(self._parent(name))

    def _delete_model(self, req: Request, name: str) -> tuple[int, Any]:
        if name not in self.models:
            return 404, _error(404, "NOT_FOUND", f"Model {name} not found")
        if any(
            d["model"].split("@")[0] == name
            for e in self.endpoints.values()
            for d in e["deployedModels"]
        ):
            return 400, _error(400, "FAILED_PRECONDITION", "Model is deployed to an endpoint")
        del self.models[name]
        return 200, self._operation(self._parent(name))

    def _token(self, req: Request, _name: str) -> tuple[int, Any]:
        """OAuth token endpoint for service-account keys whose ``token_uri`` points here."""
        form = req.body if isinstance(req.body, dict) else {}
        if "assertion" not in form:
            return 400, {"error": "invalid_grant", "error_description": "no assertion"}
        return 200, {"access_token": self.issued_token, "expires_in": 3600, "token_type": "Bearer"}

    def _get_operation(self, req: Request, name: str) -> tuple[int, Any]:
        op = self.operations.get(name)
        if op is None:
            return 404, _error(404, "NOT_FOUND", f"Operation {name} not found")
        return 200, op


def count_words(body: dict[str, Any]) -> int:
    """The fake's token count: words of every text part, +5 per function call/response part,
    +10 per tool."""
    parts = [
        part
        for content in [*body.get("contents", []), body.get("systemInstruction") or {}]
        for part in content.get("parts", [])
    ]
    words = sum(len(str(p.get("text", "")).split()) for p in parts)
    calls = sum(1 for p in parts if "functionCall" in p or "functionResponse" in p)
    return words + 5 * calls + 10 * len(body.get("tools") or [])


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _handler(fake: FakeVertex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = parse_qs(raw.decode())  # OAuth token requests are form-encoded
            headers = {k.lower(): v for k, v in self.headers.items()}
            send(self, fake.handle(method, self.path, body, headers))

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_fake_vertex() -> Iterator[FakeVertex]:
    fake = FakeVertex()
    httpd = start_server(_handler(fake))
    fake.httpd = httpd
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
