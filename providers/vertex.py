"""Vertex AI Gemini tuning through ``google-genai`` (and GCS for the datasets).

Settings (``--set key=value``, ``options:`` in a job file, or the flags ``--project``,
``--location``, ``--bucket``) are validated by :class:`VertexOptions`. Where a setting is unset:

* ``project``: ``$GOOGLE_CLOUD_PROJECT``, else the project of the Application Default
  Credentials / service-account file;
* ``location``: ``$GOOGLE_CLOUD_LOCATION``, else ``us-central1`` (tuning is regional);
* credentials: ``access_token`` / ``$TUNEPORT_VERTEX_ACCESS_TOKEN`` (an OAuth access token, e.g.
  from ``gcloud auth print-access-token``), else ``credentials_file`` /
  ``$GOOGLE_APPLICATION_CREDENTIALS``, else Application Default Credentials;
* base URL: ``base_url`` / ``$GOOGLE_VERTEX_BASE_URL`` (a proxy or a fake), else the SDK's
  ``https://{location}-aiplatform.googleapis.com/``.

The client is always built with ``vertexai=True`` and explicit project, location and
credentials. tuneport owns retries (:mod:`tuneport.retry`); the SDK's own are left off, and
job creation is reconciled by the ``tuneport_run_id`` label before any re-send.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tuneport.errors import (
    AuthError,
    ConfigError,
    InputError,
    NotFoundError,
    ProviderError,
    QuotaError,
    TuneportError,
    UnreachableError,
    combine,
    redact,
    register_secret,
)
from tuneport.pricing.estimate import BudgetFigure
from tuneport.progress import NullProgress, Progress
from tuneport.providers.base import (
    MAX_WAIT_S,
    Backend,
    ChatOptions,
    Check,
    Measure,
    PreparedData,
    SourceJob,
    UploadedData,
    base_url_override,
    create_once,
    export_prepared,
    parse_options,
)
from tuneport.providers.errormap import ErrorRule, apply_rules, one_line
from tuneport.retry import RetryPolicy, call_with_retry, outcome_unknown
from tuneport.schemas import (
    AnyRecord,
    Example,
    FunctionCall,
    JobConfig,
    JobEvent,
    JobRef,
    JobState,
    JobStatus,
    Message,
    PreferenceExample,
    ToolCall,
)
from tuneport.tokens.approx import ScaledTextCounter
from tuneport.tokens.counter import TokenCounter
from tuneport.validation.rules import (
    COMMON_CHAT,
    COMMON_PREFERENCE,
    Rules,
    ToolNames,
    arguments_object,
    gemini_parts,
    gemini_roles,
    gemini_tool_schemas,
    no_images,
    no_names,
    no_parallel,
    no_weight,
    pref_gemini_roles,
    pref_text_only,
)

if TYPE_CHECKING:
    import httpx
    from google import genai
    from google.auth.credentials import Credentials

    from tuneport.providers.gcs import GcsStager

T = TypeVar("T")

NAME = "vertex"
RUN_ID_LABEL = "tuneport_run_id"
DEFAULT_LOCATION = "us-central1"
TUNING_REGIONS = "us-central1, europe-west4"  # shown in hints; the API decides
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TOKEN_ENV = "TUNEPORT_VERTEX_ACCESS_TOKEN"
BASE_URL_ENV = "GOOGLE_VERTEX_BASE_URL"
REST_API_VERSION = "v1"
SEARCH_JOBS = 200  # jobs scanned for a run id when the server ignores the label filter
MAX_DISPLAY_NAME = 128
SNAPSHOT_TTL = 2.0  # seconds a status() snapshot may serve the next events() call

# raw JOB_STATE_* -> normalized state (data table)
STATES: dict[str, JobState] = {
    "JOB_STATE_UNSPECIFIED": JobState.QUEUED,
    "JOB_STATE_QUEUED": JobState.QUEUED,
    "JOB_STATE_PENDING": JobState.QUEUED,
    "JOB_STATE_PAUSED": JobState.QUEUED,
    "JOB_STATE_RUNNING": JobState.RUNNING,
    "JOB_STATE_UPDATING": JobState.RUNNING,
    "JOB_STATE_CANCELLING": JobState.RUNNING,
    "JOB_STATE_SUCCEEDED": JobState.SUCCEEDED,
    "JOB_STATE_PARTIALLY_SUCCEEDED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED,
    "JOB_STATE_EXPIRED": JobState.FAILED,
    "JOB_STATE_CANCELLED": JobState.CANCELLED,
}
# detail state (tuningJobState) that refines a non-terminal state
DETAIL_STATES: dict[str, JobState] = {
    "TUNING_JOB_STATE_PROCESSING_DATASET": JobState.VALIDATING,
}
# tuneport method -> (TuningMethod, the TuningJob field holding its spec, its data-stats field)
METHODS: dict[str, tuple[str, str, str]] = {
    "sft": ("SUPERVISED_FINE_TUNING", "supervised_tuning_spec", "supervised_tuning_data_stats"),
    "dpo": (
        "PREFERENCE_TUNING",
        "preference_optimization_spec",
        "preference_optimization_data_stats",
    ),
}
ADAPTER_SIZES: dict[int, str] = {
    1: "ADAPTER_SIZE_ONE",
    2: "ADAPTER_SIZE_TWO",
    4: "ADAPTER_SIZE_FOUR",
    8: "ADAPTER_SIZE_EIGHT",
    16: "ADAPTER_SIZE_SIXTEEN",
    32: "ADAPTER_SIZE_THIRTY_TWO",
}
# JobConfig fields Vertex Gemini tuning has no use for -> why (warned about, never fatal)
UNSUPPORTED_FIELDS: dict[str, str] = {
    "batch_size": "Vertex Gemini tuning has no batch size; the service chooses it",
    "seed": "Vertex Gemini tuning takes no seed",
}
ROLES: dict[str, str] = {"user": "user", "assistant": "model", "tool": "user"}
# (rank, message) of the detail states, for the event feed
DETAIL_EVENTS: dict[str, tuple[int, str]] = {
    "TUNING_JOB_STATE_WAITING_FOR_QUOTA": (21, "waiting for tuning quota"),
    "TUNING_JOB_STATE_PROCESSING_DATASET": (22, "processing the dataset"),
    "TUNING_JOB_STATE_WAITING_FOR_CAPACITY": (23, "waiting for capacity"),
    "TUNING_JOB_STATE_TUNING": (24, "tuning"),
    "TUNING_JOB_STATE_POST_PROCESSING": (25, "post-processing the tuned model"),
}


class VertexOptions(BaseModel):
    """Settings of the Vertex backend (``--set key=value`` or ``options:`` in a job file)."""

    model_config = ConfigDict(extra="forbid")

    project: str | None = None
    location: str | None = None
    bucket: str | None = None  # NAME or gs://NAME/prefix where datasets are staged
    credentials_file: Path | None = None  # service-account / ADC JSON file
    access_token: SecretStr | None = None  # an OAuth access token (never printed)
    base_url: str | None = None  # default: $GOOGLE_VERTEX_BASE_URL, else the SDK's
    adapter_size: Literal[1, 2, 4, 8, 16, 32] | None = None
    beta: float | None = Field(default=None, gt=0)  # preference tuning only
    labels: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    export_last_checkpoint_only: bool | None = None
    timeout: float = Field(default=120.0, gt=0, le=MAX_WAIT_S)  # seconds per HTTP request
    max_attempts: int = Field(default=5, ge=1, le=20)
    chunk_size: int = Field(default=8 * 1024 * 1024, gt=0)  # GCS resumable chunk (256 KiB units)
    # cleanup: wait for undeploy/delete
    operation_timeout: float = Field(default=1800.0, gt=0, le=MAX_WAIT_S)


# --- error mapping (data-driven) ----------------------------------------------------------


_ADC_HINT = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        ConfigError,
        "the Vertex AI API is not enabled for project {project}",
        "gcloud services enable aiplatform.googleapis.com --project {project}",
        status=frozenset({403}),
        contains=("service_disabled", "has not been used in project", "it is disabled"),
    ),
    ErrorRule(
        ConfigError,
        "billing is not enabled for project {project}",
        "gcloud billing projects link {project} --billing-account=ACCOUNT_ID",
        status=frozenset({403, 400}),
        contains=("billing",),
    ),
    ErrorRule(
        ConfigError,
        "Vertex AI tuning is not available in {location}: {msg}",
        "use --location us-central1 (or another tuning region such as europe-west4)",
        status=frozenset({400, 404}),
        contains=(
            "not supported in region",
            "not supported in location",
            "unsupported region",
            "unsupported location",
            "is not available in region",
            "is not available in location",
            "location is not supported",
            "region is not supported",
        ),
    ),
    ErrorRule(
        AuthError,
        "Google credentials were rejected: {msg}",
        _ADC_HINT,
        status=frozenset({401}),
    ),
    ErrorRule(
        AuthError,
        "permission denied in project {project}: {msg}",
        "grant your account roles/aiplatform.user: gcloud projects add-iam-policy-binding "
        "{project} --member=user:YOU --role=roles/aiplatform.user",
        status=frozenset({403}),
    ),
    ErrorRule(
        QuotaError,
        "Vertex AI quota exhausted in {location} (still after retries): {msg}",
        "wait and run the command again, or request more quota: gcloud alpha services quota "
        "list --service=aiplatform.googleapis.com --consumer=projects/{project}",
        status=frozenset({429}),
    ),
    ErrorRule(
        NotFoundError,
        "base model {model} cannot be tuned: {msg}",
        "choose a tunable Gemini model, e.g. --model gemini-2.5-flash",
        status=frozenset({400, 404}),
        contains=("base model", "basemodel", "not tunable", "does not support tuning"),
    ),
    ErrorRule(
        ProviderError,
        "Vertex AI rejected the request: {msg}",
        "run `tuneport validate DATA --provider vertex --model {model}` and fix what it reports",
        status=frozenset({400}),
    ),
    ErrorRule(
        NotFoundError,
        "Vertex AI: not found: {msg}",
        "check the job id, --project and --location (see `tuneport jobs list`)",
        status=frozenset({404}),
    ),
    ErrorRule(
        ProviderError,
        "Vertex AI server error {status} (still failing after retries): {msg}",
        "retry later; see https://status.cloud.google.com",
        status=frozenset(range(500, 600)),
    ),
    ErrorRule(
        ProviderError,
        "Vertex AI refused the request ({status}): {msg}",
        "check --project, --location and the job settings",
    ),
)


def map_status(
    code: int | None,
    status: str | None,
    message: str,
    *,
    project: str = "",
    location: str = "",
    model: str = "",
) -> TuneportError:
    """The tuneport error for an API error triple (HTTP code, gRPC status, message), by the
    first matching :data:`ERROR_RULES`."""
    values = {
        "project": project or "PROJECT",
        "location": location or DEFAULT_LOCATION,
        "model": model or "MODEL",
    }
    return apply_rules(
        ERROR_RULES,
        status=code,
        code=status,
        message=message,
        match_text=f"{status or ''} {message}",
        values=values,
    )


def _connection_error(exc: BaseException, base_url: str) -> ProviderError:
    return UnreachableError(
        f"cannot reach Vertex AI at {base_url}: {one_line(redact(str(exc)), 200)}",
        hint=f"check the network (and {BASE_URL_ENV} if set), then run the command again",
    )


# --- the provider -------------------------------------------------------------------------


def run_id_label(run_id: str) -> str:
    """A label value for ``run_id``: lowercase letters, digits, ``-`` and ``_``, ≤ 63 chars."""
    value = re.sub(r"[^a-z0-9_-]", "-", run_id.lower())
    return value[:63]


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class VertexProvider:
    """Tune Gemini models on Vertex AI; datasets are staged in GCS."""

    name = NAME

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        client: genai.Client | None = None,
        credentials: Credentials | None = None,
        store: object = None,  # the job store: unused (uploads are content-addressed in GCS)
        **settings: Any,
    ) -> None:
        self.options = parse_options(VertexOptions, settings, NAME)
        if self.options.access_token is not None:
            register_secret(self.options.access_token.get_secret_value())
        self._sleep = sleep
        self._clock = clock
        self._client = client
        self._credentials = credentials
        self._adc_project: str | None = None
        self._policy = RetryPolicy(attempts=self.options.max_attempts)
        self._model = ""
        self._stager: GcsStager | None = None
        self._snapshot: tuple[str, float, Any] | None = None  # (job, when, TuningJob)
        # eval calls chat from several threads: build credentials and client once, under a lock
        # (two racing builds left one thread on a client the other's garbage collection closed)
        self._build_lock = threading.RLock()

    # --- settings ----------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self.options.location or os.environ.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION

    @property
    def base_url(self) -> str | None:
        """The base-URL override (setting or ``$GOOGLE_VERTEX_BASE_URL``), if any."""
        return base_url_override(self.options.base_url, BASE_URL_ENV)

    @property
    def rest_base_url(self) -> str:
        return self.base_url or f"https://{self.location}-aiplatform.googleapis.com/"

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            with self._build_lock:
                if self._credentials is None:
                    self._credentials = self._load_credentials()
        return self._credentials

    def _load_credentials(self) -> Credentials:
        import google.auth
        import google.auth.exceptions
        import google.oauth2.credentials

        token = (
            self.options.access_token.get_secret_value()
            if self.options.access_token
            else os.environ.get(TOKEN_ENV)
        )
        if token:
            register_secret(token)
            if not token.isascii() or any(c.isspace() or not c.isprintable() for c in token):
                source = "the access_token setting" if self.options.access_token else TOKEN_ENV
                raise ConfigError(
                    f"{source} contains a space, line break, control or non-ASCII character "
                    "(a copy-paste slip?)",
                    hint="print a fresh token (gcloud auth print-access-token) and copy it again",
                )
            return google.oauth2.credentials.Credentials(token=token)  # type: ignore[no-untyped-call]
        path = self.options.credentials_file or (
            Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"])
            if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
            else None
        )
        try:
            if path is not None:
                creds, project = _credentials_from_file(path)
            else:
                creds, project = google.auth.default(scopes=list(SCOPES))
        except google.auth.exceptions.DefaultCredentialsError as exc:
            where = f" in {path}" if path is not None else ""
            raise ConfigError(
                f"no usable Google credentials{where}: {one_line(str(exc), 160)}",
                hint=_ADC_HINT,
            ) from None
        self._adc_project = project
        result: Credentials = creds
        return result

    @property
    def project(self) -> str:
        project = self.options.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            _ = self.credentials  # ADC / key files may name a project
            project = self._adc_project
        if not project:
            raise ConfigError(
                "no Google Cloud project set for Vertex AI",
                hint="pass --project PROJECT_ID (or --set project=...) or export "
                "GOOGLE_CLOUD_PROJECT=PROJECT_ID",
            )
        return project

    def _known_project(self) -> str:
        """The project if already known (for error hints); never triggers a credentials lookup."""
        return (
            self.options.project
            or os.environ.get("GOOGLE_CLOUD_PROJECT")
            or self._adc_project
            or ""
        )

    @property
    def client(self) -> genai.Client:
        if self._client is not None:
            return self._client
        with self._build_lock:
            return self._build_client()

    def _build_client(self) -> genai.Client:
        if self._client is None:
            from google import genai
            from google.genai import types

            project, location, creds = self.project, self.location, self.credentials
            self._client = genai.Client(
                vertexai=True,
                project=project,
                location=location,
                credentials=creds,
                http_options=types.HttpOptions(
                    base_url=self.base_url, timeout=int(self.options.timeout * 1000)
                ),
            )
        return self._client

    def _error(self, exc: BaseException) -> TuneportError:
        from google.genai import errors as genai_errors

        if isinstance(exc, genai_errors.APIError):
            return map_status(
                exc.code,
                exc.status,
                exc.message or str(exc),
                project=self._known_project(),
                location=self.location,
                model=self._model,
            )
        return _connection_error(exc, self.base_url or "aiplatform.googleapis.com")

    def _call(
        self,
        fn: Callable[[], T],
        *,
        before_retry: Callable[[BaseException], T | None] | None = None,
    ) -> T:
        import google.auth.exceptions
        from google.genai import errors as genai_errors

        from tuneport.retry import is_connection_error

        try:
            return call_with_retry(
                fn,
                policy=self._policy,
                sleep=self._sleep,
                before_retry=before_retry,
                where=f"Vertex AI at {self.rest_base_url}",
            )
        except genai_errors.APIError as exc:
            error = self._error(exc)
            error.outcome_unknown = outcome_unknown(exc)
            raise error from None
        except ValueError as exc:  # a reply that is not JSON, or not a TuningJob
            error = ProviderError(
                f"Vertex AI sent a reply tuneport cannot read ({type(exc).__name__})",
                hint="run the same command again: tuneport checks what the service did before "
                "it repeats anything",
            )
            error.outcome_unknown = True
            raise error from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise AuthError(
                f"Google credentials could not be used: {one_line(redact(str(exc)), 200)}",
                hint=_ADC_HINT,
            ) from None
        except Exception as exc:
            if is_connection_error(exc):
                error = self._error(exc)
                error.outcome_unknown = True
                raise error from None
            raise

    # --- prepare / estimate / upload ---------------------------------------------------------

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        prepared = export_prepared(
            records,
            cfg,
            progress,
            target=NAME,
            train_out=out_dir / "train.vertex.jsonl",
            validation_out=out_dir / "validation.vertex.jsonl",
            title="convert to Vertex Gemini JSONL",
        )
        check_dataset_limits(prepared)
        return prepared

    @staticmethod
    def check_model(model: str) -> None:
        """Refuse a model id that belongs to another provider (e.g. a job file switched over)."""
        from tuneport.providers.registry import provider_for_model

        owner = provider_for_model(model)
        if owner is not None and owner != NAME:
            raise ConfigError(
                f"model {model!r} belongs to the {owner} provider, not to Vertex AI",
                hint="pass --model gemini-2.5-flash (or another tunable Gemini model)",
            )

    def check_beta(self, cfg: JobConfig) -> None:
        if self.options.beta is not None and cfg.method != "dpo":
            raise ConfigError(
                "beta applies to preference tuning only",
                hint="use --method dpo or drop the beta setting",
            )

    def check_adapter_size(self, cfg: JobConfig) -> None:
        """An adapter size the docs do not list for the model and method is refused (a model
        whose sizes are unconfirmed only gets a warning in the estimate)."""
        size = self.options.adapter_size
        allowed = adapter_sizes(cfg.model, cfg.method)
        if size is None or allowed is None or size in allowed:
            return
        raise ConfigError(
            f"adapter_size {size} is not available for {cfg.model} ({cfg.method}); the docs "
            f"list {', '.join(map(str, allowed))} ({ADAPTER_SIZES_SOURCE})",
            hint=f"use --set adapter_size={allowed[-1]} or smaller, or leave it unset",
        )

    def check_config(self, cfg: JobConfig) -> None:
        """Refuse what cannot work before anything is uploaded or paid for."""
        self.check_model(cfg.model)
        self.check_beta(cfg)
        self.check_adapter_size(cfg)

    def preflight(self, cfg: JobConfig) -> None:
        """Every settings problem at once, before pricing, the prompt or any upload.

        Checks the model, beta, bucket, project and credentials (no tuning API call).
        """
        from tuneport.providers.gcs import parse_location

        checks: list[Callable[[], object]] = [
            lambda: self.check_model(cfg.model),
            lambda: self.check_beta(cfg),
            lambda: self.check_adapter_size(cfg),
            lambda: parse_location(self.options.bucket) if self.options.bucket else self.stager(),
            lambda: self.credentials,
            lambda: self.project,
        ]
        problems: list[ConfigError] = []
        for check in checks:
            try:
                check()
            except ConfigError as exc:
                problems.append(exc)
        if problems:  # every one at once, one line each
            raise combine(problems)

    def stager(self) -> GcsStager:
        if self._stager is None:
            from tuneport.providers.gcs import GcsStager, parse_location

            if not self.options.bucket:
                raise ConfigError(
                    "Vertex AI reads training data from Cloud Storage, but no bucket is set",
                    hint="pass --bucket NAME (or gs://NAME/prefix, or --set bucket=...)",
                )
            emulated = bool(os.environ.get("STORAGE_EMULATOR_HOST"))
            self._stager = GcsStager(
                parse_location(self.options.bucket),
                project=self.project,
                region=self.location,
                credentials=None if emulated else self.credentials,
                chunk_size=self.options.chunk_size,
            )
        return self._stager

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        from tuneport.providers.gcs import file_digests

        stager = self.stager()
        train_digests = file_digests(prepared.training)
        if train_digests.sha256 != prepared.sha256:
            raise ProviderError(
                f"{prepared.training} changed after it was prepared",
                hint="run the command again",
            )
        train = stager.upload(prepared.training, progress=progress, digests=train_digests)
        validation = None
        reused = train.reused
        if prepared.validation is not None:
            val = stager.upload(prepared.validation, progress=progress)
            validation = val.uri
            reused = reused and val.reused
        return UploadedData(training=train.uri, validation=validation, reused=reused)

    # --- jobs --------------------------------------------------------------------------------

    def tuning_config(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """The ``CreateTuningJobConfig`` fields for ``cfg`` (JobConfig → Vertex field map)."""
        method, _spec, _stats = METHODS[cfg.method]
        display = cfg.suffix or f"tuneport-{run_id}"
        config: dict[str, Any] = {
            "method": method,
            "tuned_model_display_name": display[:MAX_DISPLAY_NAME],
            "labels": {**self.options.labels, RUN_ID_LABEL: run_id_label(run_id)},
        }
        if cfg.epochs is not None:
            config["epoch_count"] = cfg.epochs
        if cfg.learning_rate_multiplier is not None:
            config["learning_rate_multiplier"] = cfg.learning_rate_multiplier
        if self.options.adapter_size is not None:
            config["adapter_size"] = ADAPTER_SIZES[self.options.adapter_size]
        if uploaded.validation is not None:
            config["validation_dataset"] = {"gcs_uri": uploaded.validation}
        if self.options.description is not None:
            config["description"] = self.options.description
        if self.options.export_last_checkpoint_only is not None:
            config["export_last_checkpoint_only"] = self.options.export_last_checkpoint_only
        if self.options.beta is not None:
            config["beta"] = self.options.beta
        return config

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        from google.genai import types

        self.check_config(cfg)
        self._model = cfg.model
        existing = self.find_run(run_id)
        if existing is not None:
            return JobRef(provider=NAME, remote_id=existing, run_id=run_id)
        config = types.CreateTuningJobConfig(**self.tuning_config(uploaded, cfg, run_id))
        dataset = types.TuningDataset(gcs_uri=uploaded.training)

        def create() -> str:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the SDK's "tuning is experimental" notice
                job = self.client.tunings.tune(
                    base_model=cfg.model, training_dataset=dataset, config=config
                )
            if not job.name:
                error = ProviderError("Vertex AI returned a tuning job without a name")
                error.outcome_unknown = True  # it may exist: look it up by its label
                raise error
            return str(job.name)

        def reconcile(exc: BaseException) -> str | None:
            # A failed attempt whose outcome is unknown may have created the job: look first.
            return self.find_run(run_id) if outcome_unknown(exc) else None

        remote_id = create_once(self._call, create, lambda: self.find_run(run_id), reconcile)
        return JobRef(provider=NAME, remote_id=remote_id, run_id=run_id)

    def find_run(self, run_id: str) -> str | None:
        label = run_id_label(run_id)

        def search() -> str | None:
            pager = self.client.tunings.list(
                config={"page_size": 50, "filter": f'labels.{RUN_ID_LABEL}="{label}"'}
            )
            for i, job in enumerate(pager):
                if (job.labels or {}).get(RUN_ID_LABEL) == label and job.name:
                    return job.name
                if i + 1 >= SEARCH_JOBS:
                    break
            return None

        return self._call(search)

    def _get(self, remote_id: str) -> Any:
        return self._call(lambda: self.client.tunings.get(name=remote_id))

    def status(self, job: JobRef) -> JobStatus:
        remote = self._get(job.remote_id)
        self._snapshot = (job.remote_id, self._clock(), remote)
        return self._status(remote)

    @staticmethod
    def _spec_and_stats(job: Any) -> tuple[Any, Any]:
        for _method, spec_field, stats_field in METHODS.values():
            spec = getattr(job, spec_field, None)
            if spec is not None:
                stats = getattr(job.tuning_data_stats, stats_field, None)
                return spec, stats
        stats = None
        if job.tuning_data_stats is not None:
            for _method, _spec, stats_field in METHODS.values():
                stats = stats or getattr(job.tuning_data_stats, stats_field, None)
        return None, stats

    @classmethod
    def _status(cls, job: Any) -> JobStatus:
        raw_state = _enum_name(job.state) or "JOB_STATE_UNSPECIFIED"
        state = STATES.get(raw_state, JobState.RUNNING)
        detail = _enum_name(job.tuning_job_state)
        if not state.terminal and detail in DETAIL_STATES:
            state = DETAIL_STATES[detail]
        spec, stats = cls._spec_and_stats(job)
        hyper = getattr(spec, "hyper_parameters", None)
        epochs = _int(getattr(hyper, "epoch_count", None))
        billable = _int(getattr(stats, "total_billable_token_count", None))
        truncated = _int(getattr(stats, "total_truncated_example_count", None))
        if truncated is None and getattr(stats, "dropped_example_indices", None) is not None:
            truncated = len(stats.dropped_example_indices)
        billed = billable * epochs if billable is not None and epochs else billable
        done = _int(getattr(job.tuning_job_metadata, "completed_epoch_count", None))
        progress: float | None = None
        if state == JobState.SUCCEEDED:
            progress = 1.0
        elif done is not None and epochs:
            progress = min(1.0, done / epochs)
        error = None
        if job.error is not None and (job.error.message or job.error.code):
            error = one_line(redact(f"{job.error.message} (code {job.error.code})"))
        tuned = job.tuned_model
        labels = job.labels or {}
        raw: dict[str, Any] = {
            "name": job.name,
            "state": raw_state,
            "tuning_job_state": detail,
            "base_model": job.base_model,
            "tuned_model_display_name": job.tuned_model_display_name,
            "tuned_model": tuned.model if tuned else None,
            "endpoint": tuned.endpoint if tuned else None,
            "labels": dict(labels),
            "epoch_count": epochs,
            "completed_epoch_count": done,
            "billable_dataset_tokens": billable,
            "truncated_examples": truncated,
            "tuning_examples": _int(getattr(stats, "tuning_dataset_example_count", None)),
            "create_time": job.create_time.isoformat() if job.create_time else None,
            "end_time": job.end_time.isoformat() if job.end_time else None,
        }
        return JobStatus(
            remote_id=job.name or "",
            state=state,
            raw_state=raw_state,
            error=error,
            tuned_model=tuned.endpoint if tuned else None,
            trained_tokens=billed,
            epochs=epochs,
            progress=progress,
            run_id=labels.get(RUN_ID_LABEL),
            model=job.base_model,
            created_at=job.create_time,
            phase=DETAIL_EVENTS[detail][1] if detail in DETAIL_EVENTS else None,
            raw={k: v for k, v in raw.items() if v is not None},
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Events derived from the job's snapshot (Vertex has no event feed), oldest first.

        Ids sort in the order things happen (``NN-...``), so ``after`` works across polls.
        """
        # A watch calls status() then events(): reuse that fresh snapshot (one GET per poll).
        cached = self._snapshot
        self._snapshot = None
        if (
            cached is not None
            and cached[0] == job.remote_id
            and self._clock() - cached[1] <= SNAPSHOT_TTL
        ):
            remote = cached[2]
        else:
            remote = self._get(job.remote_id)
        for event in self._events(remote):
            if after is None or event.id > after:
                yield event

    @classmethod
    def _events(cls, job: Any) -> list[JobEvent]:
        status = cls._status(job)
        events: list[JobEvent] = []

        def add(rank: int, key: str, message: str, when: datetime | None, **kw: Any) -> None:
            events.append(JobEvent(id=f"{rank:04d}-{key}", created_at=when, message=message, **kw))

        add(10, "created", f"tuning job created for {job.base_model}", job.create_time)
        detail = _enum_name(job.tuning_job_state)
        if detail in DETAIL_EVENTS and not status.state.terminal:
            rank, text = DETAIL_EVENTS[detail]
            add(rank, detail.lower(), text, job.update_time)
        if job.start_time is not None:
            add(30, "started", "tuning started", job.start_time)
        truncated = status.raw.get("truncated_examples")
        if truncated:
            add(
                40,
                "truncated",
                f"Vertex truncated or dropped {truncated} example(s) (too many tokens, invalid "
                "or too many images); see the job's tuning data stats",
                job.update_time,
                level="warning",
            )
        done = _int(getattr(job.tuning_job_metadata, "completed_epoch_count", None)) or 0
        for epoch in range(1, done + 1):
            total = f"/{status.epochs}" if status.epochs else ""
            add(100 + epoch, f"epoch-{epoch}", f"epoch {epoch}{total} completed", None, step=epoch)
        if status.state.terminal:
            text = {
                JobState.SUCCEEDED: f"succeeded; endpoint {status.tuned_model}",
                JobState.FAILED: f"failed: {status.error or status.raw_state}",
                JobState.CANCELLED: "cancelled",
            }[status.state]
            level = "error" if status.state == JobState.FAILED else "info"
            add(9000, status.state.value, text, job.end_time, level=level)
        return events

    def cancel(self, job: JobRef) -> None:
        self._call(lambda: self.client.tunings.cancel(name=job.remote_id))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        def fetch() -> list[Any]:
            found: list[Any] = []
            for job in self.client.tunings.list(config={"page_size": min(max(limit, 1), 100)}):
                found.append(job)
                if len(found) >= limit:
                    break
            return found

        return [self._status(j) for j in self._call(fetch)]

    # --- chat --------------------------------------------------------------------------------

    @staticmethod
    def contents(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
        """System text and Gemini ``contents`` for a chat (tool turns become plain text)."""
        system = [m.content for m in messages if m.role == "system" and m.content]
        contents: list[dict[str, Any]] = []
        for m in messages:
            if m.role == "system":
                continue
            text = m.content or ""
            if m.role == "tool":
                text = f"[tool result] {text}"
            if m.tool_calls:
                calls = "; ".join(
                    f"{c.function.name}({c.function.arguments})" for c in m.tool_calls
                )
                text = f"{text}\n[tool calls] {calls}".strip()
            role = ROLES[m.role]
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].append({"text": text})
            else:
                contents.append({"role": role, "parts": [{"text": text}]})
        return ("\n\n".join(system) or None), contents

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        from google.genai import types

        self._model = model
        system, contents = self.contents(messages)
        config = types.GenerateContentConfig(
            system_instruction=system,
            temperature=options.temperature,
            max_output_tokens=options.max_tokens,
        )
        reply = self._call(
            lambda: self.client.models.generate_content(
                model=model,
                contents=contents,  # type: ignore[arg-type]
                config=config,
            )
        )
        parts = []
        if reply.candidates and reply.candidates[0].content:
            parts = reply.candidates[0].content.parts or []
        text = "".join(p.text for p in parts if p.text and not p.thought) or None
        calls = [
            ToolCall(
                id=p.function_call.id or f"call_{i}",
                function=FunctionCall(
                    name=p.function_call.name or "",
                    arguments=json.dumps(p.function_call.args or {}),
                ),
            )
            for i, p in enumerate(parts)
            if p.function_call is not None
        ]
        if text is None and not calls:
            reason = None
            if reply.candidates:
                reason = _enum_name(reply.candidates[0].finish_reason)
            raise ProviderError(
                f"{model} returned no text (finish reason: {reason or 'none'})",
                hint="rephrase the message or check the endpoint",
            )
        return Message(role="assistant", content=text, tool_calls=calls or None)

    # --- online token counting ------------------------------------------------------------

    def online_counter(self, model: str) -> VertexTokenCounter:
        """Exact counts from Vertex ``countTokens`` for ``model`` (``estimate --online``)."""
        return VertexTokenCounter(self, model)

    def count_tokens(
        self,
        model: str,
        contents: list[dict[str, Any]] | str,
        *,
        system: Any = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> int:
        from google.genai import types

        self._model = model
        config = types.CountTokensConfig(
            system_instruction=system,
            tools=[types.Tool.model_validate(t) for t in tools or []] or None,
        )
        reply = self._call(
            lambda: self.client.models.count_tokens(
                model=model,
                contents=contents,  # type: ignore[arg-type]
                config=config,
            )
        )
        return int(reply.total_tokens or 0)

    # --- cleanup (REST through httpx) -------------------------------------------------------

    def _rest_headers(self) -> dict[str, str]:
        creds = self.credentials
        if not creds.valid:
            import google.auth.exceptions
            from google.auth.transport.requests import Request

            try:
                creds.refresh(Request())  # type: ignore[no-untyped-call]
            except google.auth.exceptions.RefreshError as exc:
                raise AuthError(
                    f"Google credentials could not be refreshed: {one_line(str(exc), 160)}",
                    hint=_ADC_HINT,
                ) from None
        headers: dict[str, str] = {}
        creds.apply(headers)  # type: ignore[no-untyped-call]
        quota_project = getattr(creds, "quota_project_id", None)
        if quota_project:
            headers["x-goog-user-project"] = str(quota_project)
        return headers

    def _rest(self, http: httpx.Client, method: str, name: str, body: Any = None) -> Any:
        """One REST call on a resource name; 404 -> ``None``; other errors mapped."""
        import httpx

        url = f"{self.rest_base_url.rstrip('/')}/{REST_API_VERSION}/{name}"

        def send() -> Any:
            response = http.request(method, url, json=body, headers=self._rest_headers())
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return response.json() if response.content else {}

        try:
            return call_with_retry(
                send, policy=self._policy, sleep=self._sleep, where=f"Vertex AI at {url}"
            )
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            status, message = None, exc.response.text
            try:
                err = exc.response.json().get("error", {})
                status, message = err.get("status"), err.get("message", message)
            except ValueError:
                pass
            raise map_status(
                code, status, message, project=self._known_project(), location=self.location
            ) from None
        except httpx.TransportError as exc:
            raise _connection_error(exc, self.rest_base_url) from None

    def _wait(self, http: httpx.Client, operation: Any, what: str) -> None:
        """Poll a long-running operation until done; raise its error."""
        if not isinstance(operation, Mapping):
            return
        from tuneport.retry import default_interval

        deadline = self._clock() + self.options.operation_timeout
        delay = min(1.0, default_interval())  # $TUNEPORT_POLL_INTERVAL=0: no waiting (tests)
        while not operation.get("done"):
            name = operation.get("name")
            if not name:
                return
            if self._clock() > deadline:
                raise ProviderError(
                    f"timed out waiting for Vertex AI to {what}",
                    hint="run `tuneport jobs cleanup` again later",
                )
            self._sleep(delay)
            delay = min(delay * 2, 15.0)
            operation = self._rest(http, "GET", str(name)) or {"done": True}
        err = operation.get("error")
        if err:
            raise map_status(
                _int(err.get("code")),
                None,
                str(err.get("message", "")),
                project=self._known_project(),
                location=self.location,
            )

    def _setup_source(self) -> str | None:
        """Where this backend's credentials would come from, or ``None`` when nothing is set
        up (no token, key file, ADC file or project)."""
        adc_file = (
            Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
            / "application_default_credentials.json"
        )
        sources = [
            (self.options.access_token is not None, "the access_token setting"),
            (bool(os.environ.get(TOKEN_ENV)), TOKEN_ENV),
            (self.options.credentials_file is not None, "the credentials_file setting"),
            (
                bool(os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")),
                "GOOGLE_APPLICATION_CREDENTIALS",
            ),
            (adc_file.is_file(), "gcloud application-default credentials"),
            (
                bool(self.options.project or os.environ.get("GOOGLE_CLOUD_PROJECT")),
                "application default credentials",
            ),
        ]
        return next((name for present, name in sources if present), None)

    def doctor(self, timeout: float) -> list[Check]:
        """Credentials (never shown), project, location, bucket and the API reachable."""
        import httpx

        source = self._setup_source()
        if source is None:
            return [
                Check(
                    "credentials",
                    "skip",
                    "no Google credentials or project set: the Vertex backend is not configured",
                    fix="gcloud auth application-default login; export GOOGLE_CLOUD_PROJECT=ID",
                )
            ]
        checks: list[Check] = []

        def check(name: str, found: Callable[[], str]) -> None:
            try:
                checks.append(Check(name, "ok", found()))
            except TuneportError as exc:
                checks.append(Check(name, "fail", exc.message, exc.hint))
            except Exception as exc:  # google-auth: metadata server, broken files, ...
                text = one_line(redact(f"{type(exc).__name__}: {exc}"), 200)
                checks.append(Check(name, "fail", text, _ADC_HINT))

        def credentials() -> str:
            _ = self.credentials
            return f"from {source}"

        check("credentials", credentials)
        check("project", lambda: self.project)
        checks.append(Check("location", "ok", self.location))
        if self.options.bucket:
            from tuneport.providers.gcs import parse_location

            check("bucket", lambda: f"{parse_location(self.options.bucket or '')}")
        else:
            checks.append(
                Check(
                    "bucket",
                    "warn",
                    "no bucket set: train needs one for the training data",
                    fix="pass --bucket NAME to train (or bucket: in the job file)",
                )
            )
        url = self.rest_base_url
        try:
            httpx.get(url, timeout=timeout)
            checks.append(Check("server", "ok", f"{url} reachable"))
        except httpx.HTTPError as exc:
            checks.append(
                Check(
                    "server",
                    "fail",
                    f"cannot reach {url}: {type(exc).__name__}",
                    fix=f"check the network (and {BASE_URL_ENV} if set)",
                )
            )
        return checks

    def cleanup(self, job: JobRef, progress: Progress | None = None) -> list[str]:
        """Undeploy every model from the tuned endpoint, delete the endpoint, then the model."""
        import httpx

        shown = (progress or NullProgress()).note
        removed: list[str] = []

        def note(thing: str) -> None:  # what was deleted; the CLI prints "deleted <thing>"
            removed.append(thing)
            shown(f"deleted {thing}")

        remote = self._get(job.remote_id)
        tuned = remote.tuned_model
        endpoint = getattr(tuned, "endpoint", None)
        model = getattr(tuned, "model", None)
        with httpx.Client(timeout=self.options.timeout) as http:
            if endpoint:
                info = self._rest(http, "GET", endpoint)
                for deployed in (info or {}).get("deployedModels", []):
                    op = self._rest(
                        http,
                        "POST",
                        f"{endpoint}:undeployModel",
                        {"deployedModelId": deployed.get("id")},
                    )
                    self._wait(http, op, f"undeploy {deployed.get('id')} from {endpoint}")
                    note(f"deployed model {deployed.get('id')} on endpoint {endpoint}")
                if info is not None:
                    self._wait(http, self._rest(http, "DELETE", endpoint), f"delete {endpoint}")
                    note(f"endpoint {endpoint}")
            if model:
                base = str(model).split("@", 1)[0]
                op = self._rest(http, "DELETE", base)
                if op is not None:
                    self._wait(http, op, f"delete {base}")
                    note(f"model {base}")
        return removed

    # --- ReturnsData: give a finished job's data back (`tuneport port`) ---------------------

    def source_job(self, ref: str) -> SourceJob:
        """The tuning job ``ref`` (``projects/P/locations/L/tuningJobs/ID``) or the job whose
        tuned model is ``ref`` (its endpoint or model name), with its GCS URIs, method and
        hyperparameters (google-genai ``TuningJob``: ``supervisedTuningSpec`` /
        ``preferenceOptimizationSpec``)."""
        job: Any = None
        if "/tuningJobs/" in ref:
            try:
                job = self._get(ref)
            except NotFoundError:
                job = None
        else:
            job = self._job_of_model(ref)
        if job is None:
            raise NotFoundError(
                f"Vertex AI ({self._known_project() or 'project'}, {self.location}) holds no "
                f"tuning job {ref!r}",
                hint="see `tuneport jobs list --remote -p vertex` for the jobs it holds",
            )
        status = self._status(job)
        spec, _stats = self._spec_and_stats(job)
        method = next(
            (m for m, (_, field, _) in METHODS.items() if getattr(job, field, None) is not None),
            "sft",
        )
        hyper = getattr(spec, "hyper_parameters", None)
        sizes = {v: k for k, v in ADAPTER_SIZES.items()}
        kept = {
            "epochs": _int(getattr(hyper, "epoch_count", None)),
            "learning_rate_multiplier": getattr(hyper, "learning_rate_multiplier", None),
            "batch_size": _int(getattr(hyper, "batch_size", None)),  # supervised only
            "adapter_size": sizes.get(_enum_name(getattr(hyper, "adapter_size", None)) or ""),
            "beta": getattr(hyper, "beta", None),  # preference only
        }
        return SourceJob(
            provider=NAME,
            remote_id=str(job.name),
            model=str(job.base_model or ""),
            tuned_model=status.tuned_model,
            state=status.state.value,
            method=method,
            hyperparameters={k: v for k, v in kept.items() if v is not None},
            trained_tokens=status.trained_tokens,
            training=str(getattr(spec, "training_dataset_uri", None) or ""),
            validation=getattr(spec, "validation_dataset_uri", None) or None,
            created_at=job.create_time.isoformat() if job.create_time else None,
        )

    def _job_of_model(self, model: str) -> Any:
        def search() -> Any:
            for i, job in enumerate(self.client.tunings.list(config={"page_size": 50})):
                tuned = job.tuned_model
                if tuned is not None and model in (tuned.endpoint, tuned.model):
                    return job
                if i + 1 >= SEARCH_JOBS:
                    break
            return None

        return self._call(search)

    def download(self, ref: str, out: Path) -> None:
        """The bytes of Cloud Storage object ``ref`` (``gs://BUCKET/NAME``) written to ``out``
        (Gemini-format JSONL, which tuneport reads back as ``--from vertex``)."""
        from google.api_core import exceptions as gexc

        from tuneport.providers.gcs import GcsLocation, GcsStager, storage_error

        bucket, _, name = ref.removeprefix("gs://").partition("/")
        if not ref.startswith("gs://") or not bucket or not name:
            raise NotFoundError(
                f"{ref!r} is not a Cloud Storage object (gs://BUCKET/NAME)",
                hint="port a tuning job whose datasets are in Cloud Storage",
            )
        emulated = bool(os.environ.get("STORAGE_EMULATOR_HOST"))
        stager = GcsStager(
            GcsLocation(bucket, ""),
            project=self.project,
            region=self.location,
            credentials=None if emulated else self.credentials,
        )
        blob = stager.client.bucket(bucket).blob(name)
        try:
            blob.download_to_filename(str(out))
        except gexc.NotFound:
            raise NotFoundError(
                f"Cloud Storage no longer holds {ref} (deleted?)",
                hint="port from a copy of the data instead: `tuneport train` with the file",
            ) from None
        except gexc.GoogleAPICallError as exc:
            raise storage_error(exc, bucket=bucket, project=self._known_project()) from None


def check_dataset_limits(prepared: PreparedData) -> None:
    """Refuse a dataset Vertex would reject: a JSONL file over 1 GB, or more than 5,000
    validation examples (:data:`DATASET_LIMITS_SOURCE`)."""
    for path in (prepared.training, prepared.validation):
        if path is not None and path.stat().st_size > MAX_DATASET_BYTES:
            raise InputError(
                f"{path.name} is {path.stat().st_size / 2**20:,.0f} MiB; Vertex tuning reads "
                f"dataset files of at most {MAX_DATASET_BYTES / 2**30:g} GB",
                hint="split the data or shorten it (tuneport curate --sample N)",
            )
    if prepared.validation is not None:
        with prepared.validation.open("rb") as fh:
            n = sum(1 for line in fh if line.strip())
        if n > MAX_VALIDATION_EXAMPLES:
            raise InputError(
                f"the validation set has {n:,} examples; Vertex takes at most "
                f"{MAX_VALIDATION_EXAMPLES:,}",
                hint=f"keep at most {MAX_VALIDATION_EXAMPLES:,} (e.g. tuneport curate VALIDATION "
                f"-o smaller.jsonl --sample {MAX_VALIDATION_EXAMPLES})",
            )


def _credentials_from_file(path: Path) -> tuple[Any, str | None]:
    """Credentials (and project) from a service-account key or an ``authorized_user`` file."""
    import google.auth
    import google.oauth2.credentials
    from google.oauth2 import service_account

    fix = (
        "set GOOGLE_APPLICATION_CREDENTIALS (or --set credentials_file=) to a service-account "
        "JSON key, or run `gcloud auth application-default login`"
    )
    if not path.is_file():
        raise ConfigError(f"Google credentials file {path} does not exist", hint=fix)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"{path} is not a readable JSON credentials file: {exc}", hint=fix
        ) from None
    if not isinstance(info, dict):
        raise ConfigError(f"{path} is not a JSON credentials file", hint=fix)
    kind = info.get("type")
    scopes = list(SCOPES)
    try:  # a damaged key (bad PEM, missing fields) fails here, not as "a reply Vertex sent"
        if kind == "service_account":
            creds: Any = service_account.Credentials.from_service_account_info(info, scopes=scopes)  # type: ignore[no-untyped-call]
            return creds, info.get("project_id")
        if kind == "authorized_user":
            creds = google.oauth2.credentials.Credentials.from_authorized_user_info(info, scopes)  # type: ignore[no-untyped-call]
            return creds, info.get("quota_project_id")
    except (ValueError, KeyError, TypeError) as exc:
        detail = one_line(redact(str(exc)), 160)
        raise ConfigError(
            f"{path}: the {kind} credentials in it cannot be used ({type(exc).__name__}: {detail})",
            hint="download a new key for the service account (IAM > Service accounts > Keys), "
            "or " + fix.split(", or ")[-1],
        ) from None
    with warnings.catch_warnings():  # other types (external_account, ...): google-auth decides
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded: tuple[Any, str | None] = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            str(path), scopes=scopes
        )
    return loaded


