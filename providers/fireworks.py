"""Fireworks AI fine-tuning backend (official ``fireworks-ai`` SDK, extra
``tuneport[fireworks]``).

Everything tuneport knows about Fireworks lives here: the descriptor (:data:`BACKEND`) and the
implementation (:class:`FireworksProvider`). The SDK is imported inside the implementation only.

Facts this module relies on (fireworks-ai==1.2.30 source, docs.fireworks.ai; README section):

* every control-plane call is scoped to an account: ``FIREWORKS_ACCOUNT_ID`` (or
  ``--set account_id=``) is required;
* resource ids are chosen by the client: the dataset id comes from the SHA-256 of the uploaded
  bytes (identical bytes are never uploaded twice: the dataset is simply found again), the job
  id and the output model id from the run id. Creating an id that exists answers 409, so a
  re-run or a retry after a lost reply finds the one job instead of making a second;
* the SDK retries 409/429/5xx and lost connections twice by default: the client is built with
  ``max_retries=0`` and :mod:`tuneport.retry` (tenacity) owns retries;
* a tuned LoRA answers chat only once it is deployed (the docs call a dedicated deployment "the
  only supported method for serving fine-tuned models"); ``--set deploy=true`` on ``chat``
  creates one (billed per GPU-second) and ``tuneport jobs cleanup`` deletes it;
* there is no event feed for fine-tuning jobs: events are the job's state changes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tuneport.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    ProviderError,
    QuotaError,
    TuneportError,
    redact,
    register_secret,
)
from tuneport.progress import NullProgress, Progress
from tuneport.providers.base import (
    MAX_WAIT_S,
    Backend,
    ChatOptions,
    Check,
    HourlyResource,
    PreparedData,
    SourceJob,
    UploadedData,
    export_prepared,
    parse_options,
)
from tuneport.providers.errormap import ErrorRule, one_line
from tuneport.providers.sdk import Service, as_datetime, import_sdk, learning_rate
from tuneport.retry import (
    RetryPolicy,
    call_with_retry,
    default_interval,
)
from tuneport.schemas import (
    AnyRecord,
    Example,
    JobConfig,
    JobEvent,
    JobRef,
    JobState,
    JobStatus,
    Message,
    ToolCall,
)
from tuneport.tokens.counter import TokenCounter
from tuneport.tokens.hf import hub_counter, own_or_approx
from tuneport.validation.rules import (
    COMMON_PREFERENCE,
    Finding,
    Rules,
    arguments_json,
    content_present,
    has_assistant,
    has_user,
    tool_links,
)

if TYPE_CHECKING:
    from fireworks import Fireworks

T = TypeVar("T")

NAME = "fireworks"
TITLE = "Fireworks AI"
INSTALL_HINT = "pip install 'tuneport[fireworks]'"
DEFAULT_BASE_URL = "https://api.fireworks.ai"
KEY_URL = "https://app.fireworks.ai/settings/users/api-keys"
ACCOUNT_FIX = (
    "export FIREWORKS_ACCOUNT_ID=<your account id> (shown by `firectl whoami`) "
    "or --set account_id=..."
)
# docs.fireworks.ai/fine-tuning/rft-parameters-reference: learning rate 1e-4, LoRA rank 8,
# 1 epoch, max context 8,192 (the RFT table; the same defaults assumed for SFT/DPO, unverified)
DEFAULT_LEARNING_RATE = 1e-4
DEFAULT_CONTEXT = 8192
DIRECT_UPLOAD_MAX = 150 * 1024 * 1024  # datasets.upload() docstring: "file sizes up to 150Mb"
# resource ids: 1-63 of [a-z0-9-] (fireworks SDK training/sdk/fireworks_client.py); starting
# with a letter and not ending with '-' is tuneport's choice, stricter than the SDK
ID_MAX = 63
# tuneport method -> (job collection, create id parameter, SDK resource attribute)
METHODS: dict[str, tuple[str, str, str]] = {
    "sft": (
        "supervisedFineTuningJobs",
        "supervised_fine_tuning_job_id",
        "supervised_fine_tuning_jobs",
    ),
    "dpo": ("dpoJobs", "dpo_job_id", "dpo_jobs"),
}
COLLECTIONS: dict[str, str] = {collection: attr for collection, _, attr in METHODS.values()}

# raw JOB_STATE_* -> normalized state (fireworks/types/supervised_fine_tuning_job.py; meanings
# inferred from the names except PAUSED, which the SDK documents)
STATES: dict[str, JobState] = {
    "JOB_STATE_UNSPECIFIED": JobState.QUEUED,
    "JOB_STATE_CREATING": JobState.QUEUED,
    "JOB_STATE_CREATING_INPUT_DATASET": JobState.VALIDATING,
    "JOB_STATE_VALIDATING": JobState.VALIDATING,
    "JOB_STATE_PENDING": JobState.QUEUED,
    "JOB_STATE_RE_QUEUEING": JobState.QUEUED,
    "JOB_STATE_IDLE": JobState.QUEUED,
    "JOB_STATE_PAUSED": JobState.QUEUED,
    "JOB_STATE_RUNNING": JobState.RUNNING,
    "JOB_STATE_WRITING_RESULTS": JobState.RUNNING,
    "JOB_STATE_CANCELLING": JobState.RUNNING,
    "JOB_STATE_COMPLETED": JobState.SUCCEEDED,
    "JOB_STATE_EARLY_STOPPED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED,
    "JOB_STATE_EXPIRED": JobState.FAILED,
    "JOB_STATE_CANCELLED": JobState.CANCELLED,
    "JOB_STATE_DELETING": JobState.CANCELLED,
    "JOB_STATE_DELETING_CLEANING_UP": JobState.CANCELLED,
    # tombstones newer than fireworks-ai 1.2.30's Literal (fw-ai-external/python-sdk
    # training/sdk/trainer.py, 2026-07): the job is gone, so waiting must end
    "JOB_STATE_DELETED": JobState.CANCELLED,
    "JOB_STATE_ARCHIVED": JobState.CANCELLED,
}
SNAPSHOT_TTL = 2.0  # seconds a status() snapshot may serve the next events() call


class FireworksOptions(BaseModel):
    """Settings of the Fireworks backend (``--set key=value`` or ``options:`` in a job file)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None  # default: $FIREWORKS_API_KEY
    account_id: str | None = None  # default: $FIREWORKS_ACCOUNT_ID
    base_url: str | None = None  # default: $FIREWORKS_BASE_URL, else https://api.fireworks.ai
    timeout: float = Field(default=120.0, gt=0, le=MAX_WAIT_S)
    max_attempts: int = Field(default=5, ge=1, le=20)
    learning_rate: float | None = Field(default=None, gt=0)  # absolute; wins over the multiplier
    lora_rank: int | None = Field(default=None, ge=1)
    max_context_length: int | None = Field(default=None, ge=1)
    learning_rate_warmup_steps: int | None = Field(default=None, ge=0)
    gradient_accumulation_steps: int | None = Field(default=None, ge=1)
    early_stop: bool | None = None  # SFT only
    eval_auto_carveout: bool | None = None  # SFT only: carve an evaluation set from the data
    dpo_beta: float | None = Field(default=None, gt=0, lt=0.5)  # DPO only (DpoConfig.beta)
    deploy: bool = False  # chat: create a deployment of the tuned model when none serves it
    # wait for a deployment to be READY
    deploy_timeout: float = Field(default=1800.0, gt=0, le=MAX_WAIT_S)
    # wait for an upload to be READY
    dataset_timeout: float = Field(default=1800.0, gt=0, le=MAX_WAIT_S)
    direct_upload_max: int = Field(default=DIRECT_UPLOAD_MAX, ge=1)  # bytes; above: signed URL
    delete_job: bool = False  # cleanup: delete the ended job itself too (the tuned model stays)


