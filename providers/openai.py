"""OpenAI fine-tuning backend (official ``openai`` SDK).

OpenAI is winding down self-serve fine-tuning (no new users; existing users for a while; tuned
``ft:`` models stay usable for chat). The backend therefore honours ``OPENAI_BASE_URL`` (or
``--set base_url=...``) so it drives any OpenAI-compatible fine-tuning server as well.

Retries: the SDK client is built with ``max_retries=0``; :mod:`tuneport.retry` (tenacity) owns
every retry, so the two never multiply. Job creation is idempotent: the client-generated run id
travels in the job's ``metadata["tuneport_run_id"]`` and before creating (and before any retry
of a create whose outcome is unknown) the backend looks for a job carrying that id.
"""

from __future__ import annotations

import io
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tuneport.data.exporters import openai_message
from tuneport.errors import (
    AuthError,
    ConfigError,
    InputError,
    NotFoundError,
    ProviderError,
    QuotaError,
    TuneportError,
    combine,
    redact,
    register_secret,
)
from tuneport.pricing.estimate import Extras
from tuneport.pricing.table import ModelPrice
from tuneport.progress import Progress
from tuneport.providers.base import (
    MAX_WAIT_S,
    Backend,
    ChatOptions,
    Check,
    Checkpoint,
    MemoryUploads,
    PreparedData,
    UploadedData,
    UploadIndex,
    create_once,
    export_prepared,
    parse_options,
)
from tuneport.providers.errormap import ErrorRule
from tuneport.providers.sdk import Service
from tuneport.retry import (
    RetryPolicy,
    call_with_retry,
    outcome_unknown,
)
from tuneport.schemas import (
    AnyRecord,
    JobConfig,
    JobEvent,
    JobRef,
    JobState,
    JobStatus,
    Message,
    ToolCall,
)
from tuneport.tokens.bpe import DEFAULT_ENCODING, TiktokenChatCounter, ToolTokenRule
from tuneport.tokens.counter import Counts, TokenCounter
from tuneport.validation.rules import (
    COMMON_CHAT,
    COMMON_PREFERENCE,
    Rules,
    ToolNames,
    arguments_json,
    images_in_user_turns,
)

if TYPE_CHECKING:
    from openai import OpenAI

T = TypeVar("T")

NAME = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
RUN_ID_KEY = "tuneport_run_id"
NOTICE = (
    "OpenAI is winding down self-serve fine-tuning (no new users; existing users for now); "
    "tuned ft: models keep working for chat. Set OPENAI_BASE_URL to use a compatible server."
)

# raw status -> normalized state ("paused" exists in the API but not in the SDK's literal)
STATES: dict[str, JobState] = {
    "validating_files": JobState.VALIDATING,
    "queued": JobState.QUEUED,
    "running": JobState.RUNNING,
    "paused": JobState.QUEUED,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}
METHOD_TYPES: dict[str, str] = {"sft": "supervised", "dpo": "dpo"}
# tuneport JobConfig field -> OpenAI hyperparameter name
HYPERPARAMETERS: dict[str, str] = {
    "epochs": "n_epochs",
    "batch_size": "batch_size",
    "learning_rate_multiplier": "learning_rate_multiplier",
}
# Request bounds: CreateFineTuningJobRequest and the fine-tuning hyperparameter schemas of
# OpenAI's OpenAPI spec (github.com/openai/openai-openapi, openapi.yaml at f85dbe2, 2026-08-21).
# The SDK checks none of them, so tuneport does before anything is uploaded.
SPEC_SOURCE = "OpenAI OpenAPI spec, CreateFineTuningJobRequest (openai/openai-openapi, 2026-08-21)"
MIN_SUFFIX, MAX_SUFFIX = 1, 64
MIN_SEED, MAX_SEED = 0, 2_147_483_647
MIN_BATCH_SIZE, MAX_BATCH_SIZE = 1, 256
MIN_EPOCHS, MAX_EPOCHS = 1, 50
MAX_BETA = 2.0  # beta in (0, 2]
MAX_METADATA = 16  # key-value pairs per job, one is tuneport's run id
MAX_METADATA_KEY, MAX_METADATA_VALUE = 64, 512
# File limits: POST /files "Individual files can be up to 512 MB"; the Uploads API takes up to
# 8 GB in parts of at most 64 MB (openai-openapi, 2026-08-21; SDK 3.57 docstrings).
MAX_FILE_BYTES = 512 * 2**20
MAX_UPLOAD_BYTES = 8 * 2**30
UPLOAD_PART_BYTES = 64 * 2**20
SEARCH_JOBS = 100  # recent jobs scanned for a run id when the server ignores the filter
SEARCH_FILES = 500  # files scanned for an identical upload
STEP_OF_TOTAL = re.compile(r"^Step \d+/(\d+)\b")  # metric event messages: "Step 3/300: ..."