class VertexTokenCounter:
    """Exact token counts through Vertex ``countTokens`` (one request per record)."""

    exact = True
    error_band: float | None = None

    def __init__(self, provider: VertexProvider, model: str) -> None:
        self.provider = provider
        self.model = model
        self.label = f"Vertex countTokens ({model})"

    def count(self, record: Example | PreferenceExample) -> int:
        from tuneport.data.exporters import to_vertex, to_vertex_preference

        if isinstance(record, PreferenceExample):  # billed: 2 × prompt + completions
            row = to_vertex_preference(record)
            contents = [*row["contents"], *(c["completion"] for c in row["completions"])]
            system = row.get("system_instruction")
            whole = self.provider.count_tokens(self.model, contents, system=system)
            prompt = self.provider.count_tokens(self.model, row["contents"], system=system)
            return whole + (PREFERENCE_PROMPT_WEIGHT - 1) * prompt
        row = to_vertex(record)
        return self.provider.count_tokens(
            self.model,
            row["contents"],
            system=row.get("systemInstruction"),
            tools=row.get("tools"),
        )

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        return self.provider.count_tokens(self.model, text)


__all__ = [
    "ERROR_RULES",
    "STATES",
    "VertexOptions",
    "VertexProvider",
    "VertexTokenCounter",
    "map_status",
    "run_id_label",
]