# --- the service and its errors (data-driven) --------------------------------------------


DEPLOY_HINT = (
    "deploy it: `tuneport chat JOB_ID --set deploy=true` creates an on-demand deployment "
    "(billed per GPU-second until `tuneport jobs cleanup JOB_ID`), or `firectl create "
    "deployment {model}`"
)
# docs.fireworks.ai/guides/inference-error-codes: 404 "the model is not deployed"; 412 also
# "when attempting to invoke a LoRA model that failed to load" (and for a suspended account).
ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        ProviderError,
        "Fireworks could not load the LoRA {model} on its deployment: {msg}",
        "check that the deployment's base model is the LoRA's base model, then `tuneport jobs "
        "cleanup JOB_ID` and chat again with --set deploy=true",
        status=frozenset({412}),
        contains=("lora", "failed to load", "adapter"),
    ),
    ErrorRule(
        QuotaError,
        "Fireworks refused: the account is suspended or out of credit: {msg}",
        "check billing at https://app.fireworks.ai/account/billing",
        status=frozenset({402, 412}),
        contains=("suspended", "credit", "billing", "payment"),
    ),
    ErrorRule(
        ProviderError,
        "Fireworks serves {model} only from a deployment, and none is running",
        DEPLOY_HINT,
        status=frozenset({400, 404}),
        contains=("not deployed", "not found, inaccessible"),
    ),
    ErrorRule(
        AuthError,
        "Fireworks rejected the API key",
        f"set FIREWORKS_API_KEY to a valid key ({KEY_URL})",
        status=frozenset({401}),
    ),
    ErrorRule(
        AuthError,
        "Fireworks denied access to account {account}: {msg}",
        "check FIREWORKS_ACCOUNT_ID and that the key belongs to that account",
        status=frozenset({403}),
    ),
    ErrorRule(
        QuotaError,
        "Fireworks quota or rate limit still hit after retries: {msg}",
        "wait and run the command again, or raise your quota at https://app.fireworks.ai",
        status=frozenset({429}),
    ),
    ErrorRule(
        NotFoundError,
        "Fireworks: not found: {msg}",
        "check the model name (accounts/fireworks/models/<id>) and the job id "
        "(`tuneport jobs list`)",
        status=frozenset({404}),
    ),
    ErrorRule(
        ProviderError,
        "Fireworks refused the request: {msg}",
        "run `tuneport validate DATA --provider fireworks` and check the --set options",
        status=frozenset({400, 409, 412, 422}),
    ),
    ErrorRule(
        ProviderError,
        "Fireworks server error {status} (still failing after retries): {msg}",
        "retry later; see https://status.fireworks.ai",
        status=frozenset(range(500, 600)),
    ),
    ErrorRule(
        ProviderError,
        "Fireworks refused the request ({status}): {msg}",
        "check the flags, the --set options and the job file",
    ),
)


API = Service(
    title="Fireworks",
    module="fireworks",
    key_env="FIREWORKS_API_KEY",
    url_env="FIREWORKS_BASE_URL",
    default_url=DEFAULT_BASE_URL,
    key_url=KEY_URL,
    rules=ERROR_RULES,
    status_url="https://status.fireworks.ai",
)


def map_error(
    exc: BaseException, *, model: str = "", account: str = "", base_url: str = ""
) -> TuneportError:
    """One-line tuneport error for an SDK error (never leaking the API key)."""
    return API.map_error(
        exc, base_url=base_url, model=model or "MODEL", account=account or "ACCOUNT"
    )


def sdk() -> Any:
    """The ``fireworks`` module, or a one-line ConfigError naming the extra to install."""
    return import_sdk("fireworks", "Fireworks", "fireworks-ai", INSTALL_HINT)


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def dataset_id(sha256: str) -> str:
    """The dataset id of bytes with ``sha256``: the same bytes always name the same dataset."""
    return f"tp-{sha256[:40]}"


def job_id(run_id: str) -> str:
    """The job id of a run: a retry or a re-run of the same run names the same job."""
    return f"tp-{_digest(run_id, 24)}"


