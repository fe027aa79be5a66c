"""Together AI fine-tuning backend (official ``together`` SDK, extra ``tuneport[together]``).

Everything tuneport knows about Together lives here: the descriptor (:data:`BACKEND`: rules,
counter, estimate extras) and the implementation (:class:`TogetherProvider`). The SDK is imported
inside the implementation only, so importing the CLI or this descriptor never imports it.

Facts this module relies on (together==3.1.1 source, docs.together.ai; see the README section):

* the SDK's paths start with ``/v1``: a base URL (``TOGETHER_BASE_URL``, ``--set base_url``) is
  the bare host, ``https://api.together.ai``; with ``/v1`` every call would 404;
* the SDK retries 408/409/429/5xx and lost connections twice by default and sends no
  idempotency key, so a lost create reply would become a second paid job. The client is built
  with ``max_retries=0``; :mod:`tuneport.retry` (tenacity) owns retries, and before re-sending a
  create whose outcome is unknown the backend looks the run up again;
* jobs carry no metadata and take no client id: the run is found again by listing jobs and
  matching the job suffix, which ends with ``tp`` + 10 hex digits of the SHA-256 of the run id
  (:func:`run_tag`), and the base model;
* uploads go through Together's checksum/presigned flow: identical bytes are never sent twice
  (the job store remembers them by SHA-256, and Together answers 409 with the existing file for
  a checksum it knows). A lost reply can leave an empty file registered under the checksum; it
  is deleted and the bytes sent once;
* a 200 reply whose body is not JSON raises a bare ``json.JSONDecodeError`` from the SDK: it is
  retried like a lost reply, then reported as a :class:`~tuneport.errors.ProviderError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tuneport.data.exporters import export_records
from tuneport.data.records import read_records
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
from tuneport.pricing.estimate import Extras
from tuneport.pricing.table import ModelPrice
from tuneport.progress import NullProgress, Progress
from tuneport.providers.base import (
    MAX_WAIT_S,
    Backend,
    ChatOptions,
    Check,
    Checkpoint,
    MemoryUploads,
    PreparedData,
    SourceJob,
    UploadedData,
    UploadIndex,
    export_prepared,
    parse_options,
)
from tuneport.providers.errormap import ErrorRule, one_line
from tuneport.providers.sdk import (
    Service,
    as_datetime,
    download_file,
    import_sdk,
    learning_rate,
)
from tuneport.retry import (
    RetryPolicy,
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
    PreferenceExample,
    ToolCall,
)
from tuneport.tokens import cache
from tuneport.tokens.approx import ScaledTextCounter
from tuneport.tokens.counter import Counts, TokenCounter, uses_tools
from tuneport.tokens.hf import own_or_approx
from tuneport.validation.rules import (
    COMMON_PREFERENCE,
    Finding,
    Rules,
    arguments_json,
    content_present,
    has_assistant,
    has_user,
    no_parallel,
    pref_no_parallel,
    tool_links,
)

if TYPE_CHECKING:
    from together import Together
    from together.types import FileResponse, FinetuneModelLimits

T = TypeVar("T")

NAME = "together"
TITLE = "Together AI"
INSTALL_HINT = "pip install 'tuneport[together]'"
DEFAULT_BASE_URL = "https://api.together.ai"
DEFAULT_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
KEY_URL = "https://api.together.ai/settings/api-keys"
DEFAULT_LEARNING_RATE = 1e-5  # fine_tuning.create() default (together/resources/fine_tuning.py)
MAX_SUFFIX = 40  # create() docstring: "Up to 40 character suffix"
TAG_PREFIX = "tp"
TAG_HEX = 10

# raw job status -> normalized state (together/lib/types/fine_tuning.py FinetuneJobStatus;
# `user_error` is missing from the generated Literal and the OpenAPI spec but sent by the API:
# together-python commit 94ffb30, "Add new error type", 2024-06-12)
STATES: dict[str, JobState] = {
    "pending": JobState.QUEUED,
    "queued": JobState.QUEUED,
    "running": JobState.RUNNING,
    "compressing": JobState.RUNNING,
    "uploading": JobState.RUNNING,
    "cancel_requested": JobState.RUNNING,
    "cancelled": JobState.CANCELLED,
    "error": JobState.FAILED,
    "user_error": JobState.FAILED,
    "completed": JobState.SUCCEEDED,
}
FILE_DONE = "COMPLETED"
FILE_UNSTARTED = "PENDING"  # stored, validation not asked for (the SDK's preprocess call)
FILE_BROKEN = frozenset({"FAILED", "INVALID_FORMAT"})
EVENT_LEVELS: dict[str, str] = {
    "info": "info",
    "warning": "warning",
    "error": "error",
    "legacy_info": "info",
    "legacy_iwarning": "warning",
    "legacy_ierror": "error",
}
LOSS_KEYS = ("train_loss", "loss")


NANODOLLARS = 1_000_000_000  # FinetuneResponse.total_price unit (together/lib/utils/tools.py)


def _dollars(total_price: object) -> float | None:
    """Together's ``total_price`` (an integer of nano-dollars) in USD; ``None`` until known."""
    if isinstance(total_price, bool) or not isinstance(total_price, int) or total_price <= 0:
        return None
    return total_price / NANODOLLARS


