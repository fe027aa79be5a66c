"""The Provider Protocol every backend implements, plus shared types.

A provider difference is data or lives in that provider's module, never an
``if provider == ...`` elsewhere. Backends are looked up through :mod:`tuneport.providers.registry`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tuneport.counting import TokenCounter
from tuneport.errors import ConfigError
from tuneport.progress import Progress
from tuneport.schemas import (
    Estimate,
    Example,
    JobConfig,
    JobEvent,
    JobRef,
    JobStatus,
    Message,
    PreferenceExample,
)

AnyRecord = Example | PreferenceExample


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


@runtime_checkable
class Provider(Protocol):
    """A fine-tuning backend. Implementations take their settings in the constructor."""

    name: str

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        """Export records to the provider's format under ``out_dir``."""
        ...

    def estimate(self, records: Sequence[AnyRecord], cfg: JobConfig) -> Estimate:
        """Tokens, epochs and cost before launch."""
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

    def cleanup(self, job: JobRef) -> None:
        """Delete what keeps costing money (endpoints, deployed models, uploaded files)."""
        ...


@runtime_checkable
class Resumable(Protocol):
    """Optional capability: continue a stopped job from its last checkpoint (local backend)."""

    def resume(self, job: JobRef) -> JobRef: ...


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


OptionsT = TypeVar("OptionsT", bound=BaseModel)


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
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "options"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown option {key!r}")
            else:
                problems.append(f"option {key!r}: {err['msg']}")
        raise ConfigError(
            f"{'; '.join(problems)} for provider {provider}",
            hint=f"allowed options: {allowed} (set them with --set key=value)",
        ) from None


@runtime_checkable
class Preflight(Protocol):
    """Optional capability: check settings and credentials before the estimate prompt.

    ``tuneport train`` calls it first, so a missing key or a bad option fails before anything
    is priced, confirmed or uploaded. Raise :class:`~tuneport.errors.ConfigError` listing every
    problem at once.
    """

    def preflight(self, cfg: JobConfig) -> None: ...


# --- shared steps the backends compose (one place for what every backend does alike) ---------


def export_prepared(
    records: Iterable[AnyRecord],
    cfg: JobConfig,
    progress: Progress,
    *,
    target: str,
    train_out: Path,
    validation_out: Path,
    title: str,
) -> PreparedData:
    """Export the records (and ``cfg.validation``) in ``target``'s format for upload."""
    from tuneport.data import export_records, load_records
    from tuneport.errors import InputError

    train_out.parent.mkdir(parents=True, exist_ok=True)
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


def estimate_with_validation(records: Sequence[AnyRecord], cfg: JobConfig) -> Estimate:
    """:func:`tuneport.estimate.estimate`, counting ``cfg.validation`` when it is set."""
    from tuneport.data import load_records
    from tuneport.estimate import estimate

    validation = load_records(cfg.validation) if cfg.validation is not None else None
    result: Estimate = estimate(records, cfg, validation_records=validation)
    return result