# --- the descriptor: everything tuneport knows about Vertex AI, in one place -----------------

# Offline Gemini approximation: o200k count x factor, relative uncertainty. Gemini uses its own
# SentencePiece vocabulary that tuneport cannot load offline; o200k gives similar counts for
# English prose but can differ much more for code or other scripts, hence the wide band.
APPROX_FACTOR = 1.0
APPROX_BAND = 0.25


# Vertex bills preference tuning as "the number of tokens in the prompt by 2, and then adding
# the number of completion tokens" (preference tuning docs, read 2026-11-30): the counter weighs
# preference prompts so, and the same counts serve the estimate and the per-example limit.
PREFERENCE_PROMPT_WEIGHT = 2
BILLING_SOURCES = {
    "sft": "cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-use-supervised-tuning: "
    "dataset tokens × epochs (read 2026-11-30)",
    "dpo": "cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-use-preference-tuning: "
    "2 × prompt tokens + completion tokens, × epochs (read 2026-11-30)",
}
# Google's cost-estimation notebook (generative-ai repo, gemini/tuning/vertexai_supervised_
# tuning_token_count_and_cost_estimation.ipynb, Gemini 1.0/1.5, removed 2025-03-31): each model
# turn is a record with all earlier turns, +8 tokens per record, validation tokens added.
NOTEBOOK_PADDING = 8
NOTEBOOK_NOTE = (
    "Google's older cost notebook for Gemini tuning (removed 2025-03-31) bills each model turn "
    "as its own record with all earlier turns (+8 tokens each) and adds validation tokens; "
    "current docs say dataset tokens × epochs"
)