class OpenAIOptions(BaseModel):
    """Settings of the OpenAI backend (``--set key=value`` or ``options:`` in a job file)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None  # default: $OPENAI_API_KEY
    base_url: str | None = None  # default: $OPENAI_BASE_URL, else api.openai.com
    organization: str | None = None  # default: $OPENAI_ORG_ID
    project: str | None = None  # default: $OPENAI_PROJECT_ID
    timeout: float = Field(default=120.0, gt=0, le=MAX_WAIT_S)
    max_attempts: int = Field(default=5, ge=1, le=20)
    beta: float | None = Field(default=None, gt=0)  # DPO only
    metadata: dict[str, str] = Field(default_factory=dict)  # extra job metadata


# --- error mapping (data-driven) ----------------------------------------------------------


UNAVAILABLE_HINT = (
    "use --provider vertex or --provider local, or point OPENAI_BASE_URL at an "
    "OpenAI-compatible fine-tuning server"
)
ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        AuthError,
        "OpenAI refused: fine-tuning is not available to this account (OpenAI is winding down "
        "self-serve fine-tuning)",
        UNAVAILABLE_HINT,
        codes=frozenset({"fine_tuning_not_available", "fine_tuning_unavailable"}),
    ),
    ErrorRule(
        AuthError,
        "OpenAI refused: fine-tuning is not available to this account (OpenAI is winding down "
        "self-serve fine-tuning)",
        UNAVAILABLE_HINT,
        status=frozenset({400, 403, 404}),
        contains=("not available for new users", "no longer accept", "no longer available"),
    ),
    ErrorRule(
        AuthError,
        "OpenAI rejected the API key",
        "set OPENAI_API_KEY to a valid key (https://platform.openai.com/api-keys)",
        status=frozenset({401}),
    ),
    ErrorRule(
        AuthError,
        "OpenAI denied access: {msg}",
        "check that the key's organization/project may fine-tune (OPENAI_ORG_ID, "
        "OPENAI_PROJECT_ID)",
        status=frozenset({403}),
    ),
    ErrorRule(
        QuotaError,
        "OpenAI quota exhausted: {msg}",
        "add credits or raise the usage limit at https://platform.openai.com/settings/"
        "organization/billing",
        status=frozenset({429}),
        codes=frozenset({"insufficient_quota", "billing_hard_limit_reached"}),
    ),
    ErrorRule(
        QuotaError,
        "OpenAI rate limit still hit after retries: {msg}",
        "wait a few minutes and run the command again",
        status=frozenset({429}),
    ),
    ErrorRule(
        NotFoundError,
        "model {model} cannot be fine-tuned: {msg}",
        "choose a tunable base model, e.g. --model gpt-4.1-mini",
        status=frozenset({400, 404}),
        codes=frozenset({"model_not_found", "model_not_available", "invalid_model"}),
        contains=("cannot be fine-tuned", "not available for fine-tuning", "does not support"),
    ),
    ErrorRule(
        ProviderError,
        "OpenAI refused the training file: {msg}",
        "run `tuneport validate DATA --provider openai` and fix what it reports",
        status=frozenset({400}),
        codes=frozenset(
            {"invalid_file", "invalid_training_file", "invalid_file_format", "invalid_n_examples"}
        ),
    ),
    ErrorRule(
        NotFoundError,
        "OpenAI: not found: {msg}",
        "check the id (see `tuneport jobs list`)",
        status=frozenset({404}),
    ),
    ErrorRule(
        ProviderError,
        "OpenAI server error {status} (still failing after retries): {msg}",
        "retry later; see https://status.openai.com",
        status=frozenset(range(500, 600)),
    ),
    ErrorRule(
        ProviderError,
        "OpenAI refused the request ({status}): {msg}",
        "check the flags and the job file",
    ),
)


API = Service(
    title="OpenAI",
    module="openai",
    key_env="OPENAI_API_KEY",
    url_env="OPENAI_BASE_URL",
    default_url=DEFAULT_BASE_URL,
    key_url="https://platform.openai.com/api-keys",
    rules=ERROR_RULES,
    status_url="https://status.openai.com",
)


def map_error(exc: BaseException, *, model: str = "", base_url: str = "") -> TuneportError:
    """One-line tuneport error for an SDK error (never leaking the API key)."""
    return API.map_error(exc, base_url=base_url, model=model or "?")


def unreadable(what: str, exc: BaseException | None = None) -> ProviderError:
    """A reply tuneport cannot read: a create must be looked up, not repeated."""
    return API.unreadable(what, exc)


# --- upload progress ------------------------------------------------------------------------


class _ProgressFile(io.BufferedReader):
    """A binary file that reports every chunk the HTTP client reads to ``progress``."""

    def __init__(self, path: Path, progress: Progress) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._progress = progress

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if chunk:
            self._progress.advance(len(chunk))
        return chunk


# --- the backend ----------------------------------------------------------------------------


class OpenAIProvider:
    """Fine-tune and chat through the OpenAI API (or any compatible server)."""

    name = NAME

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        store: UploadIndex | None = None,
        client: OpenAI | None = None,
        **settings: Any,
    ) -> None:
        self.options = parse_options(OpenAIOptions, settings, NAME)
        if self.options.api_key is not None:
            register_secret(self.options.api_key.get_secret_value())
        self._sleep = sleep
        self._store = store
        self._client = client
        self._client_lock = threading.Lock()  # eval calls from several threads at once
        self._policy = RetryPolicy(attempts=self.options.max_attempts)
        self._model = ""

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return API.base_url(self.options.base_url)

    @property
    def store_key(self) -> str:
        """Provider key of the uploads cache: file ids are only valid on one server."""
        return API.store_key(NAME, self.base_url)

    @property
    def client(self) -> OpenAI:
        if self._client is not None:
            return self._client
        with self._client_lock:  # one client, however many threads ask first
            return self._build_client()

    def _build_client(self) -> OpenAI:
        if self._client is None:
            from openai import OpenAI

            key = API.api_key(self.options.api_key)
            if not key:
                what, fix = API.key_problem()
                raise ConfigError(what, hint=fix)
            self._client = OpenAI(
                api_key=key,
                base_url=API.url_override(self.options.base_url),  # None: the SDK's default
                organization=self.options.organization,
                project=self.options.project,
                timeout=self.options.timeout,
                max_retries=0,  # tenacity (tuneport.retry) owns retries
            )
        return self._client

    def _jobs_store(self) -> UploadIndex:
        """The upload index the jobs layer passed (its job store), else one in memory."""
        if self._store is None:
            self._store = MemoryUploads()
        return self._store

    def _call(
        self,
        fn: Callable[[], T],
        *,
        before_retry: Callable[[BaseException], T | None] | None = None,
    ) -> T:
        import openai

        try:
            return call_with_retry(
                fn,
                policy=self._policy,
                sleep=self._sleep,
                before_retry=before_retry,
                where=f"OpenAI at {self.base_url}",
            )
        except openai.APIResponseValidationError as exc:
            raise unreadable("a request", exc) from None
        except openai.APIError as exc:
            error = map_error(exc, model=self._model, base_url=self.base_url)
            error.outcome_unknown = outcome_unknown(exc)
            raise error from None
        except ValueError as exc:  # a reply body that is not JSON (json.JSONDecodeError)
            raise unreadable("a request", exc) from None

    # --- Provider protocol -------------------------------------------------------------------

    def preflight(self, cfg: JobConfig) -> None:
        """Key present and settings within OpenAI's limits, all reported at once."""
        problems: list[tuple[str, str]] = []  # (what is wrong, how to fix it)
        if not (self.options.api_key or os.environ.get("OPENAI_API_KEY")):
            problems.append(API.key_problem())
        problems += self.bound_problems(cfg)
        if problems:  # every one at once, one line each
            raise combine([ConfigError(what, hint=fix) for what, fix in problems])

    def bound_problems(self, cfg: JobConfig) -> list[tuple[str, str]]:
        """Every job setting outside the bounds of OpenAI's spec (:data:`SPEC_SOURCE`)."""
        found: list[tuple[str, str]] = []

        def outside(name: str, value: int | None, low: int, high: int, fix: str) -> None:
            if value is not None and not low <= value <= high:
                found.append((f"{name} {value} is outside {low:,}..{high:,}", fix))

        if cfg.suffix is not None and not MIN_SUFFIX <= len(cfg.suffix) <= MAX_SUFFIX:
            found.append(
                (
                    f"suffix is {len(cfg.suffix)} characters; OpenAI takes "
                    f"{MIN_SUFFIX}..{MAX_SUFFIX}",
                    "shorten --suffix" if cfg.suffix else "drop the empty --suffix",
                )
            )
        outside("seed", cfg.seed, MIN_SEED, MAX_SEED, f"pass --seed {MIN_SEED}..{MAX_SEED:,}")
        outside(
            "batch_size",
            cfg.batch_size,
            MIN_BATCH_SIZE,
            MAX_BATCH_SIZE,
            f"pass --batch-size {MIN_BATCH_SIZE}..{MAX_BATCH_SIZE}",
        )
        outside("epochs", cfg.epochs, MIN_EPOCHS, MAX_EPOCHS, f"pass --epochs 1..{MAX_EPOCHS}")
        lr = cfg.learning_rate_multiplier
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            found.append(
                (
                    f"learning_rate_multiplier {lr} must be greater than 0",
                    "pass a positive --learning-rate-multiplier",
                )
            )
        beta = self.options.beta
        if beta is not None and cfg.method != "dpo":
            found.append(("beta applies to --method dpo only", "use --method dpo or drop beta"))
        elif beta is not None and not 0 < beta <= MAX_BETA:
            found.append((f"beta {beta} is outside (0, {MAX_BETA:g}]", "set beta in (0, 2]"))
        metadata = {**self.options.metadata, RUN_ID_KEY: ""}
        if len(metadata) > MAX_METADATA:
            found.append(
                (f"metadata holds more than {MAX_METADATA - 1} pairs", "drop metadata pairs")
            )
        long_keys = [k for k in metadata if len(k) > MAX_METADATA_KEY]
        long_values = [k for k, v in metadata.items() if len(v) > MAX_METADATA_VALUE]
        if long_keys:
            found.append(
                (
                    f"metadata key(s) longer than {MAX_METADATA_KEY} characters: "
                    + ", ".join(repr(k[:20] + "…") for k in long_keys),
                    "shorten the metadata keys",
                )
            )
        if long_values:
            found.append(
                (
                    f"metadata value(s) longer than {MAX_METADATA_VALUE} characters for "
                    + ", ".join(map(repr, long_values)),
                    "shorten the metadata values",
                )
            )
        return found

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        prepared = export_prepared(
            records,
            cfg,
            progress,
            target=NAME,
            train_out=out_dir / "train.openai.jsonl",
            validation_out=out_dir / "validation.openai.jsonl",
            title="convert to OpenAI JSONL",
        )
        for path in (prepared.training, prepared.validation):
            if path is not None and path.stat().st_size > MAX_UPLOAD_BYTES:
                raise InputError(
                    f"{path.name} is {path.stat().st_size / 2**30:,.1f} GiB; OpenAI takes "
                    f"fine-tuning files of at most {MAX_UPLOAD_BYTES / 2**30:g} GB",
                    hint="split the data or shorten it (tuneport curate --sample N)",
                )
        return prepared

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        training, reused = self._upload_file(prepared.training, prepared.sha256, progress)
        validation = None
        if prepared.validation is not None and prepared.validation_sha256 is not None:
            validation, v_reused = self._upload_file(
                prepared.validation, prepared.validation_sha256, progress
            )
            reused = reused and v_reused
        return UploadedData(training=training, validation=validation, reused=reused)

    def _upload_file(self, path: Path, sha256: str, progress: Progress) -> tuple[str, bool]:
        """Upload ``path`` unless identical bytes are already there; ``(file id, reused)``."""
        filename = f"tuneport-{sha256[:16]}.jsonl"
        size = path.stat().st_size
        store = self._jobs_store()
        cached = store.upload_get(self.store_key, sha256)
        if cached is not None:
            try:
                remote = self._call(lambda: self.client.files.retrieve(cached))
            except NotFoundError:
                remote = None
            if remote is not None and remote.status != "error" and remote.bytes == size:
                progress.note(f"{path.name}: identical bytes already uploaded as {cached}")
                return cached, True
            store.upload_forget(self.store_key, cached)
        # the store may be new (another machine): look for our content-named file
        found = self._find_file(filename, size)
        if found is not None:
            store.upload_put(self.store_key, sha256, found, filename=filename, size=size)
            progress.note(f"{path.name}: identical bytes already uploaded as {found}")
            return found, True

        def send() -> str:
            progress.start(f"upload {path.name}", total=size)
            with _ProgressFile(path, progress) as fh:
                created = self.client.files.create(
                    file=(filename, fh, "application/jsonl"), purpose="fine-tune"
                )
            progress.finish()
            file_id = getattr(created, "id", None)
            if not isinstance(file_id, str) or not file_id:
                raise unreadable("the upload")
            return file_id

        if size > MAX_FILE_BYTES:  # files.create takes 512 MB: the Uploads API, in parts
            file_id = self._upload_in_parts(path, filename, size, progress)
        else:

            def settle(exc: BaseException) -> str | None:
                # the failed attempt may have stored the file (a lost reply): never upload twice
                return self._find_file(filename, size) if outcome_unknown(exc) else None

            try:
                file_id = self._call(send, before_retry=settle)
            except ProviderError as exc:
                if not exc.outcome_unknown:
                    raise
                found = self._find_file(filename, size)  # the last attempt's reply was lost too
                if found is None:
                    raise
                file_id = found
        store.upload_put(self.store_key, sha256, file_id, filename=filename, size=size)
        return file_id, False

    def _upload_in_parts(self, path: Path, filename: str, size: int, progress: Progress) -> str:
        """Upload a file over :data:`MAX_FILE_BYTES` through the Uploads API (parts of
        :data:`UPLOAD_PART_BYTES`, each retried on its own); the id of the file it makes."""
        upload = self._call(
            lambda: self.client.uploads.create(
                bytes=size, filename=filename, mime_type="application/jsonl", purpose="fine-tune"
            )
        )
        part_ids: list[str] = []
        progress.start(f"upload {path.name} (Uploads API)", total=size)
        with path.open("rb") as fh:
            while chunk := fh.read(UPLOAD_PART_BYTES):
                part_ids.append(self._upload_part(upload.id, chunk))
                progress.advance(len(chunk))
        progress.finish()
        done = self._call(lambda: self.client.uploads.complete(upload.id, part_ids=part_ids))
        if done.file is None:
            raise ProviderError(
                f"OpenAI completed upload {upload.id} without a file", hint="run the command again"
            )
        return done.file.id

    def _upload_part(self, upload_id: str, data: bytes) -> str:
        part = self._call(lambda: self.client.uploads.parts.create(upload_id, data=data))
        return part.id

    def _find_file(self, filename: str, size: int) -> str | None:
        def scan() -> str | None:
            for i, item in enumerate(self.client.files.list(purpose="fine-tune")):
                if i >= SEARCH_FILES:
                    break
                if item.filename == filename and item.bytes == size and item.status != "error":
                    return item.id
            return None

        return self._call(scan)

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        self._model = cfg.model
        problems = self.bound_problems(cfg)
        if problems:  # preflight refuses these first; never send a request OpenAI would refuse
            raise ConfigError(
                "; ".join(w for w, _ in problems), hint="; ".join(f for _, f in problems)
            )
        existing = self.find_run(run_id)
        if existing is not None:
            return JobRef(provider=NAME, remote_id=existing, run_id=run_id)
        body = self.job_body(uploaded, cfg, run_id)

        def create() -> str:
            job_id = getattr(self.client.fine_tuning.jobs.create(**body), "id", None)
            if not isinstance(job_id, str) or not job_id:
                raise unreadable("the job create")
            return job_id

        def reconcile(_exc: BaseException) -> str | None:
            # the failed attempt may have created the job: never create a second paid one
            return self.find_run(run_id)

        remote_id = create_once(self._call, create, lambda: self.find_run(run_id), reconcile)
        return JobRef(provider=NAME, remote_id=remote_id, run_id=run_id)

    def job_body(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """The keyword arguments of ``fine_tuning.jobs.create`` for ``cfg``."""
        kind = METHOD_TYPES[cfg.method]
        hyper: dict[str, Any] = {
            api: getattr(cfg, field)
            for field, api in HYPERPARAMETERS.items()
            if getattr(cfg, field) is not None
        }
        if cfg.method == "dpo" and self.options.beta is not None:
            hyper["beta"] = self.options.beta
        body: dict[str, Any] = {
            "model": cfg.model,
            "training_file": uploaded.training,
            "method": {"type": kind, kind: {"hyperparameters": hyper}},
            "metadata": {**self.options.metadata, RUN_ID_KEY: run_id},
        }
        if uploaded.validation is not None:
            body["validation_file"] = uploaded.validation
        if cfg.suffix is not None:
            body["suffix"] = cfg.suffix
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        return body

    def find_run(self, run_id: str) -> str | None:
        """The id of the job created for ``run_id``, if the server has one."""

        def search() -> str | None:
            page = self.client.fine_tuning.jobs.list(metadata={RUN_ID_KEY: run_id}, limit=20)
            for i, job in enumerate(page):  # auto-paginates; bounded below
                if (job.metadata or {}).get(RUN_ID_KEY) == run_id:
                    return job.id
                if i >= SEARCH_JOBS:
                    break
            return None

        return self._call(search)

    def status(self, job: JobRef) -> JobStatus:
        remote = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job.remote_id))
        return self._read_reply(f"job {job.remote_id}", lambda: self._status(remote))

    @staticmethod
    def _read_reply(what: str, read: Callable[[], T]) -> T:
        """``read()`` of an SDK object; a reply of the wrong shape is a one-line ProviderError."""
        try:
            return read()
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise unreadable(what, exc) from None

    @staticmethod
    def _status(job: Any) -> JobStatus:
        raw_state = str(job.status)
        error = None
        if job.error is not None and (job.error.message or job.error.code):
            error = redact(f"{job.error.message} ({job.error.code})")
        epochs = _int_or_none(getattr(job.hyperparameters, "n_epochs", None))
        if epochs is None and job.method is not None:
            section = getattr(job.method, str(job.method.type), None)
            hyper = getattr(section, "hyperparameters", None)
            epochs = _int_or_none(getattr(hyper, "n_epochs", None))
        return JobStatus(
            remote_id=job.id,
            state=STATES.get(raw_state, JobState.RUNNING),
            raw_state=raw_state,
            error=error,
            tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens,
            epochs=epochs,
            run_id=(job.metadata or {}).get(RUN_ID_KEY),
            model=job.model,
            created_at=datetime.fromtimestamp(job.created_at, UTC),
            raw=job.model_dump(mode="json"),
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Events newer than ``after``, oldest first (the API lists newest first)."""

        from openai import omit

        def fetch() -> list[Any]:
            newest_first: list[Any] = []
            cursor: str | None = None
            while True:
                page = self.client.fine_tuning.jobs.list_events(
                    job.remote_id, limit=100, after=cursor if cursor else omit
                )
                for item in page.data:
                    if item.id == after:
                        return newest_first
                    newest_first.append(item)
                if not page.data or page.has_more is False:
                    return newest_first
                cursor = page.data[-1].id

        def event(item: Any) -> JobEvent:
            data = item.data if isinstance(item.data, dict) else {}
            step = data.get("step")
            loss = data.get("train_loss", data.get("loss"))
            total = data.get("total_steps")
            if not isinstance(total, int | float):  # "Step 12/300: training loss=..."
                found = STEP_OF_TOTAL.match(item.message)
                total = int(found.group(1)) if found else None
            return JobEvent(
                id=item.id,
                created_at=datetime.fromtimestamp(item.created_at, UTC),
                level=item.level,
                message=redact(item.message),
                step=int(step) if isinstance(step, int | float) else None,
                total_steps=int(total) if total is not None else None,
                loss=float(loss) if isinstance(loss, int | float) else None,
                data=data,
            )

        for item in reversed(self._call(fetch)):
            yield self._read_reply(f"the events of {job.remote_id}", partial(event, item))

    def checkpoints(self, job: JobRef) -> list[Checkpoint]:
        page = self._call(
            lambda: self.client.fine_tuning.jobs.checkpoints.list(job.remote_id, limit=100)
        )
        found = [
            Checkpoint(
                id=c.id,
                step=c.step_number,
                model=c.fine_tuned_model_checkpoint,
                metrics={
                    k: float(v)
                    for k, v in c.metrics.model_dump().items()
                    if isinstance(v, int | float) and k != "step"
                },
            )
            for c in page.data
        ]
        return sorted(found, key=lambda c: c.step)

    def cancel(self, job: JobRef) -> None:
        self._call(lambda: self.client.fine_tuning.jobs.cancel(job.remote_id))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        page = self._call(lambda: self.client.fine_tuning.jobs.list(limit=limit))
        return self._read_reply(
            "the job list", lambda: [self._status(j) for j in page.data[:limit]]
        )

    @staticmethod
    def chat_request(
        model: str, messages: Sequence[Message], options: ChatOptions
    ) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for one reply."""
        wire = [openai_message(m.model_copy(update={"weight": None})) for m in messages]
        request: dict[str, Any] = {"model": model, "messages": wire}
        if options.temperature is not None:
            request["temperature"] = options.temperature
        if options.max_tokens is not None:
            request["max_completion_tokens"] = options.max_tokens
        return request

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        self._model = model
        request = self.chat_request(model, messages, options)
        reply = self._call(lambda: self.client.chat.completions.create(**request))
        if not reply.choices:
            raise ProviderError(f"{model} returned no reply", hint="try again")
        msg = reply.choices[0].message
        calls = [
            ToolCall.model_validate(c.model_dump(mode="json", include={"id", "type", "function"}))
            for c in msg.tool_calls or []
            if getattr(c, "type", None) == "function"
        ]
        return Message(role="assistant", content=msg.content, tool_calls=calls or None)

    def chat_stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> Iterator[str]:
        """The reply's text as the server streams it (``stream=True``); retried until the
        stream opens, never after a piece was shown."""
        import openai

        from tuneport.retry import is_connection_error

        self._model = model
        request = self.chat_request(model, messages, options)
        stream = self._call(lambda: self.client.chat.completions.create(**request, stream=True))
        try:
            for chunk in stream:
                for choice in chunk.choices:
                    if choice.index == 0 and choice.delta.content:
                        yield choice.delta.content
        except openai.APIError as exc:
            raise map_error(exc, model=model, base_url=self.base_url) from None
        except Exception as exc:
            if is_connection_error(exc):
                raise ProviderError(
                    f"the connection to OpenAI at {self.base_url} dropped mid-reply",
                    hint="send the message again",
                ) from None
            raise
        finally:
            stream.close()

    def cleanup(self, job: JobRef) -> list[str]:
        """Delete the uploaded training/validation files (tuned ft: models cost nothing idle)."""
        remote = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job.remote_id))
        removed: list[str] = []
        for role, file_id in (
            ("training", remote.training_file),
            ("validation", remote.validation_file),
        ):
            if not file_id:
                continue
            try:
                self._delete_file(file_id)
                removed.append(f"uploaded {role} file {file_id}")
            except NotFoundError:  # already gone is fine
                pass
            self._jobs_store().upload_forget(self.store_key, file_id)
        return removed

    def _delete_file(self, file_id: str) -> None:
        self._call(lambda: self.client.files.delete(file_id))

    def doctor(self, timeout: float) -> list[Check]:
        """Key present (never shown) and accepted by the server at the base URL."""
        key_check = API.key_check(self.options.api_key)
        if key_check.status == "skip":
            return [key_check]
        key = str(API.api_key(self.options.api_key))
        return [key_check, API.probe(f"{self.base_url}/models", key, timeout)]


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- the descriptor: everything tuneport knows about OpenAI, in one place --------------------