class TogetherOptions(BaseModel):
    """Settings of the Together backend (``--set key=value`` or ``options:`` in a job file)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None  # default: $TOGETHER_API_KEY
    base_url: str | None = None  # default: $TOGETHER_BASE_URL, else https://api.together.ai
    timeout: float = Field(default=120.0, gt=0, le=MAX_WAIT_S)
    max_attempts: int = Field(default=5, ge=1, le=20)
    learning_rate: float | None = Field(default=None, gt=0)  # absolute; wins over the multiplier
    lora: bool = True  # false: full fine-tuning (billed at the higher full rate)
    lora_r: int | None = Field(default=None, ge=1)
    lora_alpha: int | None = Field(default=None, ge=1)
    lora_dropout: float | None = Field(default=None, ge=0, lt=1)
    lora_trainable_modules: str | None = None  # e.g. "all-linear" (the SDK default)
    n_checkpoints: int | None = Field(default=None, ge=1)
    n_evals: int | None = Field(default=None, ge=0)  # evaluations on the validation file
    warmup_ratio: float | None = Field(default=None, ge=0, le=1)
    max_seq_length: int | None = Field(default=None, ge=1)
    train_on_inputs: bool | Literal["auto"] | None = None  # SFT only
    dpo_beta: float | None = Field(default=None, gt=0)  # DPO only
    # wait for an upload's validation
    processing_timeout: float = Field(default=1800.0, gt=0, le=MAX_WAIT_S)


# --- the service and its errors (data-driven) --------------------------------------------


# docs.together.ai/docs/fine-tuning/quickstart (2026): tuned models are served from dedicated
# endpoints ("Unable to access non-serverless model", 400 model_not_available); an endpoint that
# exists but is stopped answers 400 dedicated_endpoint_not_running.
ENDPOINT_HINT = (
    "start a dedicated endpoint for it at https://api.together.ai/models/{model} (or `tg beta "
    "endpoints deploy` with the job's model object id), chat again, and stop the endpoint when "
    "done: it bills per minute"
)
ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        ProviderError,
        "the dedicated endpoint serving {model} is stopped",
        "start it again at https://api.together.ai/models/{model}, chat again, and stop it when "
        "done: it bills per minute while it runs",
        status=frozenset({400, 403, 404}),
        codes=frozenset({"dedicated_endpoint_not_running"}),
        contains=("deployments are stopped", "endpoint is not running"),
    ),
    ErrorRule(
        ProviderError,
        "Together serves {model} only from a dedicated endpoint, and none is running",
        ENDPOINT_HINT,
        status=frozenset({400, 403, 404}),
        codes=frozenset({"model_not_available"}),
        contains=("non-serverless", "dedicated endpoint"),
    ),
    ErrorRule(
        AuthError,
        "Together rejected the API key (or the account has no credit left): {msg}",
        f"set TOGETHER_API_KEY to a valid key ({KEY_URL}) and check the account's billing",
        status=frozenset({401}),
    ),
    ErrorRule(
        AuthError,
        "Together denied access: {msg}",
        "check that the key's project may fine-tune (TOGETHER_PROJECT_ID)",
        status=frozenset({403}),
    ),
    ErrorRule(
        QuotaError,
        "Together credit limit reached: {msg}",
        "add credits at https://api.together.ai/settings/billing",
        status=frozenset({402}),
    ),
    ErrorRule(
        QuotaError,
        "Together rate limit still hit after retries: {msg}",
        "wait a few minutes and run the command again",
        status=frozenset({429}),
    ),
    ErrorRule(
        NotFoundError,
        "model {model} cannot be fine-tuned on Together: {msg}",
        "pick a model from https://docs.together.ai/docs/fine-tuning-models",
        status=frozenset({400, 404}),
        codes=frozenset({"model_not_found", "invalid_model"}),
        contains=("not available for fine-tuning", "not supported for fine-tuning"),
    ),
    ErrorRule(
        ProviderError,
        "Together refused the training file: {msg}",
        "run `tuneport validate DATA --provider together` and fix what it reports",
        status=frozenset({400, 422}),
        codes=frozenset({"invalid_file", "invalid_file_format"}),
    ),
    ErrorRule(
        NotFoundError,
        "Together: not found: {msg}",
        "check the id (see `tuneport jobs list`)",
        status=frozenset({404}),
    ),
    ErrorRule(
        ProviderError,
        "Together server error {status} (still failing after retries): {msg}",
        "retry later; see https://status.together.ai",
        status=frozenset(range(500, 600)),
    ),
    ErrorRule(
        ProviderError,
        "Together refused the request ({status}): {msg}",
        "check the flags, the --set options and the job file",
    ),
)


API = Service(
    title="Together",
    module="together",
    key_env="TOGETHER_API_KEY",
    url_env="TOGETHER_BASE_URL",
    default_url=DEFAULT_BASE_URL,
    key_url=KEY_URL,
    rules=ERROR_RULES,
    url_hint="(the bare host, no /v1)",
    status_url="https://status.together.ai",
)


def map_error(exc: BaseException, *, model: str = "", base_url: str = "") -> TuneportError:
    """One-line tuneport error for an SDK error (never leaking the API key)."""
    return API.map_error(exc, base_url=base_url, model=model or "MODEL")


def sdk() -> Any:
    """The ``together`` module, or a one-line ConfigError naming the extra to install."""
    return import_sdk("together", "Together", "together", INSTALL_HINT)


def event_level(level: object) -> str:
    """tuneport's level of a job event. The SDK's own enum sends ``Info``/``Warning``/``Error``
    (capitalised; the OpenAPI spec lists lowercase names), older jobs the ``legacy_*`` ones: the
    lookup ignores case, so an error event is never shown as info."""
    return EVENT_LEVELS.get(str(level or "info").lower(), "info")


def run_tag(run_id: str) -> str:
    """The tag that finds a run again: ``tp`` + 10 hex digits of SHA-256(run id).

    It ends the job suffix (Together keeps no metadata and takes no client id)."""
    return TAG_PREFIX + hashlib.sha256(run_id.encode()).hexdigest()[:TAG_HEX]


def job_suffix(cfg: JobConfig, run_id: str) -> str:
    """``<--suffix>-<tag>`` (or the tag alone): the user's suffix plus the run tag."""
    tag = run_tag(run_id)
    return f"{cfg.suffix}-{tag}" if cfg.suffix else tag


MAX_USER_SUFFIX = MAX_SUFFIX - len(TAG_PREFIX) - TAG_HEX - 1


def _train_on_inputs(options: TogetherOptions) -> bool | str:
    """The SFT ``train_on_inputs`` value: the option, else ``"auto"`` (the SDK's default,
    stated so the SDK logs no warning)."""
    return "auto" if options.train_on_inputs is None else options.train_on_inputs