def counter(model: str, settings: Mapping[str, Any]) -> TokenCounter:
    """Offline: o200k × :data:`APPROX_FACTOR`, labelled approximate (``--online``: countTokens,
    through :meth:`VertexProvider.online_counter`); preference prompts count twice, as billed."""
    return ScaledTextCounter(
        APPROX_FACTOR,
        APPROX_BAND,
        "Gemini tokenizer offline",
        prompt_weight=PREFERENCE_PROMPT_WEIGHT,
    )


class TurnRecordCounter:
    """The notebook's billing unit: every model turn of a chat example is a record holding all
    earlier turns (system included) and that turn, + :data:`NOTEBOOK_PADDING` tokens; each
    record at most ``limit`` tokens. Text is counted with ``base.count_text``."""

    def __init__(self, base: TokenCounter, limit: int | None) -> None:
        self.base = base
        self.limit = limit
        self.exact = base.exact
        self.error_band = base.error_band
        self.label = f"{base.label}; each model turn a record (+{NOTEBOOK_PADDING})"

    def _tokens(self, m: Message) -> int:
        n = self.base.count_text(m.content) if m.content else 0
        for call in m.tool_calls or ():
            n += self.base.count_text(call.function.name + call.function.arguments)
        return n

    def count(self, record: Example | PreferenceExample) -> int:
        if isinstance(record, PreferenceExample):
            return self.base.count(record)
        total = running = 0
        for m in record.messages:
            running += self._tokens(m)
            if m.role == "assistant":
                one = running + NOTEBOOK_PADDING
                total += min(one, self.limit) if self.limit else one
        return total

    def count_text(self, text: str) -> int:
        return self.base.count_text(text)


