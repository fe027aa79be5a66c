"""Job configuration, references, normalized states and job-store records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class JobState(StrEnum):
    """Normalized job state; every provider maps its raw states onto these."""

    QUEUED = "queued"
    VALIDATING = "validating"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


Method = Literal["sft", "dpo"]


class JobConfig(BaseModel):
    """Everything needed to launch one fine-tuning job (YAML job file and/or flags).

    Provider-specific settings (bucket, project, LoRA preset, ...) go in ``options`` and are
    validated by the provider's own options model (``extra="forbid"``).
    """

    model_config = ConfigDict(extra="forbid")

    # Generic bounds (finite, positive); each provider checks its own limits in preflight.
    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    data: Path
    method: Method = "sft"
    validation: Path | None = None
    epochs: int | None = Field(default=None, ge=1)  # None = provider's "auto"
    learning_rate_multiplier: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    batch_size: int | None = Field(default=None, ge=1)
    suffix: str | None = None
    seed: int | None = Field(default=None, ge=0)
    max_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    options: dict[str, Any] = Field(default_factory=dict)


# The generic settings of a job that a backend may send to its provider or have no use for:
# field -> the `train` flag that sets it. Every backend descriptor says which it uses
# (``Backend.uses``); a set one it does not use is warned about once, in the estimate. The other
# fields are no such choice: provider, model, data and method every backend acts on (or refuses
# in its preflight), max_cost is tuneport's own guard and options the backend's own settings.
GENERIC_SETTINGS: dict[str, str] = {
    "validation": "--validation",
    "epochs": "--epochs",
    "learning_rate_multiplier": "--learning-rate-multiplier",
    "batch_size": "--batch-size",
    "suffix": "--suffix",
    "seed": "--seed",
}
ALL_GENERIC: frozenset[str] = frozenset(GENERIC_SETTINGS)
"""Every generic setting: ``Backend.uses`` of a backend that sends or applies them all."""


class JobRef(BaseModel):
    """How to find a job again at its provider."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    remote_id: str
    run_id: str


class JobStatus(BaseModel):
    """A snapshot of a job: normalized state plus the provider's raw state and error text."""

    model_config = ConfigDict(extra="forbid")

    remote_id: str
    state: JobState
    raw_state: str
    error: str | None = None
    tuned_model: str | None = None  # ft:..., Vertex endpoint, local:ID
    trained_tokens: int | None = None
    # what the provider itself says the job costs, in USD, where its API reports it (Together's
    # total_price): the cost after the job, taken over tokens × the table's price
    billed_usd: float | None = None
    epochs: int | None = None
    progress: float | None = None  # 0..1 when known
    run_id: str | None = None
    model: str | None = None
    created_at: datetime | None = None
    # live progress where the backend knows it (the watch view shows step N/total, loss, tok/s)
    phase: str | None = None  # the backend's own words for what it does now ("loading the model")
    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None  # the latest training loss
    tokens_per_second: float | None = None
    # own hardware (local): how long the trainer ran, all attempts together, and on what device
    compute_seconds: float | None = None
    device: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class JobEvent(BaseModel):
    """One event/log line of a job; ``step``/``loss`` set for metric events."""

    model_config = ConfigDict(extra="forbid")

    id: str
    created_at: datetime | None = None
    level: str = "info"
    message: str
    step: int | None = None
    total_steps: int | None = None  # the run's step count, when the event says it
    loss: float | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class JobRecord(BaseModel):
    """A row of the local job store. Never holds secrets."""

    model_config = ConfigDict(extra="forbid")

    id: str  # local id shown to users
    run_id: str  # client-generated, sent to the provider for idempotent launch
    provider: str
    model: str
    method: Method = "sft"
    dataset_sha256: str
    config: dict[str, Any] = Field(default_factory=dict)
    remote_id: str | None = None
    remote_files: dict[str, str] = Field(default_factory=dict)  # role -> remote file id / URI
    state: JobState = JobState.QUEUED
    raw_state: str | None = None
    error: str | None = None
    tuned_model: str | None = None
    estimate_tokens: int | None = None
    estimate_cost_usd: float | None = None
    billed_tokens: int | None = None
    billed_usd: float | None = None  # the provider's own charge for the job, where it says it
    parent_id: str | None = None  # lineage: the job whose adapter this one continues
    # what the job launches (provider, model, data SHA-256, settings) as one digest: the same
    # `train` run again finds this record instead of starting a second paid job
    launch_key: str | None = None
    created_at: datetime
    updated_at: datetime
