"""The facts of one service speaking the OpenAI fine-tuning protocol (:class:`Service`): its
settings, job states, request bounds (checked before anything is uploaded: the SDK checks none),
file limits, how its client is built and the extra fields its create takes."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field

from tuneport.errors import ConfigError
from tuneport.providers import sdk
from tuneport.providers.hosted import HostedOptions
from tuneport.schemas import JobConfig, JobState

if TYPE_CHECKING:
    from openai import OpenAI

RUN_ID_KEY = "tuneport_run_id"
SEARCH_JOBS = 100  # recent jobs scanned for a run id when the server ignores the filter
SEARCH_FILES = 500  # files scanned for an identical upload
STEP_OF_TOTAL = re.compile(r"^Step \d+/(\d+)\b")  # metric event messages: "Step 3/300: ..."
METHOD_TYPES: dict[str, str] = {"sft": "supervised", "dpo": "dpo"}
# tuneport JobConfig field -> OpenAI hyperparameter name
HYPERPARAMETERS: dict[str, str] = {
    "epochs": "n_epochs",
    "batch_size": "batch_size",
    "learning_rate_multiplier": "learning_rate_multiplier",
}
SEARCH_SOURCE_JOBS = 1000  # jobs scanned for the one that produced a tuned model (port)


class ProtocolOptions(HostedOptions):
    """The settings every service over the protocol takes (``--set key=value``): the hosted
    ones (api_key, base_url, timeout, max_attempts) and these."""

    beta: float | None = Field(default=None, gt=0)  # DPO only
    metadata: dict[str, str] = Field(default_factory=dict)  # extra job metadata


@dataclass(frozen=True)
class Bounds:
    """A service's request bounds (checked before anything is uploaded: the SDK checks none)."""

    source: str  # where they come from (shown in the rules' sources)
    suffix: tuple[int, int] = (1, 64)
    suffix_chars: str | None = None  # a regex the whole suffix must match, e.g. [A-Za-z0-9_-]+
    seed: tuple[int, int] = (0, 2_147_483_647)
    batch_size: tuple[int, int] = (1, 256)
    epochs: tuple[int, int] = (1, 50)
    max_beta: float = 2.0  # beta in (0, max_beta]
    max_metadata: int = 16  # key-value pairs per job, one is tuneport's run id
    max_metadata_key: int = 64
    max_metadata_value: int = 512


@dataclass(frozen=True)
class FileLimits:
    """``file_bytes``: one ``POST /files``; larger files go through the Uploads API in parts of
    ``part_bytes`` up to ``upload_bytes`` (``upload_bytes == file_bytes``: no Uploads API)."""

    file_bytes: int
    upload_bytes: int
    part_bytes: int


def _no_extra(options: Any, cfg: JobConfig) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Service:
    """One service speaking the OpenAI protocol: its facts, its client and what it adds."""

    name: str  # the provider name, e.g. "openai"
    api: sdk.Service  # title, env vars, base-URL rules, error rules, doctor checks
    options: type[ProtocolOptions]
    states: Mapping[str, JobState]  # raw job status -> normalized state
    bounds: Bounds
    limits: Callable[[], FileLimits]  # read at call time
    # the SDK client for the parsed options (built once per backend object, under a lock)
    client: Callable[[Any], OpenAI]
    # every missing credential or setting as (what, fix); empty when the service can be
    # called (None: the API key, from the setting or the service's variable)
    credential_problems: Callable[[Any], list[tuple[str, str]]] | None = None
    extra_body: Callable[[Any, JobConfig], dict[str, Any]] = _no_extra  # e.g. Azure trainingType
    wait_for_files: bool = False  # wait until an upload is `processed` before the create
    file_timeout: float = 1800.0  # at most this long (seconds; a `file_timeout` setting wins)
    export_title: str = "convert to OpenAI JSONL"
    unknown_state: JobState = JobState.RUNNING
    deleted_files: tuple[str, ...] = field(default=("error",))  # file states never reused


def bound_problems(b: Bounds, title: str, options: Any, cfg: JobConfig) -> list[tuple[str, str]]:
    """Every job setting outside the bounds ``b`` of the spec of the service ``title``
    (``options``: the backend's settings, for beta and metadata)."""
    found: list[tuple[str, str]] = []

    def outside(name: str, value: int | None, span: tuple[int, int], fix: str) -> None:
        low, high = span
        if value is not None and not low <= value <= high:
            found.append((f"{name} {value} is outside {low:,}..{high:,}", fix))

    low, high = b.suffix
    if cfg.suffix is not None and not low <= len(cfg.suffix) <= high:
        found.append(
            (
                f"suffix is {len(cfg.suffix)} characters; {title} takes {low}..{high}",
                "shorten --suffix" if cfg.suffix else "drop the empty --suffix",
            )
        )
    elif cfg.suffix and b.suffix_chars and not re.fullmatch(b.suffix_chars, cfg.suffix):
        found.append(
            (
                f"suffix {cfg.suffix!r} has characters {title} refuses",
                f"use only letters, digits, '-' and '_' in --suffix ({b.suffix_chars})",
            )
        )
    outside("seed", cfg.seed, b.seed, f"pass --seed {b.seed[0]}..{b.seed[1]:,}")
    outside(
        "batch_size",
        cfg.batch_size,
        b.batch_size,
        f"pass --batch-size {b.batch_size[0]}..{b.batch_size[1]}",
    )
    outside("epochs", cfg.epochs, b.epochs, f"pass --epochs 1..{b.epochs[1]}")
    lr = cfg.learning_rate_multiplier
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        found.append(
            (
                f"learning_rate_multiplier {lr} must be greater than 0",
                "pass a positive --learning-rate-multiplier",
            )
        )
    beta = options.beta
    if beta is not None and cfg.method != "dpo":
        found.append(("beta applies to --method dpo only", "use --method dpo or drop beta"))
    elif beta is not None and not 0 < beta <= b.max_beta:
        found.append(
            (f"beta {beta} is outside (0, {b.max_beta:g}]", f"set beta in (0, {b.max_beta:g}]")
        )
    metadata = {**options.metadata, RUN_ID_KEY: ""}
    if len(metadata) > b.max_metadata:
        found.append(
            (f"metadata holds more than {b.max_metadata - 1} pairs", "drop metadata pairs")
        )
    long_keys = [k for k in metadata if len(k) > b.max_metadata_key]
    long_values = [k for k, v in metadata.items() if len(v) > b.max_metadata_value]
    if long_keys:
        found.append(
            (
                f"metadata key(s) longer than {b.max_metadata_key} characters: "
                + ", ".join(repr(k[:20] + "…") for k in long_keys),
                "shorten the metadata keys",
            )
        )
    if long_values:
        found.append(
            (
                f"metadata value(s) longer than {b.max_metadata_value} characters for "
                + ", ".join(map(repr, long_values)),
                "shorten the metadata values",
            )
        )
    return found


def key_from(api: sdk.Service, options: Any) -> str:
    """The API key (setting, else the service's variable), or a one-line ConfigError."""
    key = api.api_key(options.api_key)
    if not key:
        what, fix = api.key_problem()
        raise ConfigError(what, hint=fix)
    return key
