"""A fake Together AI fine-tuning API on 127.0.0.1 for driving the real ``together`` SDK offline.

stdlib ``http.server`` in a thread, port 0, in-memory state. Routes are the ones
``together==3.1.1`` calls (paths carry ``/v1``, so the client's ``base_url`` is the bare
``http://127.0.0.1:<port>``, see :attr:`FakeTogether.base_url`):

* files: ``POST /v1/files`` (multipart form ``purpose/file_name/file_type/checksum``, answered
  ``302`` + ``Location`` (a presigned URL on this fake) + ``X-Together-File-Id``, or ``409
  {"file_id": ...}`` when the sha256 checksum was registered before), ``PUT <presigned>`` (raw
  bytes, no auth), ``POST /v1/files/{id}/preprocess``, list, retrieve, delete, content;
* fine-tunes: ``GET /v1/fine-tunes/models/limits``, ``POST /v1/fine-tunes/estimate-price``,
  create, list, retrieve, delete, cancel, events, checkpoints, metrics;
* ``POST /v1/chat/completions`` for base models and tuned models that are served (see
  :meth:`FakeTogether.deploy` and :attr:`FakeTogether.serverless_lora`); ``stream=True`` is
  answered with server-sent ``chat.completion.chunk`` events as the SDK's
  ``ChatCompletionChunk`` has them (every delta carries its role; the last chunk the finish
  reason and the usage), then ``data: [DONE]``.

Jobs move one state along :attr:`FakeTogether.script` per :meth:`FakeTogether.advance` (no
sleeping); with ``advance_on_get`` every retrieve advances too. Every request is logged in
:attr:`FakeTogether.requests`; faults are scripted with :meth:`fail`, :meth:`drop`,
:meth:`garble`, :meth:`mangle` and :meth:`hold` (tests/fakes/faults.py).
Numbers (tokens = bytes // 4, the price table) are the fake's, not Together's.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
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

DEFAULT_SCRIPT = ("pending", "queued", "running", "completed")
TERMINAL = ("completed", "cancelled", "error", "user_error")
# $ per 1M tokens by (method, training type). Fake numbers for arithmetic in tests only.
FAKE_RATES = {
    ("sft", "Lora"): 0.48,
    ("sft", "Full"): 0.54,
    ("dpo", "Lora"): 1.2,
    ("dpo", "Full"): 1.35,
}
NANODOLLARS = 1_000_000_000  # FinetuneResponse.total_price unit (together.lib.utils.tools)


@dataclass
class Job:
    data: dict[str, Any]
    step: int = 0
    fail_message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)


class HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.payload = error_body(message, code)


def error_body(message: str, code: str | None = None, kind: str = "invalid_request_error") -> Any:
    """Together's OpenAI-style error envelope."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeTogether(Served, Scriptable):
    def __init__(
        self,
        *,
        api_key: str | None = "tg-fake-key",
        script: tuple[str, ...] = DEFAULT_SCRIPT,
        user: str = "fake-user",
    ) -> None:
        self.api_key = api_key  # None: accept any key
        self.script = script
        self.user = user
        self.advance_on_get = False  # True: each GET /v1/fine-tunes/{id} advances that job
        self.dedupe_by_checksum = True  # 409 {"file_id"} for a checksum seen before
        self.serverless_lora = False  # True: completed LoRA outputs are chat-able at once
        self.fail_next_job: str | None = None  # the next created job ends "error" with this
        self.user_limit = 100.0  # $ credit limit reported by estimate-price
        self.tunable_models: set[str] | None = None  # None: every model name is tunable
        self.faults = Faults()  # the request log and scripted faults
        self.files: dict[str, dict[str, Any]] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.checksums: dict[str, str] = {}  # sha256 -> file id
        self.uploads: dict[str, str] = {}  # presigned token -> file id
        self.jobs: dict[str, Job] = {}
        self.endpoints: set[str] = set()  # model names served by a (fake) dedicated endpoint
        self.chats: list[dict[str, Any]] = []
        self.stream_as_json = False  # True: answer stream=True with one JSON reply (a proxy)
        self.finish_reason = "stop"  # Together's own Literal also has "eos"
        self._lock = threading.RLock()
        self._ids = 0
        self._server = start_server(handler_for(self.handle))

    # --- control ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Pass as ``Together(base_url=...)``: the SDK's paths already start with ``/v1``."""
        return self.root_url

    def error_body(self, status: int, message: str, **details: Any) -> Any:
        return error_body(
            message, None, "server_error" if status >= 500 else "invalid_request_error"
        )

    def advance(self, steps: int = 1, job_id: str | None = None) -> None:
        """Move ``job_id`` (default: every job) ``steps`` states along the script."""
        with self._lock:
            for _ in range(steps):
                for job in [self.jobs[job_id]] if job_id else list(self.jobs.values()):
                    self._advance(job)

    def deploy(self, model: str) -> None:
        """Make ``model`` (e.g. a job's ``model_output_name``) answer chat completions."""
        self.endpoints.add(model)

    def _id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{uuid.UUID(int=self._ids)}"

    # --- plumbing ------------------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        self.faults.record(req)
        signed = req.path.startswith("/_upload/")
        key_ok = (
            self.api_key is None or req.headers.get("authorization") == f"Bearer {self.api_key}"
        )
        if not signed and not key_ok:
            return Reply(401, UNAUTHORIZED)
        return self.faults.serve(req, lambda: self._act(req))

    def _act(self, req: Request) -> Reply:
        with self._lock:
            try:
                status, body, headers = self._route(req)
            except HTTPError as exc:
                return Reply(exc.status, exc.payload)
        if isinstance(body, EventStream):
            return Reply(status, body.data(), headers, content_type="text/event-stream")
        return Reply(status, body, headers)

    def _route(self, req: Request) -> tuple[int, Any, dict[str, str]]:
        m, p = req.method, req.path
        routes: list[tuple[str, str, Any]] = [
            ("POST", r"/v1/files", self._start_upload),
            ("GET", r"/v1/files", self._list_files),
            ("PUT", r"/_upload/([^/]+)", self._put_bytes),
            ("POST", r"/v1/files/([^/]+)/preprocess", self._preprocess),
            ("GET", r"/v1/files/([^/]+)/content", self._file_content),
            ("GET", r"/v1/files/([^/]+)", self._get_file),
            ("DELETE", r"/v1/files/([^/]+)", self._delete_file),
            ("GET", r"/v1/fine-tunes/models/limits", self._limits),
            ("POST", r"/v1/fine-tunes/estimate-price", self._estimate),
            ("POST", r"/v1/fine-tunes", self._create_job),
            ("GET", r"/v1/fine-tunes", self._list_jobs),
            ("GET", r"/v1/fine-tunes/([^/]+)", self._get_job),
            ("DELETE", r"/v1/fine-tunes/([^/]+)", self._delete_job),
            ("POST", r"/v1/fine-tunes/([^/]+)/cancel", self._cancel_job),
            ("GET", r"/v1/fine-tunes/([^/]+)/events", self._events),
            ("GET", r"/v1/fine-tunes/([^/]+)/checkpoints", self._checkpoints),
            ("GET", r"/v1/fine-tunes/([^/]+)/metrics", self._metrics),
            ("POST", r"/v1/chat/completions", self._chat),
        ]
        for method, pattern, fn in routes:
            match = re.fullmatch(pattern, p)
            if method == m and match:
                result = fn(req, *match.groups())
                return result if len(result) == 3 else (*result, {})
        raise HTTPError(404, f"Unknown route {m} {p}", "not_found")

    # --- files ---------------------------------------------------------------------------------

    def _start_upload(self, req: Request) -> tuple[int, Any, dict[str, str]]:
        form = (req.body or {}).get("fields", {}) if isinstance(req.body, dict) else {}
        missing = [k for k in ("purpose", "file_name", "file_type", "checksum") if not form.get(k)]
        if missing:
            raise HTTPError(400, f"missing form fields: {', '.join(missing)}", "invalid_request")
        known = self.checksums.get(form["checksum"])
        if self.dedupe_by_checksum and known in self.files:
            body = {
                "message": f"File with checksum {form['checksum']} already exists",
                "file_id": known,
            }
            return 409, body, {}
        file_id = self._id("file")
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": 0,
            "created_at": int(datetime.now(UTC).timestamp()),
            "filename": form["file_name"],
            "FileType": form["file_type"],
            "purpose": form["purpose"],
            "processing_status": "PENDING",
        }
        self.checksums[form["checksum"]] = file_id  # registered before the bytes arrive
        token = uuid.uuid4().hex
        self.uploads[token] = file_id
        headers = {"Location": f"{self.base_url}/_upload/{token}", "X-Together-File-Id": file_id}
        return 302, {"message": "upload to Location"}, headers

    def _put_bytes(self, req: Request, token: str) -> tuple[int, Any]:
        file_id = self.uploads.pop(token, None)
        if file_id is None or file_id not in self.files:
            raise HTTPError(403, "presigned URL expired or unknown", "access_denied")
        data = req.body if isinstance(req.body, bytes) else b""
        self.file_bytes[file_id] = data
        self.files[file_id]["bytes"] = len(data)
        return 200, {}

    def _preprocess(self, req: Request, file_id: str) -> tuple[int, Any]:
        obj = self._file(file_id)
        if file_id not in self.file_bytes:
            raise HTTPError(400, f"File {file_id} has no uploaded content", "invalid_request")
        fmt, nlines, problem = detect_format(self.file_bytes[file_id])
        obj["processing_status"] = "COMPLETED" if problem is None else "INVALID_FORMAT"
        obj["validation_report"] = {
            "valid": problem is None,
            "file_id": file_id,
            "nlines": nlines,
            "dataset_format": fmt,
            **({"error": problem, "error_type": "INVALID_FORMAT"} if problem else {}),
        }
        return 200, obj

    def _list_files(self, req: Request) -> tuple[int, Any]:
        return 200, {"data": list(self.files.values())}

    def _get_file(self, req: Request, file_id: str) -> tuple[int, Any]:
        return 200, self._file(file_id)

    def _file_content(self, req: Request, file_id: str) -> tuple[int, Any]:
        self._file(file_id)
        return 200, self.file_bytes.get(file_id, b"")

    def _delete_file(self, req: Request, file_id: str) -> tuple[int, Any]:
        self._file(file_id)
        del self.files[file_id]
        self.file_bytes.pop(file_id, None)
        self.checksums = {k: v for k, v in self.checksums.items() if v != file_id}
        return 200, {"id": file_id, "deleted": True}

    def _file(self, file_id: str) -> dict[str, Any]:
        if file_id not in self.files:
            raise HTTPError(404, f"File {file_id} not found", "not_found")
        return self.files[file_id]

    # --- limits and price ----------------------------------------------------------------------

    def _limits(self, req: Request) -> tuple[int, Any]:
        name = (req.query.get("model_name") or [""])[0]
        self._check_tunable(name)
        return 200, model_limits(name)

    def _check_tunable(self, model: str) -> None:
        if self.tunable_models is not None and model not in self.tunable_models:
            raise HTTPError(
                404, f"Model {model} is not available for fine-tuning", "model_not_found"
            )

    def _train_tokens(self, file_id: str) -> int:
        return max(1, len(self.file_bytes.get(file_id, b"")) // 4)

    def _estimate(self, req: Request) -> tuple[int, Any]:
        body = req.body or {}
        train = body.get("training_file", "")
        for key, reason in (("training_file", "train_file"), ("validation_file", "eval_file")):
            file_id = body.get(key)
            if not file_id:
                continue
            status = self.files.get(file_id, {}).get("processing_status")
            if status != "COMPLETED":
                suffix = "invalid" if status == "INVALID_FORMAT" else "not_validated"
                return 200, {
                    "estimation_available": False,
                    "unavailable_reason": f"{reason}_{suffix}",
                }
        epochs, evals = int(body.get("n_epochs") or 1), int(body.get("n_evals") or 0)
        val = body.get("validation_file")
        train_tokens = self._train_tokens(train) * epochs
        eval_tokens = (self._train_tokens(val) * evals) if val else 0
        method = (body.get("training_method") or {}).get("method", "sft")
        kind = (body.get("training_type") or {}).get("type", "Lora")
        price = (train_tokens + eval_tokens) / 1e6 * FAKE_RATES[(method, kind)]
        return 200, {
            "estimation_available": True,
            "allowed_to_proceed": price <= self.user_limit,
            "estimated_total_price": round(price, 6),
            "estimated_train_token_count": train_tokens,
            "estimated_eval_token_count": eval_tokens,
            "user_limit": self.user_limit,
        }

    # --- jobs ----------------------------------------------------------------------------------

    def _create_job(self, req: Request) -> tuple[int, Any]:
        body = req.body or {}
        model = body.get("model") or str(body.get("from_checkpoint") or "").split(":")[0]
        if not model:
            raise HTTPError(400, "model or from_checkpoint is required", "invalid_request")
        self._check_tunable(model)
        for key in ("training_file", "validation_file"):
            file_id = body.get(key)
            if key == "training_file" and not file_id:
                raise HTTPError(400, "training_file is required", "invalid_request")
            if file_id and self.files.get(file_id, {}).get("processing_status") != "COMPLETED":
                raise HTTPError(400, f"{key} {file_id} is missing or not validated", "invalid_file")
        job_id = self._id("ft")
        limits = model_limits(model)
        stamp = now()
        suffix = body.get("suffix")
        # as in docs.together.ai/reference/post-fine-tunes: "ns/meta-llama/Llama-2-7b-hf-32162631"
        output = f"{self.user}/{model}{'-' + suffix if suffix else ''}-{job_id[-8:]}"
        training_type = body.get("training_type") or {
            "type": "Lora",
            "lora_r": limits["lora_training"]["default_rank"],
            "lora_alpha": 2 * limits["lora_training"]["default_rank"],
            "lora_dropout": 0.0,
            "lora_trainable_modules": "all-linear",
        }
        batch = body.get("batch_size", "max")
        data: dict[str, Any] = {
            "id": job_id,
            "status": self.script[0],
            "user_id": self.user,
            "owner_address": self.user,
            "created_at": stamp,
            "updated_at": stamp,
            "model": body.get("model"),
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file") or None,
            "suffix": suffix,
            "model_output_name": output,
            "adapter_output_name": f"{output}-adapter" if training_type["type"] == "Lora" else None,
            "n_epochs": body.get("n_epochs", 1),
            "n_evals": body.get("n_evals", 0),
            "n_checkpoints": body.get("n_checkpoints", 1),
            "batch_size": limits["lora_training"]["max_batch_size"] if batch == "max" else batch,
            "learning_rate": body.get("learning_rate"),
            "lr_scheduler": body.get("lr_scheduler"),
            "warmup_ratio": body.get("warmup_ratio"),
            "max_grad_norm": body.get("max_grad_norm"),
            "weight_decay": body.get("weight_decay"),
            "max_seq_length": body.get("max_seq_length") or limits["max_seq_length_sft"],
            "packing": body.get("packing", True),
            "random_seed": body.get("random_seed"),
            "from_checkpoint": body.get("from_checkpoint"),
            "training_type": training_type,
            "training_method": body.get("training_method")
            or {"method": "sft", "train_on_inputs": "auto"},
            "train_on_inputs": (body.get("training_method") or {}).get("train_on_inputs"),
            "wandb_project_name": body.get("wandb_project_name"),
            "token_count": None,
            "total_price": None,
            "epochs_completed": 0,
            "queue_depth": 0,
            "events": [],  # the create response's lib type disagrees on event enums; keep empty
        }
        job = Job(data)
        if self.fail_next_job is not None:
            job.fail_message, self.fail_next_job = self.fail_next_job, None
        self.jobs[job_id] = job
        self._event(job, "job_pending", "Fine tune request created")
        return 200, dict(data)

    def _job(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise HTTPError(404, f"Fine-tune job {job_id} not found", "not_found")
        return self.jobs[job_id]

    def _get_job(self, req: Request, job_id: str) -> tuple[int, Any]:
        job = self._job(job_id)
        if self.advance_on_get:
            self._advance(job)
        return 200, {**job.data, "events": job.events}

    def _list_jobs(self, req: Request) -> tuple[int, Any]:
        items = [{k: v for k, v in j.data.items() if k != "events"} for j in self.jobs.values()]
        return 200, {"data": items}

    def _delete_job(self, req: Request, job_id: str) -> tuple[int, Any]:
        self._job(job_id)
        del self.jobs[job_id]
        return 200, {"message": f"Fine-tune job {job_id} deleted"}

    def _cancel_job(self, req: Request, job_id: str) -> tuple[int, Any]:
        job = self._job(job_id)
        if job.data["status"] in (*TERMINAL, "cancel_requested"):
            raise HTTPError(
                400, f"Cannot cancel job in status {job.data['status']}", "invalid_state"
            )
        self._set(job, "cancel_requested")
        self._event(job, "cancel_requested", "Cancel requested")
        return 200, {k: v for k, v in job.data.items() if k != "events"}

    def _events(self, req: Request, job_id: str) -> tuple[int, Any]:
        return 200, {"data": self._job(job_id).events}

    def _checkpoints(self, req: Request, job_id: str) -> tuple[int, Any]:
        return 200, {"data": list(reversed(self._job(job_id).checkpoints))}

    def _metrics(self, req: Request, job_id: str) -> tuple[int, Any]:
        return 200, {"metrics": self._job(job_id).metrics}

    def _event(self, job: Job, kind: str, message: str, **extra: Any) -> None:
        level = "error" if kind == "job_error" else "info"
        job.events.append(
            {
                "object": "fine-tune-event",
                "created_at": now(),
                "type": kind,
                "level": level,
                "message": message,
                **extra,
            }
        )

    def _set(self, job: Job, status: str) -> None:
        job.data["status"] = status
        job.data["updated_at"] = now()

    def _advance(self, job: Job) -> None:
        data = job.data
        if data["status"] in TERMINAL:
            return
        if data["status"] == "cancel_requested":
            self._set(job, "cancelled")
            self._event(job, "job_stopped", "Job cancelled")
            return
        job.step = min(job.step + 1, len(self.script) - 1)
        status = self.script[job.step]
        if status == "completed" and job.fail_message is not None:
            self._set(job, "error")
            self._event(job, "job_error", job.fail_message)
            return
        self._set(job, status)
        if status == "running":
            self._train_step(job)
        elif status == "completed":
            self._complete(job)

    def _train_step(self, job: Job) -> None:
        data = job.data
        if data.get("started_at") is None:
            data["started_at"] = now()
            data["token_count"] = self._train_tokens(data["training_file"])
            self._event(job, "training_start", "Training started", token_count=data["token_count"])
        step = len(job.metrics) + 1
        job.metrics.append({"global_step": float(step), "train_loss": round(2.0 / step, 4)})
        job.checkpoints.append(self._checkpoint(job, step, "Intermediate"))
        self._event(job, "checkpoint_save", f"Checkpoint saved at step {step}", step=step)

    def _checkpoint(self, job: Job, step: int, kind: str) -> dict[str, Any]:
        lora = job.data["training_type"]["type"] == "Lora"
        return {
            "checkpoint_type": kind,
            "created_at": now(),
            "path": f"s3://fake-together/{job.data['id']}/checkpoint-{step}",
            "step": step,
            "checkpoint": "adapter" if lora else "model",
        }

    def _complete(self, job: Job) -> None:
        data = job.data
        epochs = int(data["n_epochs"] or 1)
        evals = int(data["n_evals"] or 0)
        train = self._train_tokens(data["training_file"]) * epochs
        val = data.get("validation_file")
        tokens = train + (self._train_tokens(val) * evals if val else 0)
        method = data["training_method"]["method"]
        rate = FAKE_RATES[(method, data["training_type"]["type"])]
        data["token_count"] = tokens
        data["total_price"] = round(tokens / 1e6 * rate * NANODOLLARS)
        data["epochs_completed"] = epochs
        data["model_output_path"] = f"s3://fake-together/{data['id']}/final"
        step = len(job.metrics) or 1
        job.checkpoints.append(self._checkpoint(job, step, "Final"))
        self._event(
            job, "model_upload_complete", "Model uploaded", model_path=data["model_output_path"]
        )
        self._event(job, "job_complete", f"Job finished at {now()}")
        if self.serverless_lora and data["training_type"]["type"] == "Lora":
            self.endpoints.add(data["model_output_name"])

    # --- chat ----------------------------------------------------------------------------------

    def _chat(self, req: Request) -> tuple[int, Any]:
        body = req.body or {}
        model = str(body.get("model", ""))
        tuned = {j.data["model_output_name"]: j for j in self.jobs.values()}
        if model in tuned and model not in self.endpoints:
            raise HTTPError(
                400,
                f"Unable to access non-serverless model {model}. Please visit "
                f"https://api.together.ai/models/{model} to create and start a new dedicated "
                "endpoint for the model.",
                "model_not_available",
            )
        self.chats.append(body)
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        last: dict[str, Any] = users[-1] if users else {}
        text = f"echo[{model}]: {last.get('content', '')}"
        if body.get("stream") and not self.stream_as_json:
            return 200, self._chat_chunks(model, text)
        return 200, {
            "id": self._id("chat"),
            "object": "chat.completion",
            "created": int(datetime.now(UTC).timestamp()),
            "model": model,
            "prompt": [],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": self.finish_reason,
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": USAGE,
        }

    def _chat_chunks(self, model: str, text: str) -> EventStream:
        """``stream=True``: the reply in word-sized chunks (together/types/chat/
        chat_completion_chunk.py: ``delta.role`` is required, ``finish_reason`` and ``usage``
        come with the last chunk)."""
        chunk_id = self._id("chat")
        created = int(datetime.now(UTC).timestamp())

        def chunk(content: str, finish: str | None = None) -> dict[str, Any]:
            delta = {"role": "assistant", "content": content, "token_id": len(content)}
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                "usage": USAGE if finish else None,
            }

        words = text.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        return EventStream([*(chunk(p) for p in pieces), chunk("", self.finish_reason)])


UNAUTHORIZED = error_body(
    "Invalid API key provided. You can find your API key at https://api.together.xyz/settings/api-keys.",
    "invalid_api_key",
)


def model_limits(name: str) -> dict[str, Any]:
    """A ``FinetuneModelLimits`` body (every required field) for any model name."""
    return {
        "model_name": name,
        "default_gradient_accumulation_steps": 1,
        "lora_training": {
            "default_rank": 16,
            "max_batch_size": 8,
            "max_batch_size_dpo": 4,
            "max_rank": 64,
            "min_batch_size": 1,
            "target_modules": [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ],
        },
        "full_training": {"max_batch_size": 8, "max_batch_size_dpo": 4, "min_batch_size": 1},
        "max_learning_rate": 1.0,
        "min_learning_rate": 1e-8,
        "max_num_checkpoints": 10,
        "max_num_epochs": 20,
        "max_num_evals": 100,
        "max_seq_length_sft": 8192,
        "max_seq_length_dpo": 8192,
        "min_max_seq_length": 512,
        "merge_output_lora": False,
        "supports_full_training": True,
        "supports_reasoning": False,
        "supports_tools": True,
        "supports_vision": False,
    }


FORMATS = {
    "conversation": ("messages",),
    "instruction": ("prompt", "completion"),
    "preference_openai": ("input", "preferred_output", "non_preferred_output"),
    "general": ("text",),
}


def detect_format(data: bytes) -> tuple[str | None, int, str | None]:
    """(dataset_format, lines, problem): every JSONL row must match one single format."""
    seen: set[str] = set()
    rows = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    for i, line in enumerate(rows, 1):
        try:
            row = json.loads(line)
        except ValueError:
            return None, len(rows), f"line {i}: not JSON"
        if not isinstance(row, dict):
            return None, len(rows), f"line {i}: not a JSON object"
        kinds = [k for k, keys in FORMATS.items() if all(key in row for key in keys)]
        if len(kinds) != 1:
            return None, len(rows), f"line {i}: matches {len(kinds)} dataset formats"
        seen.add(kinds[0])
    if len(seen) != 1:
        return None, len(rows), "empty file or mixed dataset formats"
    return seen.pop(), len(rows), None


def sha256(data: bytes) -> str:
    """The checksum ``together`` sends for an upload (hex sha256 of the file)."""
    return hashlib.sha256(data).hexdigest()