def slug(text: str) -> str:
    """``text`` as an id fragment: lowercase letters, digits and single hyphens."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def output_model_id(cfg: JobConfig, run_id: str) -> str:
    """``<suffix>-<12 hex of the run id>`` (or the job id): the tuned model's id."""
    if not cfg.suffix or not slug(cfg.suffix):
        return job_id(run_id)
    tag = _digest(run_id, 12)
    head = slug(cfg.suffix)[: ID_MAX - len(tag) - 1].strip("-")
    if not head[:1].isalpha():
        head = f"m-{head}"[: ID_MAX - len(tag) - 1].strip("-")
    return f"{head}-{tag}"


def deployment_id(model: str) -> str:
    """The id of the deployment tuneport creates for ``model`` (found again by cleanup)."""
    return f"tp-{_digest(model, 24)}"


def _short(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


# --- the provider -----------------------------------------------------------------------------


class FireworksProvider:
    """Fine-tune, deploy and chat through the Fireworks AI API."""

    name = NAME

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        store: object = None,  # unused: datasets are named by their content
        client: Fireworks | None = None,
        **settings: Any,
    ) -> None:
        self.options = parse_options(FireworksOptions, settings, NAME)
        if self.options.api_key is not None:
            register_secret(self.options.api_key.get_secret_value())
        register_secret(os.environ.get("FIREWORKS_API_KEY"))
        self._sleep = sleep
        self._clock = clock
        self._client = client
        self._policy = RetryPolicy(attempts=self.options.max_attempts)
        self._model = ""
        self._snapshot: tuple[str, float, Any] | None = None
        self._hourly_consent = False  # set by consent_hourly(): chat/eval asked the user

    # --- online counting (estimate --online) ---------------------------------------------------

    def online_counter(self, model: str) -> TokenCounter:
        """Exact counts with the base model's own tokenizer and chat template, fetched from the
        Hugging Face Hub (tokenizer files only) when not on this machine: what Fireworks bills
        with. The Fireworks id is mapped to its Hugging Face repo (:data:`TOKENIZERS`)."""
        known = TOKENIZERS.get(_short(model), "")
        if not known and model.count("/") != 1:
            raise ConfigError(
                f"tuneport does not know the Hugging Face repo of Fireworks model {model}",
                hint="pass the base model's Hugging Face id as --model (e.g. "
                "meta-llama/Llama-3.1-8B-Instruct) to count online, or drop --online",
            )
        counted: TokenCounter = hub_counter([model, known], what=f"Fireworks model {model}")
        return counted

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return API.base_url(self.options.base_url)

    @property
    def account(self) -> str:
        return self.options.account_id or os.environ.get("FIREWORKS_ACCOUNT_ID") or ""

    def _api_key(self) -> str | None:
        return API.api_key(self.options.api_key)

    def _settings_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if not self._api_key():
            problems.append(API.key_problem())
        if not self.account:
            problems.append(("FIREWORKS_ACCOUNT_ID is not set", ACCOUNT_FIX))
        return problems

    @property
    def client(self) -> Fireworks:
        if self._client is None:
            problems = self._settings_problems()
            if problems:
                raise ConfigError(
                    "; ".join(p for p, _ in problems), hint="; ".join(f for _, f in problems)
                )
            made: Fireworks = sdk().Fireworks(
                api_key=self._api_key(),
                account_id=self.account,
                # None unless set: the SDK sends chat to its inference path only when the base
                # URL is not overridden (resources/chat/completions.py)
                base_url=API.url_override(self.options.base_url),
                timeout=self.options.timeout,
                max_retries=0,  # tenacity (tuneport.retry) owns retries
            )
            self._client = made
        return self._client

    def _call(
        self,
        fn: Callable[[], T],
        *,
        before_retry: Callable[[BaseException], T | None] | None = None,
    ) -> T:
        return API.call(
            fn,
            policy=self._policy,
            sleep=self._sleep,
            base_url=self.base_url,
            values={"model": self._model or "MODEL", "account": self.account or "ACCOUNT"},
            before_retry=before_retry,
        )

    def doctor(self, timeout: float) -> list[Check]:
        """Key set (never shown), SDK installed, account id set, one page of datasets (server
        reachable, key accepted for the account), and a warning for every deployment tuneport
        made that still bills (they cost per GPU-second until deleted)."""
        key_check = API.key_check(self.options.api_key)
        if key_check.status == "skip":
            return [key_check]
        checks = [key_check]
        try:
            version = getattr(sdk(), "__version__", "?")
        except ConfigError as exc:
            return [*checks, Check("SDK", "fail", exc.message, exc.hint)]
        checks.append(Check("SDK", "ok", f"fireworks-ai {version}"))
        if not self.account:
            missing = "FIREWORKS_ACCOUNT_ID is not set"
            return [*checks, Check("account", "fail", missing, ACCOUNT_FIX)]
        checks.append(Check("account", "ok", self.account))
        server = API.probe(
            f"{self.base_url}/v1/accounts/{self.account}/datasets",
            str(self._api_key()),
            timeout,
            params={"pageSize": 1},
            what=f"key accepted for account {self.account}",
        )
        checks.append(server)
        if server.status == "ok":
            checks.append(self._billing_deployments(timeout))
        return checks

    def _billing_deployments(self, timeout: float) -> Check:
        """``warn`` for each deployment tuneport created (``tp-`` ids) that is not deleted."""
        try:
            client = self.client.with_options(timeout=timeout)
            live = [
                str(d.name)
                for d in client.deployments.list()
                if str(d.name).rsplit("/", 1)[-1].startswith("tp-")
                and d.state not in ("DELETING", "DELETED", "FAILED")
            ]
        except Exception as exc:
            if not API.owns(exc):
                raise
            error = API.map_error(exc, base_url=self.base_url, model="", account=self.account)
            return Check("deployments", "warn", f"cannot list deployments: {error.message}")
        if not live:
            return Check("deployments", "ok", "no tuneport deployment is running")
        return Check(
            "deployments",
            "warn",
            f"{len(live)} tuneport deployment(s) still billing per GPU-second: {', '.join(live)}",
            fix="`tuneport jobs cleanup JOB_ID` (or `firectl delete deployment ID`) when done",
        )

    def _get_or_none(self, fn: Callable[[], T]) -> T | None:
        try:
            return self._call(fn)
        except NotFoundError:
            return None

    def _full_model(self, model: str) -> str:
        return model if model.startswith("accounts/") else f"accounts/{self.account}/models/{model}"

    # --- preflight -----------------------------------------------------------------------------

    def preflight(self, cfg: JobConfig) -> None:
        """Key and account present, settings valid, all reported at once (no network)."""
        problems = self._settings_problems()
        opts = self.options
        if not cfg.model.startswith("accounts/"):
            problems.append(
                (
                    f"model {cfg.model!r} is not a Fireworks model name",
                    "use the full name, e.g. accounts/fireworks/models/llama-v3p1-8b-instruct",
                )
            )
        if cfg.method == "dpo":
            for key in ("early_stop", "eval_auto_carveout"):
                if getattr(opts, key) is not None:
                    problems.append((f"{key} applies to --method sft only", f"drop {key}"))
            if cfg.validation is not None:
                problems.append(
                    (
                        "Fireworks DPO jobs take no validation file",
                        "drop --validation (or use --method sft)",
                    )
                )
        elif opts.dpo_beta is not None:
            problems.append(("dpo_beta applies to --method dpo only", "drop dpo_beta"))
        if problems:
            raise ConfigError(
                "; ".join(p for p, _ in problems), hint="; ".join(f for _, f in problems)
            )

    # --- data ----------------------------------------------------------------------------------

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        """Fireworks reads OpenAI chat / DPO JSONL as it is (docs: managed fine-tuning)."""
        return export_prepared(
            records,
            cfg,
            progress,
            target="openai",
            train_out=out_dir / "train.fireworks.jsonl",
            validation_out=out_dir / "validation.fireworks.jsonl",
            title="convert to Fireworks JSONL",
        )

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        training, reused = self.upload_file(
            prepared.training, prepared.sha256, prepared.examples, cfg.method, progress
        )
        validation = None
        if prepared.validation is not None and prepared.validation_sha256 is not None:
            validation, v_reused = self.upload_file(
                prepared.validation,
                prepared.validation_sha256,
                _count_lines(prepared.validation),
                cfg.method,
                progress,
            )
            reused = reused and v_reused
        return UploadedData(training=training, validation=validation, reused=reused)

    def upload_file(
        self, path: Path, sha256: str, examples: int, method: str, progress: Progress
    ) -> tuple[str, bool]:
        """The dataset holding ``path`` (named by its SHA-256); uploaded unless it is there.

        Returns ``(dataset name, reused)`` once the dataset is READY."""
        ds_id = dataset_id(sha256)
        existing = self._get_or_none(lambda: self.client.datasets.get(ds_id))
        if existing is not None and existing.state == "READY":
            self._check_dataset(existing, path.name)
            progress.note(f"{path.name}: identical bytes already uploaded as {existing.name}")
            return str(existing.name), True
        if existing is None:
            spec: dict[str, Any] = {
                "display_name": f"tuneport {path.stem} {sha256[:12]}",
                "example_count": str(examples),
                "user_uploaded": {},
            }
            if method == "sft":
                spec["format"] = "CHAT"

            def create() -> Any:
                try:
                    return self.client.datasets.create(dataset_id=ds_id, dataset=spec)  # type: ignore[arg-type]
                except sdk().ConflictError:  # created by an attempt whose reply was lost
                    return self.client.datasets.get(ds_id)

            self._call(create)
        self._send(ds_id, path, progress)
        ready = self._wait_dataset(ds_id, path.name)
        return str(ready.name), False

    def _send(self, ds_id: str, path: Path, progress: Progress) -> None:
        size = path.stat().st_size
        progress.start(f"upload {path.name}", total=size)
        try:
            if size <= self.options.direct_upload_max:
                self._call(
                    lambda: self.client.datasets.upload(ds_id, file=path),
                    before_retry=lambda _exc: self._received(ds_id),
                )
            else:
                self._send_signed(ds_id, path, size)
            progress.advance(size)
        finally:
            progress.finish()

    def _received(self, ds_id: str) -> object | None:
        """Before re-sending bytes whose reply went wrong: the dataset if Fireworks has them
        already (no longer UPLOADING), else ``None`` (send again)."""
        try:
            dataset = self.client.datasets.get(ds_id)
        except Exception:  # unknown: sending the same bytes again is safe
            return None
        return dataset if dataset.state not in (None, "UPLOADING", "STATE_UNSPECIFIED") else None

    def _send_signed(self, ds_id: str, path: Path, size: int) -> None:
        """Large files: a signed URL per file (``getUploadEndpoint``), PUT without credentials,
        then ``validateUpload``."""
        import httpx

        reply = self._call(
            lambda: self.client.datasets.get_upload_endpoint(
                ds_id, filename_to_size={path.name: str(size)}
            )
        )
        url = (reply.filename_to_signed_urls or {}).get(path.name)
        if not url:
            raise ProviderError(
                f"Fireworks gave no upload URL for {path.name}", hint="run the command again"
            )

        def put() -> None:
            with path.open("rb") as fh:
                response = httpx.put(
                    url,
                    content=fh,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "X-Goog-Content-Length-Range": f"{size},{size}",
                    },
                    timeout=self.options.timeout,
                )
            response.raise_for_status()

        try:
            call_with_retry(
                put, policy=self._policy, sleep=self._sleep, where="Fireworks upload storage"
            )
        except httpx.HTTPStatusError as exc:
            raise ProviderError(
                f"the signed upload of {path.name} failed with HTTP {exc.response.status_code}",
                hint="run the command again (signed URLs last one hour)",
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                f"the signed upload of {path.name} failed: {one_line(redact(str(exc)), 200)}",
                hint="check the network and run the command again",
            ) from None
        self._call(lambda: self.client.datasets.validate_upload(ds_id, body={}))

    def _wait_dataset(self, ds_id: str, label: str) -> Any:
        deadline = self._clock() + self.options.dataset_timeout
        delay = min(2.0, default_interval())
        while True:
            dataset = self._call(lambda: self.client.datasets.get(ds_id))
            if dataset.state == "READY":
                self._check_dataset(dataset, label)
                return dataset
            if self._clock() > deadline:
                raise ProviderError(
                    f"Fireworks is still processing {label} ({dataset.name}, {dataset.state}) "
                    f"after {self.options.dataset_timeout:g} s",
                    hint="run the command again later (the upload is reused), or raise "
                    "--set dataset_timeout=SECONDS",
                )
            self._sleep(delay)
            delay = min(delay * 2, 15.0)

    @staticmethod
    def _check_dataset(dataset: Any, label: str) -> None:
        status = getattr(dataset, "status", None)
        code = str(getattr(status, "code", None) or "OK")
        if code not in ("OK", "0"):
            why = redact(one_line(str(getattr(status, "message", "") or code)))
            raise ProviderError(
                f"Fireworks refused {label}: {why}",
                hint="run `tuneport validate DATA --provider fireworks` and fix what it reports",
            )

    # --- jobs ----------------------------------------------------------------------------------

    def _jobs(self, collection: str) -> Any:
        return getattr(self.client, COLLECTIONS[collection])

    def _parse(self, remote_id: str) -> tuple[str, str]:
        """``(collection, job id)`` of a job name ``accounts/A/<collection>/<id>``."""
        parts = remote_id.split("/")
        if len(parts) == 4 and parts[2] in COLLECTIONS:
            return parts[2], parts[3]
        raise NotFoundError(
            f"{remote_id!r} is not a Fireworks fine-tuning job name",
            hint="expected accounts/ACCOUNT/supervisedFineTuningJobs/ID or .../dpoJobs/ID",
        )

    def _get_job(self, remote_id: str) -> Any:
        collection, short = self._parse(remote_id)
        job = self._call(lambda: self._jobs(collection).get(short))
        self._snapshot = (remote_id, self._clock(), job)
        return job

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        """Create the job under the id derived from ``run_id``; an existing one is returned."""
        self._model = cfg.model
        collection, _id_param, _ = METHODS[cfg.method]
        jid = job_id(run_id)
        jobs = self._jobs(collection)
        found = self._get_or_none(lambda: jobs.get(jid))
        if found is not None:
            self._check_owned(found, uploaded, jid)
            return JobRef(provider=NAME, remote_id=str(found.name), run_id=run_id)
        kwargs = self.job_kwargs(uploaded, cfg, run_id)

        def create() -> Any:
            try:
                return jobs.create(**kwargs)
            except sdk().ConflictError:  # an earlier attempt created it: that one
                return jobs.get(jid)

        def reconcile(_exc: BaseException) -> Any:
            with contextlib.suppress(Exception):
                return jobs.get(jid)
            return None

        job = self._call(create, before_retry=reconcile)
        self._check_owned(job, uploaded, jid)
        return JobRef(provider=NAME, remote_id=str(job.name), run_id=run_id)

    @staticmethod
    def _check_owned(job: Any, uploaded: UploadedData, jid: str) -> None:
        if str(job.dataset) != uploaded.training:
            raise ConfigError(
                f"Fireworks job {jid} exists but trains on {job.dataset}, not {uploaded.training}",
                hint="this run id was used for other data: launch it again with `tuneport train`",
            )

    def job_kwargs(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """Keyword arguments of ``supervised_fine_tuning_jobs.create`` / ``dpo_jobs.create``
        (see the README for the mapping)."""
        opts = self.options
        _collection, id_param, _ = METHODS[cfg.method]
        hyper: dict[str, Any] = {
            "base_model": cfg.model,
            "output_model": output_model_id(cfg, run_id),
            "epochs": cfg.epochs if cfg.epochs is not None else 1,
            "learning_rate": learning_rate(
                opts.learning_rate, cfg.learning_rate_multiplier, DEFAULT_LEARNING_RATE
            ),
            "lora_rank": opts.lora_rank,
            "max_context_length": opts.max_context_length,
            "batch_size_samples": cfg.batch_size,
            "learning_rate_warmup_steps": opts.learning_rate_warmup_steps,
            "gradient_accumulation_steps": opts.gradient_accumulation_steps,
        }
        hyper = {k: v for k, v in hyper.items() if v is not None}
        display = f"tuneport {cfg.suffix}" if cfg.suffix else "tuneport"
        kwargs: dict[str, Any] = {
            "dataset": uploaded.training,
            id_param: job_id(run_id),
            "display_name": display,
        }
        if cfg.method == "dpo":
            loss: dict[str, Any] = {"method": "DPO"}  # unset would mean GRPO (SDK docstring)
            if opts.dpo_beta is not None:
                loss["dpo"] = {"beta": opts.dpo_beta}
            kwargs.update(training_config=hyper, loss_config=loss)
            return kwargs
        kwargs.update(hyper)
        extra = {
            "evaluation_dataset": uploaded.validation,
            "early_stop": opts.early_stop,
            "eval_auto_carveout": opts.eval_auto_carveout,
        }
        kwargs.update({k: v for k, v in extra.items() if v is not None})
        return kwargs

    def status(self, job: JobRef) -> JobStatus:
        return self._status(self._get_job(job.remote_id))

    def _status(self, job: Any) -> JobStatus:
        raw_state = str(job.state or "JOB_STATE_UNSPECIFIED")
        state = STATES.get(raw_state, JobState.RUNNING)
        config = getattr(job, "training_config", None) or job
        output = getattr(config, "output_model", None)
        base = getattr(config, "base_model", None) or getattr(config, "warm_start_from", None)
        progress_info = getattr(job, "job_progress", None)
        percent = getattr(progress_info, "percent", None)
        error = None
        if raw_state == "JOB_STATE_EARLY_STOPPED" and not (
            output and self._get_or_none(lambda: self.client.models.get(_short(output)))
        ):  # what EARLY_STOPPED leaves is not documented: succeeded only with a model
            state = JobState.FAILED
        if state is JobState.FAILED:
            status = getattr(job, "status", None)
            error = redact(one_line(str(getattr(status, "message", "") or raw_state)))
        return JobStatus(
            remote_id=str(job.name),
            state=state,
            raw_state=raw_state,
            error=error,
            tuned_model=self._full_model(output)
            if output and state is JobState.SUCCEEDED
            else None,
            # Billed as-is (issue 19 asked: per epoch or all epochs?). The SDK (fireworks-ai
            # 1.2.30, fireworks/types/supervised_fine_tuning_job.py JobProgress, read
            # 2026-12-06) says only "Total number of input tokens processed." for inputTokens,
            # a progress structure shared with batch-inference and evaluation jobs whose `epoch`
            # is "the epoch for which the progress percent is reported"; docs.fireworks.ai says
            # fine-tuning is billed "per token of training data" without the epoch rule. Not
            # established either way, so not multiplied; the job's `estimatedCost` is
            # Fireworks' own figure.
            trained_tokens=getattr(progress_info, "input_tokens", None),
            epochs=getattr(config, "epochs", None),
            progress=percent / 100 if isinstance(percent, int | float) else None,
            model=base,
            created_at=as_datetime(getattr(job, "create_time", None)),
            raw=job.model_dump(mode="json"),
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Fireworks has no job event feed: one event per state (and progress) seen."""
        snap = self._snapshot
        fresh = snap is not None and snap[0] == job.remote_id
        if fresh and snap is not None and self._clock() - snap[1] <= SNAPSHOT_TTL:
            remote = snap[2]
        else:
            remote = self._get_job(job.remote_id)
        status = self._status(remote)
        percent = None if status.progress is None else round(status.progress * 100)
        event_id = f"{status.raw_state}:{percent if percent is not None else '-'}"
        if event_id == after:
            return
        words = status.raw_state.removeprefix("JOB_STATE_").replace("_", " ").lower()
        message = words + (f" ({percent}%)" if percent is not None else "")
        if status.error:
            message += f": {status.error}"
        yield JobEvent(
            id=event_id,
            created_at=as_datetime(getattr(remote, "update_time", None)),
            level="error" if status.state is JobState.FAILED else "info",
            message=message,
            data={"state": status.raw_state, "percent": percent},
        )

    def cancel(self, job: JobRef) -> None:
        collection, short = self._parse(job.remote_id)
        self._call(lambda: self._jobs(collection).cancel(short, body={}))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        def fetch() -> list[Any]:
            found: list[Any] = []
            for collection in COLLECTIONS:
                for i, item in enumerate(self._jobs(collection).list(page_size=min(limit, 200))):
                    if i >= limit:
                        break
                    found.append(item)
            return found

        jobs = self._call(fetch)
        jobs.sort(key=lambda j: str(getattr(j, "create_time", "")), reverse=True)
        return [self._status(j) for j in jobs[:limit]]

    # --- chat and deployments ---------------------------------------------------------------

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        """One reply from ``model``. A tuned model needs a deployment: with ``--set deploy=true``
        tuneport creates one (and waits until it is READY), else the error says what to do."""
        self._model = model
        target = model
        if self._deploys(model):
            target = f"{model}#{self.ensure_deployment(model)}"
        wire = [m.model_dump(mode="json", exclude_none=True, exclude={"weight"}) for m in messages]
        extra: dict[str, Any] = {}
        if options.temperature is not None:
            extra["temperature"] = options.temperature
        if options.max_tokens is not None:
            extra["max_tokens"] = options.max_tokens
        reply = self._call(
            lambda: self.client.chat.completions.create(model=target, messages=wire, **extra)  # type: ignore[arg-type]
        )
        choice = reply.choices[0] if reply.choices else None
        message = getattr(choice, "message", None)
        if message is None:
            raise ProviderError(f"{model} returned no reply", hint="try again")
        calls = [
            ToolCall.model_validate(c.model_dump(mode="json", include={"id", "type", "function"}))
            for c in getattr(message, "tool_calls", None) or []
        ]
        content = (
            message.content if isinstance(message.content, str | None) else str(message.content)
        )
        return Message(role="assistant", content=content, tool_calls=calls or None)

    def _deploys(self, model: str) -> bool:
        """Whether chatting with ``model`` goes through a deployment tuneport creates."""
        tuned = model.startswith("accounts/") and not model.startswith("accounts/fireworks/")
        return self.options.deploy and tuned and "#" not in model

    def hourly_resources(self, model: str) -> list[HourlyResource]:
        """The deployment ``chat --set deploy=true`` would create for ``model`` (none when it
        exists already or deploy is off): billed per GPU-second while it runs."""
        if not self._deploys(model):
            return []
        dep_id = deployment_id(model)
        if self._get_or_none(lambda: self.client.deployments.get(dep_id)) is not None:
            return []
        from tuneport.pricing.table import load_prices

        price = load_prices().unlisted(NAME, model, "sft")  # the provider's defaults
        return [
            HourlyResource(
                what=f"a Fireworks on-demand deployment {dep_id} serving {model}",
                per_hour_usd=price.deployment_per_hour,
                price_source=price.deployment_source or price.source,
                delete=f"`tuneport jobs cleanup JOB_ID` (or `firectl delete deployment {dep_id}`)",
            )
        ]

    def consent_hourly(self) -> None:
        """The user agreed to what :meth:`hourly_resources` listed (``chat``/``eval`` ask)."""
        self._hourly_consent = True

    def ensure_deployment(self, model: str) -> str:
        """The name of a READY deployment serving ``model`` (created by tuneport if needed)."""
        dep_id = deployment_id(model)
        deployments = self.client.deployments
        found = self._get_or_none(lambda: deployments.get(dep_id))
        if found is None:
            if not self._hourly_consent:
                raise ConfigError(
                    f"refusing to create the deployment {dep_id} (billed by the hour) without "
                    "consent",
                    hint="chat again and answer y, or pass --yes",
                )

            def create() -> Any:
                try:
                    return deployments.create(
                        base_model=model,
                        deployment_id=dep_id,
                        display_name=f"tuneport {_short(model)}"[:60],
                    )
                except sdk().ConflictError:
                    return deployments.get(dep_id)

            self._call(create)
        deadline = self._clock() + self.options.deploy_timeout
        delay = min(5.0, default_interval())
        while True:
            dep = self._call(lambda: deployments.get(dep_id))
            if dep.state == "READY":
                return str(dep.name)
            if dep.state in ("FAILED", "DELETING", "DELETED"):
                why = getattr(getattr(dep, "status", None), "message", None) or dep.state
                raise ProviderError(
                    f"the Fireworks deployment of {model} is {dep.state}: {redact(str(why))}",
                    hint="run `tuneport jobs cleanup JOB_ID` and try again",
                )
            if self._clock() > deadline:
                raise ProviderError(
                    f"the Fireworks deployment {dep.name} is still {dep.state} after "
                    f"{self.options.deploy_timeout:g} s (it keeps billing while it starts)",
                    hint="chat again later, or `tuneport jobs cleanup JOB_ID` to delete it",
                )
            self._sleep(delay)
            delay = min(delay * 2, 30.0)

    # --- cleanup ---------------------------------------------------------------------------

    def cleanup(self, job: JobRef, progress: Progress | None = None) -> list[str]:
        """Delete what keeps costing money: every deployment serving the tuned model (and its
        loaded LoRA addons); then the job's datasets, and with ``--set delete_job=true`` the
        job itself. The tuned model is kept. One line per thing deleted."""
        shown = (progress or NullProgress()).note
        removed: list[str] = []

        def note(what: str, done: str) -> None:
            removed.append(what)
            shown(done)

        try:
            remote = self._get_job(job.remote_id)
        except NotFoundError:  # deleted by an earlier cleanup (delete_job) or outside tuneport
            shown(f"job {job.remote_id} no longer exists at Fireworks: nothing to delete")
            return removed
        status = self._status(remote)
        if not status.state.terminal:
            raise ConfigError(
                f"job {job.remote_id} is still {status.raw_state}: its datasets are in use",
                hint="cancel it first (`tuneport jobs cancel ID`) or wait until it ends",
            )
        config = getattr(remote, "training_config", None) or remote
        output = getattr(config, "output_model", None)
        if output:
            model = self._full_model(output)
            for dep in self._call(lambda: list(self.client.deployments.list())):
                if dep.base_model == model and dep.name:
                    with contextlib.suppress(NotFoundError):
                        self._delete_deployment(_short(dep.name))
                        note(f"deployment {dep.name}", f"deleted deployment {dep.name}")
            for loaded in self._call(lambda: list(self.client.lora.list())):
                if getattr(loaded, "model", None) == model and loaded.name:
                    with contextlib.suppress(NotFoundError):
                        self._unload(_short(loaded.name))
                        on = getattr(loaded, "deployment", "?")
                        note(f"LoRA addon {model} on {on}", f"unloaded {model} from {on}")
        datasets = [remote.dataset, getattr(remote, "evaluation_dataset", None)]
        for name in [d for d in datasets if d]:
            with contextlib.suppress(NotFoundError):
                self._delete_dataset(_short(str(name)))
                note(f"dataset {name}", f"deleted dataset {name}")
        if self.options.delete_job:
            collection, short = self._parse(job.remote_id)
            with contextlib.suppress(NotFoundError):
                self._call(lambda: self._jobs(collection).delete(short))
                note(
                    f"job {job.remote_id} (the tuned model is kept)",
                    f"deleted job {job.remote_id} (the tuned model is kept)",
                )
        return removed

    def _delete_deployment(self, dep_id: str) -> None:
        self._call(lambda: self.client.deployments.delete(dep_id))

    def _unload(self, deployed_id: str) -> None:
        self._call(lambda: self.client.lora.unload(deployed_id))

    def _delete_dataset(self, ds_id: str) -> None:
        self._call(lambda: self.client.datasets.delete(ds_id))

    # --- ReturnsData: give a finished job's data back (`tuneport port`) ---------------------

    def source_job(self, ref: str) -> SourceJob:
        """The job ``ref`` (``accounts/A/supervisedFineTuningJobs/ID`` or ``.../dpoJobs/ID``)
        or the job that produced the tuned model ``ref`` (``accounts/A/models/ID``: its
        ``fineTuningJob``), with its datasets, method and settings (fireworks-ai 1.2.30
        ``SupervisedFineTuningJob`` / ``DpoJob``)."""
        name = ref if "Jobs/" in ref else self._job_of_model(ref)
        job = self._get_or_none(lambda: self._get_job(name))
        if job is None:
            raise NotFoundError(
                f"Fireworks account {self.account} holds no fine-tuning job {ref!r}",
                hint="see `tuneport jobs list --remote -p fireworks` for the jobs it holds",
            )
        status = self._status(job)
        config = getattr(job, "training_config", None) or job  # DPO: trainingConfig
        rate = getattr(config, "learning_rate", None)
        dpo = getattr(getattr(job, "loss_config", None), "dpo", None)
        return SourceJob(
            provider=NAME,
            remote_id=str(job.name),
            model=str(status.model or ""),
            tuned_model=status.tuned_model,
            state=status.state.value,
            method=self._method_of(job),
            hyperparameters={
                "epochs": getattr(config, "epochs", None),
                # as a multiplier of the default rate tuneport sends (DEFAULT_LEARNING_RATE)
                "learning_rate_multiplier": rate / DEFAULT_LEARNING_RATE if rate else None,
                "batch_size": getattr(config, "batch_size_samples", None),
                "lora_rank": getattr(config, "lora_rank", None),
                "beta": getattr(dpo, "beta", None),  # DPO jobs: lossConfig.dpo.beta
            },
            trained_tokens=status.trained_tokens,
            training=str(job.dataset),
            validation=getattr(job, "evaluation_dataset", None) or None,  # SFT only
            created_at=status.created_at.isoformat() if status.created_at else None,
        )

    def _job_of_model(self, model: str) -> str:
        found = self._get_or_none(lambda: self.client.models.get(_short(model)))
        job = getattr(found, "fine_tuning_job", None)
        if not job:
            raise NotFoundError(
                f"Fireworks account {self.account} holds no tuned model {model!r} made by a "
                "fine-tuning job",
                hint="pass the job name (accounts/ACCOUNT/supervisedFineTuningJobs/ID) instead",
            )
        return str(job)

    def _method_of(self, job: Any) -> str:
        """``sft`` for a supervised job; a DPO job's loss method (unset means GRPO, the SDK's
        ``ReinforcementLearningLossConfig`` docstring), ``dpo`` when it is DPO."""
        if self._parse(str(job.name))[0] == METHODS["sft"][0]:
            return "sft"
        method = getattr(getattr(job, "loss_config", None), "method", None)
        word = str(method or "GRPO").lower()
        return "grpo" if word == "method_unspecified" else word

    def download(self, ref: str, out: Path) -> None:
        """The bytes of dataset ``ref`` (``accounts/A/datasets/ID``) written to ``out``: its
        files through the signed URLs of ``getDownloadEndpoint``, in filename order."""
        import httpx

        reply = self._get_or_none(lambda: self.client.datasets.get_download_endpoint(_short(ref)))
        urls = dict(getattr(reply, "filename_to_signed_urls", None) or {})
        if not urls:
            raise NotFoundError(
                f"Fireworks account {self.account} no longer holds dataset {ref!r} (deleted?)",
                hint="port from a copy of the data instead: `tuneport train` with the file",
            )

        def get(url: str) -> bytes:
            response = httpx.get(url, timeout=self.options.timeout)
            response.raise_for_status()
            return response.content

        ended: bool | None = None  # whether the bytes written so far end a line
        with out.open("wb") as fh:
            for filename in sorted(urls):
                url = urls[filename]
                try:
                    blob = call_with_retry(
                        functools.partial(get, url),
                        policy=self._policy,
                        sleep=self._sleep,
                        where="Fireworks dataset storage",
                    )
                except (httpx.HTTPStatusError, httpx.TransportError) as exc:
                    why = one_line(redact(str(exc)), 200)
                    raise ProviderError(
                        f"the download of {filename} from dataset {ref} failed: {why}",
                        hint="run the command again (signed URLs last one hour)",
                    ) from None
                if ended is False:  # several files: each row on its own line
                    fh.write(b"\n")
                fh.write(blob)
                ended = not blob or blob.endswith(b"\n")


# --- the descriptor: everything tuneport knows about Fireworks, in one place -----------------

# Fireworks model ids of the priced models -> the Hugging Face repo of their tokenizer (used
# when it is in the local HF cache; never downloaded).
TOKENIZERS: dict[str, str] = {
    "llama-v3p1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-v3p1-70b-instruct": "meta-llama/Llama-3.1-70B-Instruct",
    "llama-v3p3-70b-instruct": "meta-llama/Llama-3.3-70B-Instruct",
    "qwen2p5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct",
    "qwen3-8b": "Qwen/Qwen3-8B",
}


def counter(model: str, settings: Mapping[str, Any]) -> TokenCounter:
    """The base model's own tokenizer and chat template when it is in the Hugging Face cache
    (what Fireworks bills with); otherwise the o200k approximation plus the chat template's
    tokens, labelled with its band (tuneport.tokens.templates)."""
    counted: TokenCounter = own_or_approx([model, TOKENIZERS.get(_short(model), "")])
    return counted


def config_warnings(cfg: JobConfig) -> list[str]:
    """Settings Fireworks fine-tuning has no use for (warned about once, never fatal)."""
    return ["seed ignored: Fireworks fine-tuning jobs take no seed"] if cfg.seed is not None else []


def system_first(ex: Example) -> Iterator[Finding]:
    """A system message is optional, but only as the first message."""
    for i, m in enumerate(ex.messages):
        if m.role == "system" and i > 0:
            yield Finding("system_position", f"messages[{i}] (system) is not the first message")


# docs.fireworks.ai/fine-tuning/fine-tuning-models (SFT: 3 to 3 million examples, OpenAI chat
# format, system only first, weight 0/1 on a message), /dpo-fine-tuning (DPO: input.messages +
# preferred_output / non_preferred_output, 3 to 3 million), /rft-parameters-reference (default
# max context 8,192; --set max_context_length raises it up to the model's limit). Read
# 2026-12-01.
RULES = Rules(
    provider=NAME,
    min_examples=3,
    recommended_examples=3,
    token_limit=DEFAULT_CONTEXT,
    token_limit_severity="warning",
    token_limit_note="over Fireworks' default max_context_length; raise it with "
    "--set max_context_length=N up to the model's limit",
    chat=(has_assistant, has_user, content_present, tool_links, arguments_json, system_first),
    preference=COMMON_PREFERENCE,
    source="docs.fireworks.ai/fine-tuning/fine-tuning-models, /dpo-fine-tuning (read 2026-12-01)",
)

BACKEND = Backend(
    name=NAME,
    title=TITLE,
    implementation="tuneport.providers.fireworks:FireworksProvider",
    target="openai",
    rules=RULES,
    counter=counter,
    model_prefixes=("accounts/",),
    env=("FIREWORKS_API_KEY", "FIREWORKS_ACCOUNT_ID", "FIREWORKS_BASE_URL"),
    secret_env=("FIREWORKS_API_KEY",),
    config_warnings=config_warnings,
    default_model="accounts/fireworks/models/llama-v3p1-8b-instruct",
    options=tuple(FireworksOptions.model_fields),
)
