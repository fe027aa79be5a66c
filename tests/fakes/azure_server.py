"""A fake Azure OpenAI resource on 127.0.0.1: the v1 data plane and the ARM deployments API.

Built on :class:`~tests.fakes.openai_server.FakeOpenAI` (files, jobs, events, checkpoints,
chat, the fault kinds of tests/fakes/faults.py), with what Azure does differently, from
Microsoft's REST specs and docs (../shared/PROVIDERS.md, "Azure OpenAI"):

* data-plane routes live under ``/openai/v1`` (S2); a key is accepted as ``api-key`` or as a
  bearer token (D1); anything else gets Azure's 401 body (I2);
* an upload starts ``pending`` and is ``processed`` from its next retrieve on (S1, A1); a job
  on a file that is not processed is refused (400 ``invalidPayload``; the wording is assumed);
* a job create without ``trainingType``, or for a model Azure does not tune, gets 400
  ``invalidPayload`` "The specified base model does not support fine-tuning." (I1, docs Q&A);
* jobs go ``pending`` → ``running`` → ``running`` → ``succeeded``; ``organization_id`` is null and
  the tuned model is ``<model>.ft-<32 hex>`` (S1 examples); ``pause`` (running jobs only) and
  ``resume`` (paused jobs only) move a job to ``paused`` and back (D2);
* the run-id metadata filter of the job list is ignored (whether Azure honours it is not
  documented): tuneport scans the list;
* chat answers only deployment names (404 ``DeploymentNotFound``, I2); a stream opens with a
  chunk without choices, carrying ``prompt_filter_results``;
* ARM ``PUT/GET/DELETE .../providers/Microsoft.CognitiveServices/accounts/{account}/deployments/
  {name}?api-version=...`` with a bearer management token (S3): PUT answers 201 ``Accepted``,
  then GETs see ``Creating`` and ``Succeeded``; DELETE answers 200, a missing one 204 (S3).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.faults import Reply, Request, parse_body, read_body, send
from tests.fakes.openai_server import FakeOpenAI, _HTTPError
from tests.fakes.sse import EventStream

TUNABLE = (
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
)
ARM_ROUTE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.CognitiveServices/accounts/(?P<account>[^/]+)/deployments/(?P<name>[^/]+)$"
)
NO_TUNING = "The specified base model does not support fine-tuning."


def _azure_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "param": None, "type": "error"}}


@dataclass
class FakeAzure(FakeOpenAI):
    arm_token: str | None = None  # the management plane's bearer token (None: any)
    script: tuple[str, ...] = ("pending", "running", "running", "succeeded")
    filter_metadata: bool = False
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    base_deployments: tuple[str, ...] = ("gpt-4.1-mini",)  # chat-ready base deployments

    def __post_init__(self) -> None:
        super().__post_init__()
        handler = self._server.RequestHandlerClass
        handler.do_PUT = handler.do_GET  # type: ignore[attr-defined]
        self._deploy_steps: dict[str, int] = {}

    @property
    def endpoint(self) -> str:
        return self.root_url

    @property
    def base_url(self) -> str:
        return self.root_url + "/openai/v1"

    # --- plumbing ------------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        headers = {k.lower(): v for k, v in h.headers.items()}
        body = parse_body(headers, read_body(h.rfile, headers))
        query = parse_qs(parts.query, keep_blank_values=True)
        arm = parts.path.startswith("/subscriptions/")
        path = parts.path if arm else parts.path.removeprefix("/openai/v1")
        req = Request(h.command, path, query, headers, body)
        self.faults.record(req)
        refused = self._arm_refused(req) if arm else self._unauthorized(req)
        answer = self._arm if arm else self._answer
        send(h, refused or self.faults.serve(req, lambda: answer(req)))

    def _unauthorized(self, req: Request) -> Reply | None:
        given = {req.headers.get("api-key"), req.headers.get("authorization", "")[7:] or None}
        if self.api_key is None or self.api_key in given:
            return None
        return Reply(
            401,
            {
                "error": {
                    "code": "401",
                    "message": "Access denied due to invalid subscription key or wrong API "
                    "endpoint. Make sure to provide a valid key for an active subscription and "
                    "use a correct regional API endpoint for your resource.",
                }
            },
        )

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        seg = [s for s in path.split("/") if s]
        if len(seg) == 2 and seg[0] == "files" and method == "GET" and seg[1] in self.files:
            found = self.files[seg[1]]
            reply = dict(found)
            if found["status"] == "pending":
                found["status"] = "processed"  # processed from the next look on
            return 200, reply
        if seg == ["fine_tuning", "jobs"] and method == "POST":
            self._check_create(body)
        if len(seg) == 4 and seg[:2] == ["fine_tuning", "jobs"] and method == "POST":
            job = self.jobs[seg[2]]
            if seg[3] == "pause":
                if job["status"] != "running":
                    raise _HTTPError(
                        400, _azure_error("unexpectedEntityState", "Only running jobs pause.")
                    )
                job["status"] = "paused"
                return 200, job
            if seg[3] == "resume":
                if job["status"] != "paused":
                    raise _HTTPError(
                        400, _azure_error("unexpectedEntityState", "Only paused jobs resume.")
                    )
                job["status"] = "running"
                return 200, job
        if seg == ["chat", "completions"] and method == "POST":
            self._check_deployment(body["model"])
        status, payload = super()._route(method, path, query, body)
        if seg == ["fine_tuning", "jobs"] and method == "POST":
            payload["organization_id"] = None
            payload["result_files"] = None
            payload["trainingType"] = body["trainingType"]
        return status, payload

    def _create_file(self, body: dict[str, Any]) -> dict[str, Any]:
        made = super()._create_file(body)
        made["status"] = "pending"
        return made

    def _check_create(self, body: dict[str, Any]) -> None:
        if "trainingType" not in body or body.get("model") not in TUNABLE:
            raise _HTTPError(400, _azure_error("invalidPayload", NO_TUNING))
        for role in ("training_file", "validation_file"):
            file_id = body.get(role)
            if file_id and self.files.get(file_id, {}).get("status") != "processed":
                raise _HTTPError(
                    400, _azure_error("invalidPayload", f"The {role} {file_id} is not processed.")
                )

    def _advance(self, job: dict[str, Any]) -> None:
        if job["status"] == "paused":
            return
        super()._advance(job)
        if job["status"] == "succeeded" and job["fine_tuned_model"].startswith("ft:"):
            job["fine_tuned_model"] = f"{job['model']}.ft-{uuid.uuid4().hex}"

    def _check_deployment(self, name: str) -> None:
        ready = self.deployments.get(name, {}).get("properties", {})
        if name in self.base_deployments or ready.get("provisioningState") == "Succeeded":
            return
        raise _HTTPError(
            404,
            _azure_error(
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            ),
        )

    def _chat_chunks(self, model: str, content: str) -> EventStream:
        stream = super()._chat_chunks(model, content)
        opening = {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
        }
        return EventStream([opening, *stream.events])

    # --- the management plane (ARM) --------------------------------------------------------

    def _arm_refused(self, req: Request) -> Reply | None:
        auth = req.headers.get("authorization", "")
        if self.arm_token is not None and auth != f"Bearer {self.arm_token}":
            code = "AuthenticationFailed" if not auth else "InvalidAuthenticationToken"
            return Reply(401, {"error": {"code": code, "message": "The access token is invalid."}})
        if "api-version" not in req.query:
            return Reply(
                400,
                {
                    "error": {
                        "code": "MissingApiVersionParameter",
                        "message": "The api-version query parameter (?api-version=) is required.",
                    }
                },
            )
        return None

    def arm_calls(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and ARM_ROUTE.match(r.path)]

    def _arm(self, req: Request) -> Reply:
        found = ARM_ROUTE.match(req.path)
        if found is None:
            return Reply(404, {"error": {"code": "NotFound", "message": req.path}})
        name = found["name"]
        with self._lock:
            if req.method == "PUT":
                created = name not in self.deployments
                self.deployments[name] = {
                    "id": req.path,
                    "name": name,
                    "type": "Microsoft.CognitiveServices/accounts/deployments",
                    "sku": req.body["sku"],
                    "properties": {
                        "model": req.body["properties"]["model"],
                        "provisioningState": "Accepted",
                    },
                }
                self._deploy_steps[name] = 0
                return Reply(201 if created else 200, self.deployments[name])
            if req.method == "DELETE":
                gone = self.deployments.pop(name, None)
                return Reply(200 if gone else 204, None if gone is None else {})
            if name not in self.deployments:
                return Reply(
                    404,
                    {"error": {"code": "DeploymentNotFound", "message": f"{name} not found"}},
                )
            deployment = self.deployments[name]
            step = self._deploy_steps[name] = self._deploy_steps[name] + 1
            state = "Creating" if step < 2 else "Succeeded"
            deployment["properties"]["provisioningState"] = state
            return Reply(200, json.loads(json.dumps(deployment)))


ARM_ENV = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "AZURE_RESOURCE_GROUP": "rg-tuneport",
    "AZURE_OPENAI_ACCOUNT": "tuneport-res",
}


@contextmanager
def serving_azure(
    monkeypatch: Any, key: str, *, arm_token: str = "arm-TOKEN-0123456789", poll_now: bool = True
) -> Iterator[FakeAzure]:
    """A :class:`FakeAzure` that the CLI reaches the documented way (AZURE_OPENAI_API_KEY,
    AZURE_OPENAI_ENDPOINT, the ARM settings and AZURE_MANAGEMENT_TOKEN; the management base URL
    pointed at the fake)."""
    with FakeAzure(api_key=key, arm_token=arm_token) as server:
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.endpoint)
        monkeypatch.setenv("AZURE_MANAGEMENT_TOKEN", arm_token)
        monkeypatch.setenv("AZURE_MANAGEMENT_URL", server.root_url)
        for name, value in ARM_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AZURE_OPENAI_BASE_URL", raising=False)
        if poll_now:
            monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
        yield server


__all__ = ["FakeAzure", "serving_azure"]