# base-model prefix -> tiktoken encoding; the longest matching prefix wins (tiktoken's own
# model table, with `ft:` ids resolved to their base model first: tiktoken maps them by prefix
# to cl100k_base, which is wrong for gpt-4.1/4o tunes).
ENCODINGS: dict[str, str] = {
    "gpt-4.1": "o200k_base",
    "gpt-4o": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35": "cl100k_base",
}
UNKNOWN_MODEL_BAND = 0.10  # a model id tiktoken does not know (OpenAI-compatible servers)
# encoding -> the constants of the cookbook's num_tokens_for_tools (How_to_count_tokens_with_
# tiktoken.ipynb, read 2026-11-30): gpt-4o/4o-mini (o200k_base) func_init 7, gpt-3.5-turbo/gpt-4
# (cl100k_base) func_init 10. The cookbook has no constants for gpt-4.1: it shares gpt-4o's
# encoding, so tuneport uses gpt-4o's (and says so in estimates with tools).
TOOL_TOKENS: dict[str, ToolTokenRule] = {
    "o200k_base": ToolTokenRule(func_init=7),
    "cl100k_base": ToolTokenRule(func_init=10),
}


def base_model(model: str) -> str:
    """The base model id: ``ft:gpt-4.1-mini-2025-04-14:org::id`` → ``gpt-4.1-mini-2025-04-14``."""
    if model.startswith("ft:"):
        return model[3:].split(":", 1)[0]
    return model


