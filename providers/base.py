"""What a backend is: its descriptor (:class:`Backend`), the :class:`Provider` Protocol it
implements, and the optional capabilities as Protocols.

Every backend module exports ONE :class:`Backend` object holding everything tuneport knows about
that provider: name, model-id prefixes, export target, validation rules, token counters, price
section, estimate extras and the import path of its implementation. The engine (data, tokens,
validation, pricing) takes those values as plain arguments and never imports this package; the
jobs layer and the CLI reach backends through :mod:`tuneport.providers.registry`.

Importing a backend module (and so its descriptor) must stay cheap: no SDK, no torch at module
level. The implementation class is imported by :meth:`Backend.provider` on first use.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tuneport.data.exporters import export_records
from tuneport.data.records import load_records
from tuneport.errors import ConfigError, InputError, NotFoundError, TuneportError, redact
from tuneport.pricing.estimate import BudgetFigure, Extras
from tuneport.pricing.table import ModelPrice
from tuneport.progress import Progress
from tuneport.schemas import (
    GENERIC_SETTINGS,
    AnyRecord,
    JobConfig,
    JobEvent,
    JobRecord,
    JobRef,
    JobStatus,
    Message,
)
from tuneport.tokens.counter import Counts, TokenCounter
from tuneport.validation.rules import Rules

# (model, settings) -> the offline counter for that model
CounterFactory = Callable[[str, Mapping[str, Any]], TokenCounter]
# (counts, cfg, price) -> what a backend adds to an estimate (local: steps, GPU memory)
ExtrasFactory = Callable[[Counts, JobConfig, ModelPrice], Extras]
# (model, settings) -> the price-table name of the model under those settings (Azure: the
# training tier); None: the model's own id
PriceModel = Callable[[str, Mapping[str, Any]], str]
# cfg -> warnings about settings the backend ignores (shown once, in the estimate)
ConfigWarnings = Callable[[JobConfig], list[str]]
# (path, counter) -> per-example counts through the one counting path (memoized by the caller)
Measure = Callable[[Path, TokenCounter], Counts]
# (cfg, counter, measure, per-example limit) -> the higher billed-token figure (per epoch) where
# the provider's sources disagree on what is billed, else None (Vertex: its older cost notebook)
BudgetRule = Callable[[JobConfig, TokenCounter, Measure, int | None], BudgetFigure | None]


def _no_warnings(cfg: JobConfig) -> list[str]:
    return []


@dataclass(frozen=True)
class Backend:
    """The descriptor of one backend: every fact tuneport knows about it, as values.

    ``implementation`` is ``"module:Class"``; the class takes the backend's settings as keyword
    arguments and satisfies :class:`Provider`. ``prices`` is a price-table section in the
    layout of ``prices.toml`` for backends whose prices are not in the built-in table (plugins).
    """

    name: str
    title: str  # e.g. "OpenAI", shown in help and errors
    implementation: str
    target: str  # export format written for upload: openai | vertex | local | ...
    rules: Rules
    counter: CounterFactory
    # the generic job settings (keys of tuneport.schemas.GENERIC_SETTINGS: epochs, batch_size,
    # seed, ...) this backend sends to the provider or applies itself; any other one a user sets
    # is reported once, in the estimate, as ignored by this backend
    uses: frozenset[str]
    model_prefixes: tuple[str, ...] = ()
    # one line shown once per command (e.g. a service wind-down); a function of the backend's
    # settings when its wording depends on them
    notice: str | Callable[[Mapping[str, Any]], str | None] | None = None
    env: tuple[str, ...] = ()  # environment variables the backend reads (for doctor/help)
    # environment variables holding credentials (the backend's or its SDK's): their values are
    # redacted from every message once the registry has loaded the descriptor
    secret_env: tuple[str, ...] = ()
    extras: ExtrasFactory | None = None
    config_warnings: ConfigWarnings = _no_warnings
    default_model: str | None = None  # for commands that need one model of this backend
    prices: Mapping[str, Any] | None = None
    options: Sequence[str] = field(default_factory=tuple)  # allowed --set keys (help only)
    budget_rule: BudgetRule | None = None
    # (settings) -> why a run on hardware the backend rents under those settings has no cost
    # figure (the cloud bills it), None on own hardware (the local backend's `--on sky`)
    rented: Callable[[Mapping[str, Any]], str | None] | None = None
    # whether ``cleanup`` deletes the job's uploaded files (which identical data of other jobs
    # may share: `tuneport jobs cleanup` warns first)
    cleanup_deletes_uploads: bool = False
    price_model: PriceModel | None = None  # settings that change the price (a training tier)
    # the generic job settings this backend has no use for -> why, shown after "--seed is
    # ignored by TITLE: " (built-in backends name every one they do not use)
    ignores: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # a misspelled setting would be warned about as ignored
        unknown = sorted((set(self.uses) | set(self.ignores)) - set(GENERIC_SETTINGS))
        both = sorted(set(self.uses) & set(self.ignores))
        if unknown or both:
            raise ValueError(
                f"backend {self.name!r}: "
                + "; ".join(
                    [
                        *([f"unknown generic settings {unknown}"] if unknown else []),
                        *([f"{both} both used and ignored"] if both else []),
                    ]
                )
                + f" (the generic settings: {', '.join(GENERIC_SETTINGS)})"
            )

    def price_name(self, model: str, settings: Mapping[str, Any] | None) -> str:
        """The price-table name of ``model`` under ``settings`` (its own id by default)."""
        return self.price_model(model, dict(settings or {})) if self.price_model else model

    def provider(self, settings: Mapping[str, Any] | None = None) -> Provider:
        """Build the implementation with ``settings`` (imports it on first use)."""
        module_name, _, attr = self.implementation.partition(":")
        factory: Callable[..., Provider] = getattr(importlib.import_module(module_name), attr)
        return factory(**dict(settings or {}))

    def notice_text(self, settings: Mapping[str, Any] | None = None) -> str | None:
        """The notice for a command run with ``settings`` (``None``: none)."""
        if callable(self.notice):
            return self.notice(dict(settings or {}))
        return self.notice

    def limit_for(self, model: str | None) -> int | None:
        """The per-example token limit of ``model`` (the rules' one source of it)."""
        return self.rules.limit_for(model)


class PreparedData(BaseModel):
    """Provider-format files written locally, ready to upload."""

    model_config = ConfigDict(extra="forbid")

    training: Path
    validation: Path | None = None
    sha256: str  # of the training file bytes
    validation_sha256: str | None = None
    examples: int
    # what the target could not carry, e.g. {"tool_calls": 12, "weight": 3}
    dropped: dict[str, int] = Field(default_factory=dict)


class UploadedData(BaseModel):
    """Where the provider can read the prepared files (file ids, gs:// URIs, local paths)."""

    model_config = ConfigDict(extra="forbid")

    training: str
    validation: str | None = None
    reused: bool = False  # identical bytes were already uploaded


class ChatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float | None = None
    max_tokens: int | None = None


CheckStatus = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    """One readiness check of a backend, as ``tuneport doctor`` shows it.

    ``status``: ``ok``; ``warn`` (works, with a caveat); ``fail`` (set up but unusable: the
    doctor exits 1); ``skip`` (not set up at all: a backend whose checks are all ``skip`` is
    "not configured" and does not fail the doctor). ``detail`` says what was found and must
    never hold a secret (name the variable, not its value); ``fix`` what to do.
    """

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None

    def __post_init__(self) -> None:  # a URL with a password in it is shown masked
        object.__setattr__(self, "detail", redact(self.detail))
        if self.fix is not None:
            object.__setattr__(self, "fix", redact(self.fix))


@runtime_checkable
class Provider(Protocol):
    """A fine-tuning backend. Implementations take their settings in the constructor."""

    name: str

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        """Export records to the provider's format under ``out_dir``."""
        ...

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        """Make the prepared files available to the provider; skip identical re-uploads."""
        ...

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        """Create the job. Idempotent on ``run_id``: never creates a second job for one run."""
        ...

    def status(self, job: JobRef) -> JobStatus: ...

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Events newer than ``after`` (an event id), oldest first."""
        ...

    def cancel(self, job: JobRef) -> None: ...

    def list_jobs(self, limit: int = 20) -> list[JobStatus]: ...

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        """One assistant reply from ``model`` (a tuned model id, endpoint or ``local:ID``)."""
        ...

    def cleanup(self, job: JobRef) -> list[str] | None:
        """Delete what keeps costing money or space (endpoints, deployed models, uploaded
        files); returns one line per thing deleted, naming the thing (``endpoint E``, ``uploaded
        training file F``: the CLI prints ``deleted <line>``; ``None``: the backend does not
        say)."""
        ...

    def preflight(self, cfg: JobConfig) -> None:
        """Check settings and credentials before the estimate prompt.

        ``tuneport train`` calls it first, so a missing key or a bad option fails before
        anything is priced, confirmed or uploaded. Raise
        :class:`~tuneport.errors.ConfigError` listing every problem at once (return when there
        is nothing to check)."""
        ...

    def doctor(self, timeout: float) -> list[Check]:
        """Readiness checks for ``tuneport doctor``.

        Check what a user would otherwise find out at launch: credentials present (never
        printed), the service reachable (each network call at most ``timeout`` seconds, any HTTP
        answer counts as reachable; a rejected key is ``fail``), required settings, installed
        packages and hardware. Start with the check that tells whether the backend is set up at
        all and return ``skip`` checks only when it is not; ``[]``: nothing to check."""
        ...


@runtime_checkable
class StreamingChat(Protocol):
    """Optional capability: a chat reply as it is generated (``tuneport chat`` prints the
    pieces at once). Yields the reply's text in order; errors are TuneportErrors as for
    :meth:`Provider.chat`."""

    def chat_stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> Iterator[str]: ...


@dataclass(frozen=True)
class HourlyResource:
    """Something a command is about to start that bills by the hour (a deployment, a dedicated
    endpoint) whatever it is used for: said before it starts, with consent as for `train`."""

    what: str  # e.g. "a Fireworks on-demand deployment tp-... serving MODEL"
    per_hour_usd: float | None  # None: the price per hour is not known
    price_source: str  # where the figure (or the way it is billed) comes from
    delete: str  # how to delete it, e.g. "`tuneport jobs cleanup JOB_ID`"


@runtime_checkable
class StartsHourly(Protocol):
    """Optional capability: chatting may start something billed by the hour (a deployment).

    ``hourly_resources`` lists what chatting with ``model`` would start with the backend's
    settings (empty when nothing would); the caller shows it and asks (``--yes`` or y/N), then
    calls ``consent_hourly``. A backend may refuse to start anything without that consent."""

    def hourly_resources(self, model: str) -> list[HourlyResource]: ...

    def consent_hourly(self) -> None: ...


@runtime_checkable
class Resumable(Protocol):
    """Optional capability: continue a stopped job from its last checkpoint (local backend)."""

    def resume(self, job: JobRef) -> JobRef: ...


@runtime_checkable
class Pausable(Protocol):
    """Optional capability: pause a running job and resume it later, keeping its progress
    (Azure OpenAI). ``resume`` (:class:`Resumable`) returns the same job."""

    def pause(self, job: JobRef) -> None: ...

    def is_paused(self, status: JobStatus) -> bool:
        """``status`` is a pause: the job stays where it is until resumed (watch stops)."""
        ...


@runtime_checkable
class FindsRuns(Protocol):
    """Optional capability: find the job created for a run id (OpenAI metadata, Vertex labels,
    a local run folder). ``None`` when the provider holds none. The jobs layer asks before any
    create of a run a crashed attempt may have created, and for records left ``creating``."""

    def find_run(self, run_id: str) -> str | None: ...


@runtime_checkable
class Exportable(Protocol):
    """Optional capability: write the tuned weights somewhere (local backend: merged weights)."""

    def export(self, job: JobRef, out: Path, *, merge: bool) -> Path: ...


@runtime_checkable
class OnlineCounting(Protocol):
    """Optional capability: exact token counts from the provider's own API (``--online``)."""

    def online_counter(self, model: str) -> TokenCounter: ...


class Checkpoint(BaseModel):
    """One intermediate model a job saved (OpenAI checkpoints, local adapter checkpoints)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    step: int
    model: str | None = None  # a model id usable for chat, when the provider offers one
    metrics: dict[str, float] = Field(default_factory=dict)


@runtime_checkable
class HasCheckpoints(Protocol):
    """Optional capability: list a job's checkpoints (shown by ``tuneport jobs show``)."""

    def checkpoints(self, job: JobRef) -> list[Checkpoint]: ...


@runtime_checkable
class ConcurrencyLimited(Protocol):
    """Optional capability: at most ``max_concurrency`` chat calls at once to the backend, over
    all its models (``eval`` honours it; local: one reply at a time on the machine's GPU)."""

    max_concurrency: int


@runtime_checkable
class UploadIndex(Protocol):
    """Where backends remember uploads by content (the job store implements it), so identical
    bytes are never uploaded twice. Injected by the jobs layer as the ``uploads`` setting."""

    def upload_get(self, provider: str, sha256: str) -> str | None: ...

    def upload_put(
        self,
        provider: str,
        sha256: str,
        remote_id: str,
        *,
        filename: str | None = None,
        size: int | None = None,
    ) -> None: ...

    def upload_forget(self, provider: str, remote_id: str) -> None: ...


@runtime_checkable
class JobLookup(Protocol):
    """Reads a job record by tuneport job id (the job store; NotFoundError if unknown)."""

    def get(self, job_id: str) -> JobRecord: ...


class MemoryUploads(UploadIndex):
    """An :class:`UploadIndex` that lives as long as the backend object (no job store given):
    backends still find an earlier upload by its content-derived name at the provider."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}

    def upload_get(self, provider: str, sha256: str) -> str | None:
        return self._ids.get((provider, sha256))

    def upload_put(self, provider: str, sha256: str, remote_id: str, **_: object) -> None:
        """Remembers the id alone (the file's name and size: see :class:`UploadIndex`)."""
        self._ids[(provider, sha256)] = remote_id

    def upload_forget(self, provider: str, remote_id: str) -> None:
        self._ids = {k: v for k, v in self._ids.items() if v != remote_id}


OptionsT = TypeVar("OptionsT", bound=BaseModel)

MAX_WAIT_S = 86_400.0
"""The longest timeout a setting may ask for (one day): larger values (``1e400`` is infinity)
overflow the socket layer's timer."""


def parse_options(model: type[OptionsT], settings: Mapping[str, Any], provider: str) -> OptionsT:
    """Validate a backend's keyword settings with its ``extra="forbid"`` options model.

    Every problem is reported at once in a :class:`~tuneport.errors.ConfigError` that lists the
    allowed keys, e.g. ``unknown option 'bucket' for provider openai (allowed: api_key, ...)``.
    """
    try:
        return model.model_validate(dict(settings))
    except ValidationError as exc:
        allowed = ", ".join(sorted(model.model_fields))
        problems = []
        unknown: list[str] = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "options"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown option {key!r}")
                unknown.append(key)
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"option {key!r}: {message}")
        keys = ", ".join(k for k in (str(e["loc"][0]) for e in exc.errors() if e["loc"]))
        raise ConfigError(
            f"{'; '.join(problems)} for provider {provider}",
            hint=f"allowed options: {allowed} (set them with --set key=value)"
            if unknown
            else f"change {keys or 'the value'} (--set key=value, or `options:` in the job file)",
        ) from None


def create_once(
    call: Callable[..., str],
    create: Callable[[], str],
    find: Callable[[], str | None],
    reconcile: Callable[[BaseException], str | None],
) -> str:
    """The remote id from ``create`` run through the backend's retried ``call``, made at most
    once per intended run: ``reconcile`` looks the run up before any retry, and after a last
    error whose outcome is unknown (a lost or unreadable reply) ``find`` looks again before
    giving up; the original error stands when that lookup fails too."""
    try:
        return call(create, before_retry=reconcile)
    except TuneportError as exc:
        if not exc.outcome_unknown:
            raise
        try:  # the last reply was lost or unreadable: did the service create the job?
            found = find()
        except TuneportError:
            raise exc from None
        if found is None:
            raise
        return found


def base_url_override(option: str | None, env: str) -> str | None:
    """The base URL a user set for a backend (the ``base_url`` setting, else ``$env``) as
    given, or ``None``. A value that is not an http(s) URL with a host is a one-line
    ConfigError naming where it came from (the SDKs would fail on it with a traceback)."""
    url = option or os.environ.get(env)
    if not url:
        return None
    import httpx

    source = "the base_url setting" if option else env
    try:
        parsed = httpx.URL(str(url))
        valid = parsed.scheme in ("http", "https") and bool(parsed.host)
    except (httpx.InvalidURL, ValueError, TypeError):
        valid = False
    if not valid:
        raise ConfigError(
            f"{source} {str(url)!r} is not an http(s) URL with a host",
            hint=f"set it to e.g. https://host[:port] (or unset {env} for the service's own)",
        )
    return str(url)


# --- shared steps the backends compose (one place for what every backend does alike) ---------


def export_prepared(
    records: Iterable[AnyRecord],
    cfg: JobConfig,
    progress: Progress,
    out_dir: Path,
    *,
    target: str,
    title: str,
    ext: str | None = None,
) -> PreparedData:
    """Export the records (and ``cfg.validation``) in ``target``'s format for upload, as
    ``out_dir/train.<ext>`` (and ``out_dir/validation.<ext>``); ``ext`` is ``<target>.jsonl``
    unless given."""
    ext = ext or f"{target}.jsonl"
    train_out, validation_out = out_dir / f"train.{ext}", out_dir / f"validation.{ext}"
    out_dir.mkdir(parents=True, exist_ok=True)
    progress.start(title)
    train = export_records(records, target, train_out, force=True, method=cfg.method)
    validation = None
    if cfg.validation is not None:
        validation = export_records(
            load_records(cfg.validation), target, validation_out, force=True, method=cfg.method
        )
    progress.finish()
    if train.examples == 0:
        raise InputError("the training data has no examples", hint="check the data file")
    return PreparedData(
        training=train.path,
        validation=validation.path if validation else None,
        sha256=train.sha256,
        validation_sha256=validation.sha256 if validation else None,
        examples=train.examples,
        dropped=dict(train.dropped),
    )


def oversized(prepared: PreparedData, most: float) -> tuple[Path, int] | None:
    """The first prepared file (training, then validation) over ``most`` bytes, with its size."""
    for path in (prepared.training, prepared.validation):
        if path is not None and (size := path.stat().st_size) > most:
            return path, size
    return None


# --- tuneport port: a finished job's data and settings, given back --------------------------


class SourceJob(BaseModel):
    """A finished tuning job as its provider describes it (what ``tuneport port`` moves).

    ``method`` is ``sft`` or ``dpo``, or the provider's own word for a method tuneport cannot
    move (e.g. OpenAI ``reinforcement``). ``hyperparameters`` holds ``epochs``,
    ``learning_rate_multiplier``, ``batch_size`` and ``beta`` as the job reports them (``None``
    where the provider chose: "auto"). ``training`` / ``validation`` are references that
    :meth:`ReturnsData.download` understands (file ids, gs:// URIs, paths).
    """

    model_config = ConfigDict(extra="forbid")

    provider: str
    remote_id: str
    model: str  # the base model
    tuned_model: str | None = None
    state: str
    method: str
    trained_tokens: int | None = None  # what the provider billed, where it says
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    training: str
    validation: str | None = None
    created_at: str | None = None  # ISO 8601


class StatusFields(TypedDict):
    """What a :class:`SourceJob` takes from the job's :class:`JobStatus`."""

    tuned_model: str | None
    state: str
    created_at: str | None


def status_fields(status: JobStatus) -> StatusFields:
    """The tuned model, state and creation time of a port source job, from its status."""
    created = status.created_at
    return {
        "tuned_model": status.tuned_model,
        "state": status.state.value,
        "created_at": created.isoformat() if created else None,
    }


def no_source_job(
    where: str, ref: str, provider: str, what: str = "fine-tuning job"
) -> NotFoundError:
    """The error of a ``source_job(ref)`` that ``where`` (the provider's account, project or
    endpoint, in words) does not hold."""
    return NotFoundError(
        f"{where} holds no {what} {ref!r}",
        hint=f"see `tuneport jobs list --remote -p {provider}` for the jobs it holds",
    )


@runtime_checkable
class ReturnsData(Protocol):
    """Optional capability: give a finished job's training data and settings back.

    ``source_job(ref)`` takes the provider's job id or the tuned model id it produced (a
    NotFoundError naming ``ref`` when the provider holds neither); ``download(ref, out)``
    writes one of the job's files byte for byte to ``out`` (NotFoundError when the provider
    deleted it)."""

    def source_job(self, ref: str) -> SourceJob: ...

    def download(self, ref: str, out: Path) -> None: ...


@runtime_checkable
class KnowsShutdowns(Protocol):
    """Optional capability: the day each model stops working, as the provider's own model list
    says (OpenAI ``/v1/models`` objects may carry ``shutdown_date``); models it gives no date
    for are left out."""

    def shutdown_dates(self) -> dict[str, str]: ...