def _event_id(event: Any) -> str:
    """A stable id for an event (the API gives none): a digest of what it says."""
    key = json.dumps(
        [str(event.created_at), str(event.type), event.message, event.step], sort_keys=True
    )
    return "ev-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _loss(metrics: Mapping[str, float] | None) -> float | None:
    for key in LOSS_KEYS:
        value = (metrics or {}).get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def scale_to_total(counts: Sequence[int], total: int) -> list[int]:
    """``counts`` scaled so they sum to ``total`` exactly (largest remainders get the rest)."""
    if not counts:
        return []
    base = sum(counts)
    weights = list(counts) if base > 0 else [1] * len(counts)
    base = sum(weights)
    shares = [w * total / base for w in weights]
    out = [int(s) for s in shares]
    rest = total - sum(out)
    order = sorted(range(len(shares)), key=lambda i: shares[i] - out[i], reverse=True)
    for i in order[:rest]:
        out[i] += 1
    return out


@dataclass(frozen=True)
class ServerQuote:
    """What Together's ``estimate-price`` said for one epoch of a file (no evaluations)."""

    tokens: int  # estimated_train_token_count
    price_usd: float  # estimated_total_price
    allowed: bool | None  # allowed_to_proceed
    user_limit: float | None


@dataclass
class QuotedCounts(Counts):
    """Counts whose total comes from Together's ``estimate-price`` (``--online``)."""

    quote: ServerQuote | None = None


# --- the provider -----------------------------------------------------------------------------