def budget_rule(
    cfg: JobConfig, used: TokenCounter, measure: Measure, limit: int | None
) -> BudgetFigure | None:
    """Supervised tuning: the notebook's per-turn figure (training + validation records, per
    epoch), which the budget guard uses where it is higher than the documented one."""
    if cfg.method != "sft":
        return None
    turns = TurnRecordCounter(counter(cfg.model, cfg.options), limit)
    tokens = measure(cfg.data, turns).total
    if cfg.validation is not None:
        tokens += measure(cfg.validation, turns).total
    return BudgetFigure(tokens, NOTEBOOK_NOTE)


# Adapter sizes per model and method (the limits tables of the supervised and preference tuning
# pages, read 2026-11-30). The API enum also has 32 (ADAPTER_SIZE_THIRTY_TWO) but no Gemini
# model lists it. A model not listed here (e.g. the 3.5 family, whose rows could not be read):
# sizes unconfirmed, so tuneport warns and lets the service decide.
ADAPTER_SIZE_LIMITS: dict[str, dict[str, tuple[int, ...]]] = {
    "gemini-2.5-pro": {"sft": (1, 2, 4, 8)},
    "gemini-2.5-flash": {"sft": (1, 2, 4, 8, 16), "dpo": (1, 2, 4, 8, 16)},  # and -lite
    "gemini-3.1-flash-lite": {"sft": (1, 2, 4, 8, 16)},
}
ADAPTER_SIZES_SOURCE = (
    "cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-use-supervised-tuning and "
    "gemini-use-preference-tuning, limits tables (read 2026-11-30)"
)