def encoding_name(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model id (``None`` if tuneport does not know it)."""
    base = base_model(model).lower()
    best: str | None = None
    best_len = -1
    for prefix, name in ENCODINGS.items():
        if base.startswith(prefix) and len(prefix) > best_len:
            # "o1" must not match "o1x"-like unrelated names: require a boundary after o-series ids
            if prefix[0] == "o" and not re.match(rf"^{re.escape(prefix)}($|[-.])", base):
                continue
            best, best_len = name, len(prefix)
    return best


def counter(model: str, settings: Mapping[str, Any]) -> TokenCounter:
    """Exact tiktoken counts with the model's encoding; approximate for unknown model ids."""
    name = encoding_name(model)
    if name is None:  # e.g. a model on an OpenAI-compatible server
        return TiktokenChatCounter(
            DEFAULT_ENCODING,
            exact=False,
            band=UNKNOWN_MODEL_BAND,
            tools=TOOL_TOKENS[DEFAULT_ENCODING],
        )
    return TiktokenChatCounter(name, tools=TOOL_TOKENS.get(name))


def estimate_extras(counts: Counts, cfg: JobConfig, price: ModelPrice) -> Extras:
    """OpenAI does not publish how it renders tools into tokens: say so when tools are used."""
    if not counts.tool_examples:
        return Extras()
    return Extras(
        warnings=[
            f"{counts.tool_examples} example(s) with tools: definitions are counted with the "
            "OpenAI cookbook's num_tokens_for_tools formula (gpt-4o constants for the 4.1 "
            "family) and tool calls as name + arguments; OpenAI does not publish its tool "
            "rendering, so these counts are close, not exact"
        ]
    )


# The openai SDK's FunctionDefinition.name: "Must be a-z, A-Z, 0-9, or contain underscores and
# dashes, with a maximum length of 64" (the API refuses other names when training starts).
TOOL_NAMES = ToolNames(
    r"[a-zA-Z0-9_-]{1,64}", "letters, digits, _ and - only, 1 to 64 characters (OpenAI)"
)

# OpenAI fine-tuning guide + cookbook "Data preparation and analysis for chat model fine-tuning":
# minimum 10 examples, 50–100 recommended; 65,536 tokens per example for gpt-4o-mini (OpenAI's
# token-limit table), assumed for gpt-4o and the 4.1 family (unverified). Longer examples are
# truncated by OpenAI, not refused: a warning, and estimates bill each at the limit. (The
# cookbook's data-prep estimate still caps examples at 16,385, the gpt-3.5-turbo limit.)
RULES = Rules(
    provider=NAME,
    min_examples=10,
    recommended_examples=50,
    token_limit=65_536,
    token_limit_severity="warning",
    token_limit_note="OpenAI truncates them to the limit",
    chat=(*COMMON_CHAT, arguments_json, images_in_user_turns, TOOL_NAMES),
    preference=(*COMMON_PREFERENCE, TOOL_NAMES),
    model_limits={"gpt-4o-mini": 65_536, "gpt-4o": 65_536, "gpt-4.1": 65_536},
    source="platform.openai.com/docs/guides/fine-tuning; openai-cookbook chat_finetuning_"
    "data_prep (checked 2026-11-30)",
    sources={
        "min_examples": "platform.openai.com/docs/guides/supervised-fine-tuning: at least 10 "
        "examples (read 2026-11-30)",
        "recommended_examples": "supervised fine-tuning guide: improvements from 50-100 "
        "examples (read 2026-11-30)",
        "token_limit": "OpenAI token-limit table: 65,536 per example for gpt-4o-mini-2024-07-18 "
        "(community copies, read 2026-11-23); truncated, not refused (cookbook data-prep)",
        "token_limit:gpt-4o-mini": "OpenAI token-limit table (read 2026-11-23)",
        "token_limit:gpt-4o": "assumed equal to gpt-4o-mini (unverified, 2026-11-30)",
        "token_limit:gpt-4.1": "assumed equal to gpt-4o-mini (unverified, 2026-11-30)",
        "request_bounds": SPEC_SOURCE,
        "file_size": "POST /files: 512 MB per file; Uploads API: 8 GB in 64 MB parts "
        "(openai-openapi, 2026-08-21)",
        "tool_names": "openai SDK types/shared/function_definition.py FunctionDefinition.name "
        "(openai 3.63.0, read 2026-12-06)",
        "tool_tokens": "openai-cookbook How_to_count_tokens_with_tiktoken.ipynb "
        "num_tokens_for_tools (read 2026-11-30)",
    },
)

BACKEND = Backend(
    name=NAME,
    title="OpenAI",
    implementation="tuneport.providers.openai:OpenAIProvider",
    target="openai",
    rules=RULES,
    counter=counter,
    model_prefixes=("ft:", "gpt-"),
    notice=NOTICE,
    env=("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"),
    extras=estimate_extras,
    default_model="gpt-4.1-mini",
    options=tuple(OpenAIOptions.model_fields),
    cleanup_deletes_uploads=True,
)