class TogetherProvider:
    """Fine-tune and chat through the Together AI API."""

    name = NAME

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        store: UploadIndex | None = None,
        client: Together | None = None,
        **settings: Any,
    ) -> None:
        self.options = parse_options(TogetherOptions, settings, NAME)
        if self.options.api_key is not None:
            register_secret(self.options.api_key.get_secret_value())
        register_secret(os.environ.get("TOGETHER_API_KEY"))
        self._sleep = sleep
        self._clock = clock
        self._store = store
        self._client = client
        self._policy = RetryPolicy(attempts=self.options.max_attempts)
        self._limits: dict[str, FinetuneModelLimits] = {}
        self._model = ""

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return API.base_url(self.options.base_url)

    @property
    def store_key(self) -> str:
        """Provider key of the uploads index: file ids are only valid on one server."""
        return API.store_key(NAME, self.base_url)

    def _api_key(self) -> str | None:
        return API.api_key(self.options.api_key)

    def _settings_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if not self._api_key():
            problems.append(API.key_problem())
        url = self._url_problem()
        if url:
            problems.append(url)
        return problems

    def _url_problem(self) -> tuple[str, str] | None:
        if not self.base_url.endswith("/v1"):
            return None
        return (
            f"the Together base URL {self.base_url} ends with /v1",
            "give the bare host (e.g. https://api.together.ai): the SDK adds /v1",
        )

    @property
    def client(self) -> Together:
        if self._client is None:
            problems = self._settings_problems()
            if problems:
                raise ConfigError(
                    "; ".join(p for p, _ in problems), hint="; ".join(f for _, f in problems)
                )
            made: Together = sdk().Together(
                api_key=self._api_key(),
                base_url=API.url_override(self.options.base_url),  # None: the SDK's own hosts
                timeout=self.options.timeout,
                max_retries=0,  # tenacity (tuneport.retry) owns retries
            )
            self._client = made
        return self._client

    def _uploads(self) -> UploadIndex:
        if self._store is None:
            self._store = MemoryUploads()
        return self._store

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
            values={"model": self._model or "MODEL"},
            before_retry=before_retry,
        )

    def doctor(self, timeout: float) -> list[Check]:
        """Key set (never shown), SDK installed, base URL without ``/v1``, and one GET of the
        default model's tuning limits: the server is reachable and accepts the key."""
        key_check = API.key_check(self.options.api_key)
        if key_check.status == "skip":
            return [key_check]
        checks = [key_check]
        try:
            version = getattr(sdk(), "__version__", "?")
        except ConfigError as exc:
            checks.append(Check("SDK", "fail", exc.message, exc.hint))
        else:
            checks.append(Check("SDK", "ok", f"together {version}"))
        url = self._url_problem()
        if url:
            checks.append(Check("base URL", "fail", *url))
            return checks
        checks.append(
            API.probe(
                f"{self.base_url}/v1/fine-tunes/models/limits",
                str(self._api_key()),
                timeout,
                params={"model_name": DEFAULT_MODEL},
                what=f"key accepted (limits of {DEFAULT_MODEL})",
            )
        )
        return checks

    def model_limits(self, model: str) -> FinetuneModelLimits:
        """Together's limits for tuning ``model`` (context, batch sizes, ranks, epochs)."""
        if model not in self._limits:
            self._model = model
            self._limits[model] = self._call(
                lambda: self.client.fine_tuning.model_limits(model_name=model)
            )
        return self._limits[model]

    # --- preflight -----------------------------------------------------------------------------

    def preflight(self, cfg: JobConfig) -> None:
        """Key present, settings valid and within the model's limits, all reported at once.

        Asks Together for the model's limits (one GET) when the key is there, so an untunable
        model or an out-of-range setting fails before anything is priced or uploaded."""
        problems = self._settings_problems()
        opts = self.options
        if cfg.suffix is not None and len(cfg.suffix) > MAX_USER_SUFFIX:
            problems.append(
                (
                    f"suffix is {len(cfg.suffix)} characters; Together allows {MAX_SUFFIX}, "
                    f"{MAX_SUFFIX - MAX_USER_SUFFIX} of which tuneport uses for the run tag",
                    f"shorten --suffix to {MAX_USER_SUFFIX} characters",
                )
            )
        if opts.dpo_beta is not None and cfg.method != "dpo":
            problems.append(("dpo_beta applies to --method dpo only", "drop dpo_beta"))
        if opts.train_on_inputs is not None and cfg.method != "sft":
            problems.append(("train_on_inputs applies to --method sft only", "drop it"))
        if opts.n_evals and cfg.validation is None:
            problems.append(("n_evals needs a validation file", "pass --validation FILE"))
        lora_set = [
            k
            for k in ("lora_r", "lora_alpha", "lora_dropout", "lora_trainable_modules")
            if getattr(opts, k) is not None
        ]
        if not opts.lora and lora_set:
            problems.append(
                (f"{', '.join(lora_set)} set with lora=false", "drop them or set lora=true")
            )
        if not problems:
            problems += self._limit_problems(cfg)
        if problems:
            raise ConfigError(
                "; ".join(p for p, _ in problems), hint="; ".join(f for _, f in problems)
            )

    def _limit_problems(self, cfg: JobConfig) -> list[tuple[str, str]]:
        limits = self.model_limits(cfg.model)
        opts = self.options
        problems: list[tuple[str, str]] = []

        def out_of(name: str, value: float | None, low: float | None, high: float | None) -> None:
            if value is None:
                return
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
                problems.append(
                    (
                        f"{name} {value:g} is outside {cfg.model}'s range {span}",
                        f"choose {name} within the range Together gives for the model",
                    )
                )

        out_of("epochs", cfg.epochs, 1, limits.max_num_epochs)
        out_of("n_evals", opts.n_evals, 0, limits.max_num_evals)
        out_of("n_checkpoints", opts.n_checkpoints, 1, limits.max_num_checkpoints)
        rate = learning_rate(
            opts.learning_rate, cfg.learning_rate_multiplier, DEFAULT_LEARNING_RATE
        )
        out_of("learning_rate", rate, limits.min_learning_rate, limits.max_learning_rate)
        seq_max = limits.max_seq_length_dpo if cfg.method == "dpo" else limits.max_seq_length_sft
        out_of("max_seq_length", opts.max_seq_length, limits.min_max_seq_length, seq_max)
        training = limits.lora_training if opts.lora else limits.full_training
        if training is None:
            kind = "LoRA" if opts.lora else "full fine-tuning"
            problems.append((f"{cfg.model} does not support {kind} on Together", "switch lora"))
            return problems
        top = training.max_batch_size_dpo if cfg.method == "dpo" else training.max_batch_size
        out_of("batch_size", cfg.batch_size, training.min_batch_size, top)
        if opts.lora and limits.lora_training is not None:
            out_of("lora_r", opts.lora_r, 1, limits.lora_training.max_rank)
        return problems

    # --- data ----------------------------------------------------------------------------------

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        """Together reads the OpenAI chat / preference JSONL layout without OpenAI's
        ``parallel_tool_calls`` (docs: data preparation, function calling)."""
        return export_prepared(
            records,
            cfg,
            progress,
            target=BACKEND.target,
            train_out=out_dir / "train.together.jsonl",
            validation_out=out_dir / "validation.together.jsonl",
            title="convert to Together JSONL",
        )

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        training, reused = self.upload_file(prepared.training, prepared.sha256, progress)
        validation = None
        if prepared.validation is not None and prepared.validation_sha256 is not None:
            validation, v_reused = self.upload_file(
                prepared.validation, prepared.validation_sha256, progress
            )
            reused = reused and v_reused
        return UploadedData(training=training, validation=validation, reused=reused)

    def upload_file(self, path: Path, sha256: str, progress: Progress) -> tuple[str, bool]:
        """Upload ``path`` unless identical bytes are there already; ``(file id, reused)``.

        Waits until Together has validated the file (``processing_status`` COMPLETED)."""
        size = path.stat().st_size
        index = self._uploads()
        cached = index.upload_get(self.store_key, sha256)
        if cached is not None:
            remote = self._file_or_none(cached)
            if (
                remote is not None
                and remote.bytes == size
                and remote.processing_status not in (FILE_BROKEN)
            ):
                progress.note(f"{path.name}: identical bytes already uploaded as {cached}")
                done = self._processed(remote, path.name, started=False)
                return done.id, True
            index.upload_forget(self.store_key, cached)

        remote, existed = self._send(path, size, progress)
        if existed and (remote.bytes != size or remote.processing_status in FILE_BROKEN):
            # a lost reply left an empty (or broken) file under this checksum: replace it
            stale = remote.id
            with contextlib.suppress(NotFoundError):
                self._call(lambda: self.client.files.delete(stale))
            remote, existed = self._send(path, size, progress)
        if existed:
            progress.note(f"{path.name}: identical bytes already uploaded as {remote.id}")
        done = self._processed(remote, path.name, started=not existed)
        index.upload_put(self.store_key, sha256, done.id, filename=path.name, size=size)
        return done.id, existed

    def _send(self, path: Path, size: int, progress: Progress) -> tuple[FileResponse, bool]:
        from together.lib.resources.files import FileAlreadyExistsError
        from together.lib.types.error import FileTypeError

        def send() -> tuple[FileResponse, bool]:
            sent = [0]

            def advance(event: Any) -> None:
                done = int(getattr(event, "uploaded_bytes", 0))
                progress.advance(max(0, done - sent[0]))
                sent[0] = max(sent[0], done)

            progress.start(f"upload {path.name}", total=size)
            try:
                return (
                    self.client.files.upload(
                        file=path,
                        purpose="fine-tune",
                        check=True,
                        raise_if_already_exists=True,
                        progress_callback=advance,
                    ),
                    False,
                )
            except FileAlreadyExistsError as exc:  # same checksum known: that file
                return self.client.files.retrieve(exc.file_id), True
            except FileTypeError as exc:  # the SDK's local file check
                raise ProviderError(
                    f"the together SDK refused {path.name}: {one_line(str(exc), 200)}",
                    hint="run `tuneport validate DATA --provider together`",
                ) from None
            finally:
                progress.finish()

        return self._call(send)

    def _file_or_none(self, file_id: str) -> FileResponse | None:
        try:
            return self._call(lambda: self.client.files.retrieve(file_id))
        except NotFoundError:
            return None

    def _processed(self, remote: FileResponse, label: str, *, started: bool) -> FileResponse:
        """``remote`` once Together validated it; ProviderError if it refused the file.

        A file found again by its checksum (``started`` false) whose validation never began
        (its bytes went up but the reply was lost before the SDK's preprocess call) is sent to
        validation once, instead of waiting for a validation nobody asked for."""
        if not started and remote.processing_status == FILE_UNSTARTED:
            file_id = remote.id
            remote = self._call(
                lambda: self.client.post(
                    f"/v1/files/{file_id}/preprocess", cast_to=sdk().types.FileResponse
                )
            )
        deadline = self._clock() + self.options.processing_timeout
        delay = min(2.0, default_interval())
        while remote.processing_status not in (FILE_DONE, None):
            if remote.processing_status in FILE_BROKEN:
                report = remote.validation_report
                why = (report.error if report is not None else None) or "no reason given"
                raise ProviderError(
                    f"Together refused {label} ({remote.processing_status}): {redact(why)}",
                    hint="run `tuneport validate DATA --provider together` and fix what it reports",
                )
            if self._clock() > deadline:
                raise ProviderError(
                    f"Together is still validating {label} ({remote.id}) after "
                    f"{self.options.processing_timeout:g} s",
                    hint="run the command again later (the upload is reused), or raise "
                    "--set processing_timeout=SECONDS",
                )
            self._sleep(delay)
            delay = min(delay * 2, 15.0)
            remote = self._retrieve_file(remote.id)
        return remote

    def _retrieve_file(self, file_id: str) -> FileResponse:
        return self._call(lambda: self.client.files.retrieve(file_id))

    # --- jobs ----------------------------------------------------------------------------------

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        """Create the job once per ``run_id``: look it up first, and again before any retry."""
        self._model = cfg.model
        found = self.find_run(run_id, cfg.model)
        if found is not None:
            return JobRef(provider=NAME, remote_id=found, run_id=run_id)
        kwargs = self.job_kwargs(uploaded, cfg, run_id)
        limits = self.model_limits(cfg.model)

        def create() -> str:
            try:
                job = self.client.fine_tuning.create(**kwargs, model_limits=limits)
            except ValueError as exc:  # the SDK's own checks (batch size, ranges)
                if isinstance(exc, json.JSONDecodeError):
                    raise
                raise ConfigError(
                    f"the together SDK refused the job settings: {one_line(str(exc), 300)}",
                    hint="fix the flags or --set options",
                ) from None
            if getattr(job, "id", None):
                return str(job.id)
            found = self.find_run(run_id, cfg.model)  # e.g. a reply of {}: the job may exist
            if found is None:
                raise API.unreadable("the job create")
            return found

        def reconcile(_exc: BaseException) -> str | None:
            # the failed attempt may have created the job: never create a second paid one
            return self.find_run(run_id, cfg.model)

        remote_id = self._call(create, before_retry=reconcile)
        return JobRef(provider=NAME, remote_id=remote_id, run_id=run_id)

    def job_kwargs(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """Keyword arguments of ``client.fine_tuning.create`` for ``cfg`` (see the README for
        the mapping)."""
        opts = self.options
        kwargs: dict[str, Any] = {
            "training_file": uploaded.training,
            "model": cfg.model,
            "n_epochs": cfg.epochs if cfg.epochs is not None else 1,
            "batch_size": cfg.batch_size if cfg.batch_size is not None else "max",
            "suffix": job_suffix(cfg, run_id),
            "training_method": cfg.method,
            "lora": opts.lora,
        }
        optional: dict[str, Any] = {
            "validation_file": uploaded.validation,
            "learning_rate": learning_rate(
                opts.learning_rate, cfg.learning_rate_multiplier, DEFAULT_LEARNING_RATE
            ),
            "random_seed": cfg.seed,
            "n_checkpoints": opts.n_checkpoints,
            "n_evals": opts.n_evals,
            "warmup_ratio": opts.warmup_ratio,
            "max_seq_length": opts.max_seq_length,
            "train_on_inputs": _train_on_inputs(opts) if cfg.method == "sft" else None,
            "dpo_beta": opts.dpo_beta,
        }
        if opts.lora:
            optional.update(
                lora_r=opts.lora_r,
                lora_alpha=opts.lora_alpha,
                lora_dropout=opts.lora_dropout,
                lora_trainable_modules=opts.lora_trainable_modules,
            )
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return kwargs

    def find_run(self, run_id: str, model: str | None = None) -> str | None:
        """The id of the job whose suffix ends with the tag of ``run_id`` (for ``model`` when
        given), if Together has one: the :class:`~tuneport.providers.base.FindsRuns` capability."""
        tag = run_tag(run_id)

        def search() -> str | None:
            for job in self.client.fine_tuning.list().data:
                suffix = job.suffix or ""
                output = job.x_model_output_name or ""
                if (model is None or job.model == model) and (
                    suffix.endswith(tag) or f"-{tag}-" in output
                ):
                    return str(job.id)
            return None

        return self._call(search)

    def status(self, job: JobRef) -> JobStatus:
        return self._status(self._call(lambda: self.client.fine_tuning.retrieve(job.remote_id)))

    @staticmethod
    def _status(job: Any) -> JobStatus:
        raw_state = str(job.status)
        state = STATES.get(raw_state, JobState.RUNNING)
        error = None
        if state is JobState.FAILED:
            errors = [
                e for e in getattr(job, "events", None) or [] if event_level(e.level) == "error"
            ]
            reason = errors[-1].message if errors else f"the job ended with status {raw_state}"
            error = redact(one_line(reason))
        epochs = job.n_epochs
        done = getattr(job, "epochs_completed", None)
        progress = None
        if isinstance(epochs, int) and epochs > 0 and isinstance(done, int):
            progress = min(1.0, done / epochs)
        return JobStatus(
            remote_id=str(job.id),
            state=state,
            raw_state=raw_state,
            error=error,
            tuned_model=job.x_model_output_name if state is JobState.SUCCEEDED else None,
            # Billed as-is (issue 19 asked: per epoch or all epochs?). Together's pricing page
            # (docs.together.ai/docs/fine-tuning/pricing, read 2026-12-06) bills
            # n_epochs x tokens_per_training_dataset + n_evals x tokens_per_validation_dataset
            # and says the "final token count and price" appear in fine_tuning.retrieve once
            # tokenization completes, but not which of the two `token_count` holds. The SDK
            # (together 3.1.1) documents the job's field only as "Count of tokens processed"
            # (together/lib/types/fine_tuning.py) and the event's as "dataset token count";
            # recorded at tokenization, before any epoch runs, it may well be one epoch's count.
            # Not established either way: left unmultiplied, and the cost after the job comes
            # from the job's own `total_price` (nano-dollars: together/lib/utils/tools.py
            # finetune_price_to_dollars), which is what Together bills, epochs included.
            trained_tokens=job.token_count,
            billed_usd=_dollars(getattr(job, "total_price", None)),
            epochs=epochs,
            progress=progress,
            model=job.model,
            created_at=as_datetime(job.created_at),
            raw=job.model_dump(mode="json", exclude={"events"}),
        )

    def _metrics(self, job: JobRef) -> dict[int, dict[str, float]]:
        """Training metrics by global step (``list_metrics``)."""
        reply = self._call(lambda: self.client.fine_tuning.list_metrics(job.remote_id))
        by_step: dict[int, dict[str, float]] = {}
        for row in reply.metrics or []:
            step = row.get("global_step", row.get("step"))
            if isinstance(step, int | float):
                by_step[int(step)] = {k: float(v) for k, v in row.items()}
        return by_step

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Events newer than ``after``, oldest first, with the loss of their step attached."""
        items = list(self._call(lambda: self.client.fine_tuning.list_events(job.remote_id)).data)
        items.sort(key=lambda e: str(e.created_at))
        ids = [_event_id(e) for e in items]
        start = ids.index(after) + 1 if after in ids else 0
        fresh = list(zip(ids[start:], items[start:], strict=True))
        metrics = self._metrics(job) if any(e.step is not None for _, e in fresh) else {}
        for event_id, item in fresh:
            step = item.step
            data = {
                k: v
                for k, v in item.model_dump(mode="json", exclude={"message", "object"}).items()
                if v is not None
            }
            yield JobEvent(
                id=event_id,
                created_at=as_datetime(item.created_at),
                level=event_level(item.level),
                message=redact(item.message),
                step=step,
                loss=_loss(metrics.get(step)) if step is not None else None,
                data=data,
            )

    def checkpoints(self, job: JobRef) -> list[Checkpoint]:
        """Intermediate checkpoints as ``JOB:STEP`` (usable as ``from_checkpoint``), the final
        one as the tuned model, each with the metrics logged at its step."""
        page = self._call(lambda: self.client.fine_tuning.list_checkpoints(job.remote_id))
        if not page.data:
            return []
        metrics = self._metrics(job)
        final_model: str | None = None
        found = []
        for c in page.data:
            intermediate = "intermediate" in c.checkpoint_type.lower()
            if not intermediate and final_model is None:
                final_model = self.status(job).tuned_model or ""
            found.append(
                Checkpoint(
                    id=f"{job.remote_id}:{c.step}" if intermediate else job.remote_id,
                    step=c.step,
                    model=None if intermediate else (final_model or None),
                    metrics={
                        k: v for k, v in metrics.get(c.step, {}).items() if k != "global_step"
                    },
                )
            )
        return sorted(found, key=lambda c: (c.step, c.model is not None))  # final last

    def cancel(self, job: JobRef) -> None:
        self._call(lambda: self.client.fine_tuning.cancel(job.remote_id))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        jobs = list(self._call(lambda: self.client.fine_tuning.list()).data)
        jobs.sort(key=lambda j: str(j.created_at), reverse=True)
        return [self._status(j) for j in jobs[:limit]]

    # --- chat ------------------------------------------------------------------------------

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        """One reply from ``model``: a base model, or a tuned model from a dedicated endpoint
        you started (Together's current docs serve tuned models only that way)."""
        self._model = model
        wire = [m.model_dump(mode="json", exclude_none=True, exclude={"weight"}) for m in messages]
        extra: dict[str, Any] = {}
        if options.temperature is not None:
            extra["temperature"] = options.temperature
        if options.max_tokens is not None:
            extra["max_tokens"] = options.max_tokens
        reply = self._call(
            lambda: self.client.chat.completions.create(model=model, messages=wire, **extra)  # type: ignore[arg-type]
        )
        message = reply.choices[0].message if reply.choices else None
        if message is None:
            raise ProviderError(f"{model} returned no reply", hint="try again")
        calls = [
            ToolCall.model_validate(c.model_dump(mode="json", include={"id", "type", "function"}))
            for c in message.tool_calls or []
        ]
        return Message(role="assistant", content=message.content, tool_calls=calls or None)

    # --- cleanup ---------------------------------------------------------------------------

    def cleanup(self, job: JobRef, progress: Progress | None = None) -> list[str]:
        """Delete the job's uploaded files; one line per file deleted. The tuned model costs
        nothing while no endpoint serves it; tuneport starts no Together endpoints (stop any
        you started yourself)."""
        shown = (progress or NullProgress()).note
        removed: list[str] = []
        remote = self._call(lambda: self.client.fine_tuning.retrieve(job.remote_id))
        if not STATES.get(str(remote.status), JobState.RUNNING).terminal:
            raise ConfigError(
                f"job {job.remote_id} is still {remote.status}: its files are in use",
                hint="cancel it first (`tuneport jobs cancel ID`) or wait until it ends",
            )
        for file_id in (remote.training_file, remote.validation_file):
            if not file_id:
                continue
            with contextlib.suppress(NotFoundError):  # already gone is fine
                self._delete_file(file_id)
                removed.append(f"uploaded file {file_id}")
                shown(f"deleted file {file_id}")
            self._uploads().upload_forget(self.store_key, file_id)
        return removed

    def _delete_file(self, file_id: str) -> None:
        self._call(lambda: self.client.files.delete(file_id))

    # --- online counting (estimate --online) ---------------------------------------------------

    def online_counter(self, model: str) -> TogetherPriceCounter:
        """Counts from Together's own ``estimate-price`` (server tokenizer and chat template)."""
        return TogetherPriceCounter(self, model)

    def quote_records(self, records: Sequence[AnyRecord], model: str) -> ServerQuote:
        """Upload ``records`` as Together would train on them (identical bytes are reused by
        ``train``) and ask ``estimate-price`` for one epoch."""
        if not records:
            raise ProviderError("nothing to estimate: the file has no examples")
        self._model = model
        method = "dpo" if all(isinstance(r, PreferenceExample) for r in records) else "sft"
        with tempfile.TemporaryDirectory(prefix="tuneport-together-") as tmp:
            out = Path(tmp) / "estimate.together.jsonl"
            exported = export_records(records, BACKEND.target, out, force=True, method=method)
            file_id, _ = self.upload_file(out, exported.sha256, NullProgress())
        limits = self.model_limits(model)
        rank = self.options.lora_r or (
            limits.lora_training.default_rank if limits.lora_training else 8
        )
        training_type: dict[str, Any] = (
            {"type": "Lora", "lora_r": rank, "lora_alpha": self.options.lora_alpha or 2 * rank}
            if self.options.lora
            else {"type": "Full"}
        )
        training_method: dict[str, Any] = (
            {"method": "sft", "train_on_inputs": _train_on_inputs(self.options)}
            if method == "sft"
            else {"method": "dpo"}
        )
        reply = self._call(
            lambda: self.client.fine_tuning.estimate_price(
                training_file=file_id,
                model=model,
                n_epochs=1,
                n_evals=0,
                training_method=training_method,  # type: ignore[arg-type]
                training_type=training_type,  # type: ignore[arg-type]
            )
        )
        if not getattr(reply, "estimation_available", False):
            reason = getattr(reply, "unavailable_reason", None) or "no reason given"
            raise ProviderError(
                f"Together gives no price estimate for this file ({reason})",
                hint="run `tuneport validate DATA --provider together`, or drop --online",
            )
        available: Any = reply
        return ServerQuote(
            tokens=int(available.estimated_train_token_count or 0),
            price_usd=float(available.estimated_total_price or 0.0),
            allowed=available.allowed_to_proceed,
            user_limit=available.user_limit,
        )

    # --- ReturnsData: give a finished job's data back (`tuneport port`) ---------------------

    def source_job(self, ref: str) -> SourceJob:
        """The job ``ref`` (``ft-...``) or the job whose output model is ``ref``, with its
        files, method and settings (``FinetuneResponse``, together 3.1 types)."""
        job: Any = None
        if ref.startswith("ft-"):
            with contextlib.suppress(NotFoundError):
                job = self._call(lambda: self.client.fine_tuning.retrieve(ref))
        else:
            jobs = self._call(lambda: self.client.fine_tuning.list()).data
            job = next((j for j in jobs if j.x_model_output_name == ref), None)
        if job is None:
            raise NotFoundError(
                f"Together at {self.base_url} holds no fine-tuning job {ref!r}",
                hint="see `tuneport jobs list --remote -p together` for the jobs it holds",
            )
        status = self._status(job)
        method = getattr(job.training_method, "method", None) or "sft"
        rate = job.learning_rate
        return SourceJob(
            provider=NAME,
            remote_id=str(job.id),
            model=str(job.model),
            tuned_model=status.tuned_model,
            state=status.state.value,
            method=str(method),
            hyperparameters={
                "epochs": job.n_epochs,
                # as a multiplier of Together's documented default rate
                "learning_rate_multiplier": rate / DEFAULT_LEARNING_RATE if rate else None,
                "batch_size": job.batch_size if isinstance(job.batch_size, int) else None,
            },
            trained_tokens=job.token_count,
            training=str(job.training_file),
            validation=job.validation_file or None,
            created_at=status.created_at.isoformat() if status.created_at else None,
        )

    def download(self, ref: str, out: Path) -> None:
        """The bytes of uploaded file ``ref`` (``GET /v1/files/{id}/content``) at ``out``."""
        read = partial(self._call, lambda: self.client.files.content(ref))
        download_file(read, out, title="Together", base_url=self.base_url, ref=ref)


class TogetherPriceCounter:
    """``estimate --online``: the file's training tokens as Together's ``estimate-price``
    counts them (the base model's tokenizer and chat template, on the server).

    The total is Together's; per-example figures (used for the per-example limit) are the
    offline counts scaled to that total. ``count_text`` is the offline count."""

    exact = True
    error_band: float | None = None

    def __init__(self, provider: TogetherProvider, model: str) -> None:
        self.provider = provider
        self.model = model
        self.offline = counter(model, {})
        self.label = online_label(model)

    def count_file(self, path: Path, fmt: str | None) -> QuotedCounts:
        counts = QuotedCounts()
        records: list[AnyRecord] = []
        offline: list[int] = []
        for row in read_records(path, fmt):
            if row.record is None:
                counts.skipped.append(row.line)
                continue
            records.append(row.record)
            offline.append(self.offline.count(row.record))
            counts.lines.append(row.line)
            counts.tool_examples += uses_tools(row.record)
        before = path.stat()
        quote = self.provider.quote_records(records, self.model)
        counts.tokens.extend(scale_to_total(offline, quote.tokens))
        counts.quote = quote
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            cache.save(path, online_spec(self.model), counts)  # for `train` on this file
        return counts

    def count(self, record: Example | PreferenceExample) -> int:
        return self.provider.quote_records([record], self.model).tokens

    def count_text(self, text: str) -> int:
        return self.offline.count_text(text)


# --- the descriptor: everything tuneport knows about Together, in one place ------------------

# Together ids of the priced models -> the Hugging Face repo of their tokenizer (used when it is
# in the local HF cache; never downloaded).
TOKENIZERS: dict[str, str] = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference": "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference": "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct-Reference": "meta-llama/Llama-3.3-70B-Instruct",
}
SERVING_SUFFIXES = ("-Reference", "-Turbo")


def tokenizer_ids(model: str) -> list[str]:
    """Hugging Face ids that may hold ``model``'s tokenizer, most specific first."""
    ids = [model]
    if model in TOKENIZERS:
        ids.append(TOKENIZERS[model])
    for suffix in SERVING_SUFFIXES:
        if model.endswith(suffix):
            ids.append(model.removesuffix(suffix))
    return list(dict.fromkeys(ids))


def counter(model: str, settings: Mapping[str, Any]) -> TokenCounter:
    """The base model's own tokenizer and chat template when it is in the Hugging Face cache
    (or ``model`` is a local folder): what Together bills with. Otherwise the o200k
    approximation plus the chat template's tokens, labelled with its band (one label per
    template family, so `plan` counts the file once for each). ``estimate --online`` asks
    Together itself, and its count of a file is remembered (the count cache) for ``train`` and
    ``estimate`` of the same unchanged file."""
    counted: TokenCounter = own_or_approx(tokenizer_ids(model))
    if isinstance(counted, ScaledTextCounter):  # `train` after `estimate --online`: exact
        counted.remembered = cache.Remembered(online_spec(model), online_label(model))
    return counted


def online_spec(model: str) -> tuple[str, ...]:
    """The count cache's key of Together's own count (``estimate --online``) of a file."""
    return ("together-estimate-price", model)


def online_label(model: str) -> str:
    return f"Together estimate-price ({model})"


def estimate_extras(counts: Counts, cfg: JobConfig, price: ModelPrice) -> Extras:
    """Together's own quote (``--online``) and what the table's LoRA rate leaves out."""
    warnings: list[str] = []
    notes: list[str] = []
    options = cfg.options
    if isinstance(counts, QuotedCounts) and counts.quote is not None:
        quote = counts.quote
        epochs = price.resolve_epochs(counts.examples, cfg.epochs)
        rate = quote.price_usd / quote.tokens * 1e6 if quote.tokens else None
        text = (
            f"Together's own estimate (estimate-price): ${quote.price_usd * epochs:,.4f} for "
            f"{quote.tokens * epochs:,} tokens ({epochs} epoch{'s' if epochs != 1 else ''})"
        )
        if rate is not None:
            text += f", i.e. ${rate:,.2f}/1M"
        notes.append(text)
        if quote.allowed is False:
            limit = f" (${quote.user_limit:,.2f})" if quote.user_limit is not None else ""
            warnings.append(f"Together says this job exceeds your credit limit{limit}")
    if options.get("lora") in (False, "false", "False", 0):
        warnings.append(
            "full fine-tuning (lora=false) is billed above the LoRA rate the estimate uses; "
            "see https://www.together.ai/pricing or pass --online"
        )
    if options.get("n_evals"):
        warnings.append(
            f"n_evals={options['n_evals']}: Together also bills n_evals x the validation "
            "file's tokens, which the estimate leaves out"
        )
    return Extras(warnings=warnings, notes=notes)


def together_roles(ex: Example) -> Iterator[Finding]:
    """Start with system or user; user and assistant alternate (tool results in between)."""
    last = ""
    for i, m in enumerate(ex.messages):
        where = f"messages[{i}] ({m.role})"
        if m.role == "system":
            if i > 0:
                yield Finding("system_position", f"{where} after the conversation began")
            continue
        if m.role == "tool":
            last = "tool"  # results of the assistant's calls; the assistant may answer next
            continue
        if not last and m.role != "user":
            yield Finding("role_order", f"{where}: the conversation must start with a user turn")
        elif m.role == last:
            yield Finding("role_order", f"{where}: two {m.role} turns in a row")
        last = m.role


# docs.together.ai/docs/fine-tuning/data-preparation (conversational: system|user|assistant,
# start with system or user, alternate; weight 0/1 on any message; function calling: tools +
# tool_calls + tool role; preference: input.messages + one preferred/non-preferred assistant
# message; columns: messages + tools, preference: input{messages, tools} + outputs, so OpenAI's
# parallel_tool_calls is flagged as not carried), SDK together/lib/constants.py (MIN_SAMPLES = 1,
# JSONL_REQUIRED_COLUMNS_MAP, JSONL_EXTRA_COLUMNS_MAP). Context per model ("Context Length
# (SFT)", LoRA) from docs.together.ai/docs/fine-tuning-models (read 2026-12-01); other models:
# Together's own limit applies (checked by `train` through model limits, and longer examples
# are truncated to max_seq_length).
RULES = Rules(
    provider=NAME,
    min_examples=1,
    recommended_examples=1,
    token_limit=None,
    token_limit_severity="warning",
    token_limit_note="Together truncates them to the model's max_seq_length",
    chat=(
        has_assistant,
        has_user,
        content_present,
        tool_links,
        arguments_json,
        together_roles,
        no_parallel,
    ),
    preference=(*COMMON_PREFERENCE, pref_no_parallel),
    model_limits={
        "moonshotai/Kimi-K2": 65_536,
        "zai-org/GLM-4.6": 128_000,
        "zai-org/GLM-4.7": 128_000,
        "openai/gpt-oss-20b": 16_384,
        "openai/gpt-oss-120b": 16_384,
        "deepseek-ai/DeepSeek-R1": 131_072,
    },
    source="docs.together.ai/docs/fine-tuning/data-preparation, /fine-tuning-models "
    "(read 2026-12-01)",
)

BACKEND = Backend(
    name=NAME,
    title=TITLE,
    implementation="tuneport.providers.together:TogetherProvider",
    target="together",
    rules=RULES,
    counter=counter,
    # job_kwargs: validation_file, n_epochs, learning_rate (x the multiplier), batch_size,
    # suffix, random_seed
    uses=frozenset(
        {"validation", "epochs", "learning_rate_multiplier", "batch_size", "suffix", "seed"}
    ),
    env=("TOGETHER_API_KEY", "TOGETHER_BASE_URL", "TOGETHER_PROJECT_ID"),
    secret_env=("TOGETHER_API_KEY",),
    extras=estimate_extras,
    default_model=DEFAULT_MODEL,
    options=tuple(TogetherOptions.model_fields),
)