def _base_id(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def adapter_sizes(model: str, method: str) -> tuple[int, ...] | None:
    """The documented adapter sizes of ``model`` for ``method``, or ``None`` if unconfirmed."""
    base = _base_id(model)
    matches = [p for p in ADAPTER_SIZE_LIMITS if base.startswith(p)]
    if not matches:
        return None
    return ADAPTER_SIZE_LIMITS[max(matches, key=len)].get(method)


def _adapter_size(cfg: JobConfig) -> int | None:
    size = cfg.options.get("adapter_size")
    try:
        return None if size is None else int(size)
    except (TypeError, ValueError):
        return None


def config_warnings(cfg: JobConfig) -> list[str]:
    """Settings Vertex Gemini tuning has no use for, and adapter sizes the docs do not confirm
    for the model (warned about once, never fatal)."""
    found = [
        f"{field} ignored: {why}"
        for field, why in UNSUPPORTED_FIELDS.items()
        if getattr(cfg, field) is not None
    ]
    size = _adapter_size(cfg)
    if size is not None and adapter_sizes(cfg.model, cfg.method) is None:
        found.append(
            f"adapter_size {size} is not confirmed for {cfg.model} ({cfg.method}): the docs "
            f"list sizes for other models only ({ADAPTER_SIZES_SOURCE}); Vertex decides"
        )
    return found


# Dataset limits (supervised and preference tuning pages, read 2026-11-30)
MAX_DATASET_BYTES = 1 << 30  # "1 GB" JSONL per dataset file
MAX_VALIDATION_EXAMPLES = 5_000
DATASET_LIMITS_SOURCE = (
    "cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-use-supervised-tuning, "
    "limits table (read 2026-11-30)"
)

# google-genai's FunctionDeclaration.name: "Must start with a letter or an underscore. Must be
# a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with a maximum length of 128."
TOOL_NAMES = ToolNames(
    r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}",
    "a letter or _ first, then letters, digits, _ . : and - only, at most 128 characters (Gemini)",
)

