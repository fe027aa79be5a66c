"""A fake Fireworks AI control plane + inference API on 127.0.0.1 for the real ``fireworks`` SDK.

stdlib ``http.server`` in a thread, port 0, in-memory state. Routes are the ones
``fireworks-ai==1.2.30`` calls once ``base_url`` is overridden (then every path is relative:
``/v1/accounts/{account}/...`` for the control plane, ``/v1/chat/completions`` for inference;
``/inference/v1/chat/completions``, the default host's path, is accepted too):

* datasets: create (client-chosen ``datasetId``; a second create with the same id gets ``409
  ALREADY_EXISTS``), ``:upload`` (multipart ``file``), ``:getUploadEndpoint`` + ``PUT`` to the
  signed URL (no auth, on this fake) + ``:validateUpload``, get, list (pageToken), delete;
* ``supervisedFineTuningJobs`` and ``dpoJobs``: create (client-chosen id in the query,
  ``409`` on a duplicate), get, list, delete, ``:cancel``;
* ``models`` get/list (the job's output LoRA appears when it completes), ``deployments``
  create/get/list/delete, ``deployedModels`` (``client.lora``) load/get/list/unload;
* chat completions: base models (``accounts/fireworks/models/*``) always; a tuned model only once
  a READY deployment of it (live merge) or a DEPLOYED deployedModel exists, else ``404``.
  ``stream=True`` answers server-sent events: word-sized ``chat.completion.chunk`` objects
  (fireworks/types/chat/chat_completion_chunk.py), the last with ``finish_reason`` and
  ``usage``, then ``data: [DONE]`` (``stream_as_json``: one JSON reply instead, as a proxy that
  ignores ``stream`` would send).

Jobs and deployments move one state along their scripts per :meth:`FakeFireworks.advance`
(``advance_on_get`` makes every GET advance too). Requests are logged in ``requests``; faults are
scripted with :meth:`fail`, :meth:`drop`, :meth:`garble`, :meth:`mangle`, :meth:`hold`
(tests/fakes/faults.py). Control-plane errors use the gRPC-gateway
body ``{"code": <grpc code>, "message": ..., "details": []}`` (an assumption: clients should key on
the HTTP status, which the SDK maps to ``fireworks.ConflictError`` etc.). Numbers are the fake's.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.fakes.faults import (
    Faults,
    Reply,
    Request,
    Scriptable,
    Served,
    handler_for,
    start_server,
)
from tests.fakes.sse import USAGE, EventStream

SFT_SCRIPT = ("JOB_STATE_CREATING", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_COMPLETED")
TERMINAL = ("JOB_STATE_COMPLETED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")
UPLOAD_LIMIT = 150 * 1024 * 1024  # datasets.upload() docstring: "file sizes up to 150Mb"
FAKE_RATE = 0.5  # $ per 1M training tokens, for estimatedCost only
GRPC = {  # status name -> (gRPC code, HTTP status), google.rpc.Code / grpc-gateway mapping
    "INVALID_ARGUMENT": (3, 400),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403),
    "RESOURCE_EXHAUSTED": (8, 429),
    "FAILED_PRECONDITION": (9, 400),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
    "UNAUTHENTICATED": (16, 401),
}
ID_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")  # AIP-122 style resource ids


@dataclass
class Job:
    kind: str  # "supervisedFineTuningJobs" | "dpoJobs"
    data: dict[str, Any]
    step: int = 0
    fail_message: str | None = None


class RpcError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.http = GRPC[status]
        self.payload: Any = {"code": self.code, "message": message, "details": []}


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeFireworks(Served, Scriptable):
    def __init__(
        self,
        *,
        api_key: str | None = "fw-fake-key",
        account_id: str = "acme",
        script: tuple[str, ...] = SFT_SCRIPT,
    ) -> None:
        self.api_key = api_key  # None: accept any key
        self.account_id = account_id
        self.script = script
        self.advance_on_get = False  # True: each GET of a job or deployment advances it
        self.fail_next_job: str | None = None  # the next created job ends JOB_STATE_FAILED
        self.faults = Faults()  # the request log and scripted faults
        self.datasets: dict[str, dict[str, Any]] = {}  # full resource name -> Dataset
        self.dataset_files: dict[str, dict[str, bytes]] = {}  # dataset name -> filename -> bytes
        self.expected_files: dict[str, dict[str, int]] = {}  # from getUploadEndpoint
        self.signed: dict[str, tuple[str, str]] = {}  # token -> (dataset name, filename)
        self.download_urls: dict[str, tuple[str, str]] = {}  # token -> (dataset, filename)
        self.jobs: dict[str, Job] = {}  # full job name -> Job
        self.models: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.deployed_models: dict[str, dict[str, Any]] = {}
        self.chats: list[dict[str, Any]] = []
        self.stream_as_json = False  # True: answer stream=True with one JSON chat.completion
        self._lock = threading.RLock()
        self._ids = 0
        self._server = start_server(handler_for(self.handle))

    # --- control ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Pass as ``Fireworks(base_url=...)`` (no path: the SDK's paths start with ``/v1``)."""
        return self.root_url

    @property
    def parent(self) -> str:
        return f"accounts/{self.account_id}"

    def error_body(self, status: int, message: str, **details: Any) -> Any:
        code = next((c for c, h in GRPC.values() if h == status), 2)
        return {"code": code, "message": message, "details": []}

    def advance(self, steps: int = 1, name: str | None = None) -> None:
        """Move job/deployment ``name`` (default: all) ``steps`` states along."""
        with self._lock:
            for _ in range(steps):
                for job in list(self.jobs.values()):
                    if name in (None, job.data["name"]):
                        self._advance_job(job)
                for dep in list(self.deployments.values()):
                    if name in (None, dep["name"]) and dep["state"] == "CREATING":
                        dep["state"], dep["updateTime"] = "READY", now()

    def _id(self) -> str:
        self._ids += 1
        return f"{self._ids:04d}{uuid.uuid4().hex[:8]}"

    # --- plumbing ------------------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        self.faults.record(req)
        signed = req.path.startswith("/_signed/")
        key_ok = (
            self.api_key is None or req.headers.get("authorization") == f"Bearer {self.api_key}"
        )
        if not signed and not key_ok:
            if "chat/completions" in req.path:
                return Reply(
                    401, inference_error("UNAUTHORIZED", "The API key you provided is invalid.")
                )
            return Reply(
                401, {"code": 16, "message": "unauthenticated: invalid API key", "details": []}
            )
        return self.faults.serve(req, lambda: self._act(req))

    def _act(self, req: Request) -> Reply:
        with self._lock:
            try:
                status, payload = self._route(req)
            except RpcError as exc:
                return Reply(exc.http, exc.payload)
        if isinstance(payload, EventStream):
            return Reply(status, payload.data(), content_type="text/event-stream")
        return Reply(status, payload)

    def _route(self, req: Request) -> tuple[int, Any]:
        m, p = req.method, req.path
        if m == "POST" and p in ("/v1/chat/completions", "/inference/v1/chat/completions"):
            return self._chat(req)
        if m == "PUT" and p.startswith("/_signed/"):
            return self._put_signed(req, p.removeprefix("/_signed/"))
        if m == "GET" and p.startswith("/_signed/"):
            return self._get_signed(p.removeprefix("/_signed/"))
        match = re.fullmatch(r"/v1/accounts/([^/]+)/([A-Za-z]+)(?:/([^/:]+))?(?::([A-Za-z]+))?", p)
        if not match:
            raise RpcError("NOT_FOUND", f"no route {m} {p}")
        account, collection, rid, verb = match.groups()
        if account != self.account_id:
            raise RpcError("PERMISSION_DENIED", f"no access to account {account}")
        key = (m, collection, rid is not None, verb)
        routes: dict[tuple[str, str, bool, str | None], Any] = {
            ("POST", "datasets", False, None): self._create_dataset,
            ("GET", "datasets", False, None): self._lister("datasets", self.datasets),
            ("GET", "datasets", True, None): self._getter(self.datasets, "Dataset"),
            ("DELETE", "datasets", True, None): self._delete_dataset,
            ("POST", "datasets", True, "upload"): self._upload,
            ("POST", "datasets", True, "getUploadEndpoint"): self._upload_endpoint,
            ("POST", "datasets", True, "validateUpload"): self._validate_upload,
            ("GET", "datasets", True, "getDownloadEndpoint"): self._download_endpoint,
            ("POST", "supervisedFineTuningJobs", False, None): self._creator(
                "supervisedFineTuningJobs"
            ),
            ("POST", "dpoJobs", False, None): self._creator("dpoJobs"),
            ("GET", "models", False, None): self._lister("models", self.models),
            ("GET", "models", True, None): self._getter(self.models, "Model"),
            ("POST", "deployments", False, None): self._create_deployment,
            ("GET", "deployments", False, None): self._lister("deployments", self.deployments),
            ("GET", "deployments", True, None): self._get_deployment,
            ("DELETE", "deployments", True, None): self._deleter(self.deployments, "Deployment"),
            ("POST", "deployedModels", False, None): self._load_lora,
            ("GET", "deployedModels", False, None): self._lister(
                "deployedModels", self.deployed_models
            ),
            ("GET", "deployedModels", True, None): self._getter(
                self.deployed_models, "DeployedModel"
            ),
            ("DELETE", "deployedModels", True, None): self._deleter(
                self.deployed_models, "DeployedModel"
            ),
        }
        for jobs in ("supervisedFineTuningJobs", "dpoJobs"):
            table = {n: j.data for n, j in self.jobs.items() if j.kind == jobs}
            routes[("GET", jobs, False, None)] = self._lister(jobs, table)
            routes[("GET", jobs, True, None)] = self._get_job
            routes[("DELETE", jobs, True, None)] = self._deleter(self.jobs, "Job")
            routes[("POST", jobs, True, "cancel")] = self._cancel_job
        fn = routes.get(key)
        if fn is None:
            raise RpcError("NOT_FOUND", f"no route {m} {p}")
        name = f"{self.parent}/{collection}/{rid}" if rid else collection
        result: tuple[int, Any] = fn(req, name)
        return result

    def _lister(self, key: str, table: dict[str, dict[str, Any]]) -> Any:
        def list_(req: Request, _name: str) -> tuple[int, Any]:
            items = [public(item) for item in table.values()]
            size = int((req.query.get("pageSize") or ["50"])[0])
            start = int((req.query.get("pageToken") or ["0"])[0])
            out: dict[str, Any] = {key: items[start : start + size], "totalSize": len(items)}
            if start + size < len(items):
                out["nextPageToken"] = str(start + size)
            return 200, out

        return list_

    def _getter(self, table: dict[str, dict[str, Any]], what: str) -> Any:
        def get(req: Request, name: str) -> tuple[int, Any]:
            if name not in table:
                raise RpcError("NOT_FOUND", f"{what} {name} not found")
            return 200, table[name]

        return get

    def _deleter(self, table: dict[str, Any], what: str) -> Any:
        def delete(req: Request, name: str) -> tuple[int, Any]:
            if name not in table:
                raise RpcError("NOT_FOUND", f"{what} {name} not found")
            del table[name]
            return 200, {}

        return delete

    # --- datasets ------------------------------------------------------------------------------

    def _create_dataset(self, req: Request, _name: str) -> tuple[int, Any]:
        body = req.body or {}
        dataset_id = str(body.get("datasetId") or "")
        if not ID_RE.fullmatch(dataset_id):
            raise RpcError("INVALID_ARGUMENT", f"invalid dataset id {dataset_id!r}")
        name = f"{self.parent}/datasets/{dataset_id}"
        if name in self.datasets:
            raise RpcError("ALREADY_EXISTS", f"dataset {name} already exists")
        spec = dict(body.get("dataset") or {})
        self.datasets[name] = {
            **spec,
            "name": name,
            "state": "UPLOADING",
            "createTime": now(),
            "updateTime": now(),
            "createdBy": "fake@example.com",
            "exampleCount": spec.get("exampleCount", "0"),
            "format": spec.get("format", "FORMAT_UNSPECIFIED"),
            "status": {"code": "OK", "message": ""},
        }
        self.dataset_files[name] = {}
        return 200, self.datasets[name]

    def _dataset(self, name: str) -> dict[str, Any]:
        if name not in self.datasets:
            raise RpcError("NOT_FOUND", f"Dataset {name} not found")
        return self.datasets[name]

    def _delete_dataset(self, req: Request, name: str) -> tuple[int, Any]:
        self._dataset(name)
        del self.datasets[name]
        self.dataset_files.pop(name, None)
        return 200, {}

    def _upload(self, req: Request, name: str) -> tuple[int, Any]:
        dataset = self._dataset(name)
        files = (req.body or {}).get("files", {}) if isinstance(req.body, dict) else {}
        if "file" not in files:
            raise RpcError("INVALID_ARGUMENT", "multipart field 'file' is required")
        filename, data = files["file"]
        if len(data) > UPLOAD_LIMIT:
            raise RpcError("INVALID_ARGUMENT", "file larger than 150MB: use getUploadEndpoint")
        self.dataset_files[name] = {filename: data}
        self._finish_dataset(dataset)
        return 200, {
            "id": name.rsplit("/", 1)[-1],
            "object": "file",
            "bytes": len(data),
            "created_at": int(datetime.now(UTC).timestamp()),
            "filename": filename,
            "purpose": "fine-tune",
        }

    def _upload_endpoint(self, req: Request, name: str) -> tuple[int, Any]:
        self._dataset(name)
        sizes = (req.body or {}).get("filenameToSize") or {}
        if not sizes:
            raise RpcError("INVALID_ARGUMENT", "filenameToSize is required")
        self.expected_files[name] = {k: int(v) for k, v in sizes.items()}
        self.dataset_files[name] = {}  # the endpoint overwrites the registered files
        urls = {}
        for filename in sizes:
            token = uuid.uuid4().hex
            self.signed[token] = (name, filename)
            urls[filename] = f"{self.base_url}/_signed/{token}"
        return 200, {"filenameToSignedUrls": urls}

    def _put_signed(self, req: Request, token: str) -> tuple[int, Any]:
        if token not in self.signed:
            raise RpcError("PERMISSION_DENIED", "signed URL unknown or expired")
        name, filename = self.signed.pop(token)
        data = req.body if isinstance(req.body, bytes) else b""
        if len(data) != self.expected_files.get(name, {}).get(filename):
            raise RpcError("INVALID_ARGUMENT", f"{filename}: size differs from getUploadEndpoint")
        self.dataset_files.setdefault(name, {})[filename] = data
        return 200, {}

    def _validate_upload(self, req: Request, name: str) -> tuple[int, Any]:
        dataset = self._dataset(name)
        missing = set(self.expected_files.get(name, {})) - set(self.dataset_files.get(name, {}))
        if missing or not self.dataset_files.get(name):
            raise RpcError("FAILED_PRECONDITION", f"files not uploaded: {sorted(missing)}")
        self._finish_dataset(dataset)
        return 200, {}

    def _download_endpoint(self, req: Request, name: str) -> tuple[int, Any]:
        """``DatasetGetDownloadEndpointResponse``: a signed URL per file of the dataset."""
        self._dataset(name)
        urls = {}
        for filename in self.dataset_files.get(name, {}):
            token = uuid.uuid4().hex
            self.download_urls[token] = (name, filename)
            urls[filename] = f"{self.base_url}/_signed/{token}"
        return 200, {"filenameToSignedUrls": urls}

    def _get_signed(self, token: str) -> tuple[int, Any]:
        if token not in self.download_urls:
            raise RpcError("PERMISSION_DENIED", "signed URL unknown or expired")
        name, filename = self.download_urls[token]
        files = self.dataset_files.get(name, {})
        if filename not in files:
            raise RpcError("NOT_FOUND", f"{filename} not found")
        return 200, files[filename]

    def _finish_dataset(self, dataset: dict[str, Any]) -> None:
        blobs = self.dataset_files[dataset["name"]].values()
        rows = [
            line
            for blob in blobs
            for line in blob.decode("utf-8", "replace").splitlines()
            if line.strip()
        ]
        problem = check_rows(rows)
        dataset["exampleCount"] = str(len(rows))
        dataset["estimatedTokenCount"] = str(sum(len(b) for b in blobs) // 4)
        dataset["updateTime"] = now()
        dataset["state"] = "READY"
        if problem:
            dataset["status"] = {"code": "INVALID_ARGUMENT", "message": problem}

    # --- jobs ----------------------------------------------------------------------------------

    def _creator(self, kind: str) -> Any:
        def create(req: Request, _name: str) -> tuple[int, Any]:
            return self._create_job(req, kind)

        return create

    def _create_job(self, req: Request, kind: str) -> tuple[int, Any]:
        body = dict(req.body or {})
        id_param = "supervisedFineTuningJobId" if kind == "supervisedFineTuningJobs" else "dpoJobId"
        job_id = (req.query.get(id_param) or [""])[0] or self._id()
        if not ID_RE.fullmatch(job_id):
            raise RpcError("INVALID_ARGUMENT", f"invalid job id {job_id!r}")
        name = f"{self.parent}/{kind}/{job_id}"
        if name in self.jobs:
            raise RpcError("ALREADY_EXISTS", f"job {name} already exists")
        config = (
            body if kind == "supervisedFineTuningJobs" else dict(body.get("trainingConfig") or {})
        )
        if not (config.get("baseModel") or config.get("warmStartFrom")):
            raise RpcError("INVALID_ARGUMENT", "one of baseModel or warmStartFrom is required")
        dataset = self.datasets.get(str(body.get("dataset")))
        if dataset is None:
            raise RpcError("NOT_FOUND", f"Dataset {body.get('dataset')} not found")
        if dataset["state"] != "READY":
            raise RpcError("FAILED_PRECONDITION", f"Dataset {dataset['name']} is not READY")
        output = str(config.get("outputModel") or job_id)
        output = output if output.startswith("accounts/") else f"{self.parent}/models/{output}"
        if output in self.models or any(j.data["_output"] == output for j in self.jobs.values()):
            raise RpcError("ALREADY_EXISTS", f"model {output} already exists")
        config["outputModel"] = output
        data = {
            **body,
            "name": name,
            "state": self.script[0],
            "createTime": now(),
            "updateTime": now(),
            "createdBy": "fake@example.com",
            "status": {"code": "OK", "message": ""},
            "_output": output,
        }
        if kind == "supervisedFineTuningJobs":
            data.update(config)
            data["jobProgress"] = {"percent": 0, "epoch": 0}
        else:
            data["trainingConfig"] = config
        job = Job(kind, data)
        if self.fail_next_job is not None:
            job.fail_message, self.fail_next_job = self.fail_next_job, None
        self.jobs[name] = job
        return 200, public(data)

    def _get_job(self, req: Request, name: str) -> tuple[int, Any]:
        if name not in self.jobs:
            raise RpcError("NOT_FOUND", f"Job {name} not found")
        if self.advance_on_get:
            self._advance_job(self.jobs[name])
        return 200, public(self.jobs[name].data)

    def _cancel_job(self, req: Request, name: str) -> tuple[int, Any]:
        if name not in self.jobs:
            raise RpcError("NOT_FOUND", f"Job {name} not found")
        data = self.jobs[name].data
        if data["state"] in TERMINAL:
            raise RpcError("FAILED_PRECONDITION", f"job is already in state {data['state']}")
        data["state"], data["updateTime"] = "JOB_STATE_CANCELLING", now()
        return 200, {}

    def _advance_job(self, job: Job) -> None:
        data = job.data
        if data["state"] in TERMINAL:
            return
        data["updateTime"] = now()
        if data["state"] == "JOB_STATE_CANCELLING":
            data["state"], data["completedTime"] = "JOB_STATE_CANCELLED", now()
            return
        job.step = min(job.step + 1, len(self.script) - 1)
        state = self.script[job.step]
        if state == "JOB_STATE_COMPLETED" and job.fail_message is not None:
            data["state"], data["completedTime"] = "JOB_STATE_FAILED", now()
            data["status"] = {"code": "INVALID_ARGUMENT", "message": job.fail_message}
            return
        data["state"] = state
        if job.kind == "supervisedFineTuningJobs" and state == "JOB_STATE_RUNNING":
            data["jobProgress"] = {"percent": 50, "epoch": 0}
        if state == "JOB_STATE_COMPLETED":
            self._complete(job)

    def _complete(self, job: Job) -> None:
        data = job.data
        config = data if job.kind == "supervisedFineTuningJobs" else data["trainingConfig"]
        dataset = self.datasets.get(str(data["dataset"]), {})
        epochs = int(config.get("epochs") or 1)
        tokens = int(dataset.get("estimatedTokenCount") or 0) * epochs
        dollars = tokens / 1e6 * FAKE_RATE
        data["completedTime"] = now()
        if job.kind == "supervisedFineTuningJobs":
            data["jobProgress"] = {"percent": 100, "epoch": epochs - 1, "inputTokens": tokens}
            data["estimatedCost"] = {
                "currencyCode": "USD",
                "units": str(int(dollars)),
                "nanos": round((dollars - int(dollars)) * 1e9),
            }
        output = data["_output"]
        base = config.get("baseModel") or config.get("warmStartFrom")
        self.models[output] = {
            "name": output,
            "displayName": output.rsplit("/", 1)[-1],
            "kind": "HF_PEFT_ADDON",
            "state": "READY",
            "createTime": now(),
            "fineTuningJob": data["name"],
            "peftDetails": {
                "baseModel": base,
                "r": int(config.get("loraRank") or 8),
                "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            },
            "supportsServerless": False,
            "deployedModelRefs": [],
            "status": {"code": "OK", "message": ""},
        }

    # --- deployments and inference -------------------------------------------------------------

    def _create_deployment(self, req: Request, _name: str) -> tuple[int, Any]:
        body = req.body or {}
        dep_id = (req.query.get("deploymentId") or [""])[0] or self._id()
        name = f"{self.parent}/deployments/{dep_id}"
        if name in self.deployments:
            raise RpcError("ALREADY_EXISTS", f"deployment {name} already exists")
        model = str(body.get("baseModel") or "")
        if model not in self.models and not model.startswith("accounts/fireworks/models/"):
            raise RpcError("NOT_FOUND", f"Model {model} not found")
        self.deployments[name] = {
            **body,
            "name": name,
            "baseModel": model,
            "state": "CREATING",
            "createTime": now(),
            "updateTime": now(),
            "status": {"code": "OK", "message": ""},
        }
        return 200, self.deployments[name]

    def _get_deployment(self, req: Request, name: str) -> tuple[int, Any]:
        if name not in self.deployments:
            raise RpcError("NOT_FOUND", f"Deployment {name} not found")
        dep = self.deployments[name]
        if self.advance_on_get and dep["state"] == "CREATING":
            dep["state"], dep["updateTime"] = "READY", now()
        return 200, dep

    def _load_lora(self, req: Request, _name: str) -> tuple[int, Any]:
        body = req.body or {}
        model, deployment = str(body.get("model") or ""), str(body.get("deployment") or "")
        if model not in self.models:
            raise RpcError("NOT_FOUND", f"Model {model} not found")
        if deployment not in self.deployments:
            raise RpcError("NOT_FOUND", f"Deployment {deployment} not found")
        name = f"{self.parent}/deployedModels/{self._id()}"
        self.deployed_models[name] = {
            **body,
            "name": name,
            "state": "DEPLOYED",
            "createTime": now(),
            "default": True,
        }
        return 200, self.deployed_models[name]

    def served(self, model: str) -> bool:
        """Whether chat completions for ``model`` would be answered now."""
        base, _, deployment = model.partition("#")
        if base.startswith("accounts/fireworks/models/") and not deployment:
            return True
        if any(
            d["model"] == base and d["state"] == "DEPLOYED" for d in self.deployed_models.values()
        ):
            return True
        return any(
            d["baseModel"] == base and d["state"] == "READY" and deployment in ("", d["name"])
            for d in self.deployments.values()
        )

    def _chat(self, req: Request) -> tuple[int, Any]:
        body = req.body or {}
        model = str(body.get("model", ""))
        if not self.served(model):
            return 404, inference_error(
                "NOT_FOUND", "Model not found, inaccessible, and/or not deployed"
            )
        self.chats.append(body)
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        last: dict[str, Any] = users[-1] if users else {}
        content = f"echo[{model}]: {last.get('content', '')}"
        if body.get("stream") and not self.stream_as_json:
            return 200, chunks(model, content)
        return 200, {
            "id": uuid.uuid4().hex,
            "object": "chat.completion",
            "created": int(datetime.now(UTC).timestamp()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": USAGE,
        }


def chunks(model: str, content: str) -> EventStream:
    """``stream=True``: ``content`` in word-sized ``chat.completion.chunk`` events, the role
    first and ``finish_reason`` with ``usage`` last (ChatCompletionChunk, fireworks-ai 1.2.30)."""
    chunk_id, created = uuid.uuid4().hex, int(datetime.now(UTC).timestamp())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [choice], **extra}  # fmt: skip

    words = content.split(" ")
    pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    events = [chunk({"role": "assistant"})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, "stop", usage=USAGE))
    return EventStream(events)


def public(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.startswith("_")}


def inference_error(code: str, message: str) -> dict[str, Any]:
    """The OpenAI-style envelope of the inference endpoints."""
    return {
        "error": {
            "object": "error",
            "type": "invalid_request_error",
            "code": code,
            "message": message,
        }
    }


def check_rows(rows: list[str]) -> str | None:
    """SFT rows need ``messages``; DPO rows need ``input.messages``, ``preferred_output`` and
    ``non_preferred_output`` (docs.fireworks.ai/fine-tuning/dpo-fine-tuning)."""
    if len(rows) < 3:
        return f"dataset has {len(rows)} examples; at least 3 are required"
    for i, line in enumerate(rows, 1):
        try:
            row = json.loads(line)
        except ValueError:
            return f"line {i}: not JSON"
        dpo = isinstance(row, dict) and {
            "input",
            "preferred_output",
            "non_preferred_output",
        } <= set(row)
        if not isinstance(row, dict) or not (isinstance(row.get("messages"), list) or dpo):
            return (
                f"line {i}: needs 'messages' or 'input'/'preferred_output'/'non_preferred_output'"
            )
    return None