# Vertex AI Gemini supervised tuning docs: no minimum, "we recommend that you start with 100
# examples" (the old minimum of 16 was for Gemini 1.0/1.5); 131,072 tokens per example for
# every tunable Gemini (2.5, 3.1 Flash-Lite; 3.5 rows unconfirmed). Over-limit examples are
# truncated or dropped by the service (TuningDataStats.total_truncated_example_count).
RULES = Rules(
    provider=NAME,
    min_examples=1,
    recommended_examples=100,
    token_limit=131_072,
    token_limit_severity="warning",
    token_limit_note="Vertex truncates or drops them (reported in the job's tuning data stats)",
    chat=(
        *COMMON_CHAT,
        arguments_object,
        gemini_roles,
        gemini_parts,
        gemini_tool_schemas,
        TOOL_NAMES,
        no_weight,
        no_names,
        no_parallel,
        no_images,
    ),
    preference=(*COMMON_PREFERENCE, pref_text_only, pref_gemini_roles, TOOL_NAMES),
    source="cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-supervised-tuning-"
    "prepare (checked 2026-11-30)",
    sources={
        "min_examples": "no minimum in the current data-prep page (read 2026-11-30); "
        "the old 16 was for Gemini 1.0/1.5",
        "recommended_examples": "gemini-supervised-tuning-prepare: 'start with 100 examples' "
        "(read 2026-11-30)",
        "token_limit": "gemini-use-supervised-tuning limits table: 131,072 tokens per example "
        "for 2.5 and 3.1 Flash-Lite (read 2026-11-30; 3.5 rows unconfirmed)",
        "tool_names": "google-genai types.py FunctionDeclaration.name (read 2026-12-06)",
        "adapter_size": ADAPTER_SIZES_SOURCE,
        "dataset_size": DATASET_LIMITS_SOURCE,
        "billing": "; ".join(BILLING_SOURCES.values()),
    },
)

BACKEND = Backend(
    name=NAME,
    title="Vertex AI (Gemini)",
    implementation="tuneport.providers.vertex:VertexProvider",
    target="vertex",
    rules=RULES,
    counter=counter,
    model_prefixes=("projects/", "gemini-"),
    env=(
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_APPLICATION_CREDENTIALS",
        TOKEN_ENV,
        BASE_URL_ENV,
    ),
    # GOOGLE_APPLICATION_CREDENTIALS names a file (not a secret); google-genai reads the keys
    secret_env=(TOKEN_ENV, "GOOGLE_API_KEY", "GEMINI_API_KEY"),
    config_warnings=config_warnings,
    default_model="gemini-3.5-flash",
    options=tuple(VertexOptions.model_fields),
    budget_rule=budget_rule,
)
