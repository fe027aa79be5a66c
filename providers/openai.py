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

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from tuneport.errors import AuthError, ProviderError, QuotaError, TuneportError
from tuneport.pricing.estimate import Extras
from tuneport.pricing.table import ModelPrice
from tuneport.providers.base import Backend, CounterFactory
from tuneport.providers.errormap import refused_file, rule, untunable_model

# the protocol's names, importable from here as before the protocol moved to openai_api
from tuneport.providers.openai_api import (  # noqa: F401
    HYPERPARAMETERS,
    METHOD_TYPES,
    RUN_ID_KEY,
    SEARCH_FILES,
    SEARCH_JOBS,
    STEP_OF_TOTAL,
    Bounds,
    FileLimits,
    OpenAIProtocol,
    ProtocolOptions,
    Service,
    key_from,
)
from tuneport.providers.sdk import Service as ApiService
from tuneport.schemas import ALL_GENERIC, JobConfig, JobState
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

NAME = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
API_URL_ENV = "OPENAI_BASE_URL"
WIND_DOWN = (
    "OpenAI is winding down self-serve fine-tuning (no new users; existing users for now); "
    "tuned ft: models keep working for chat."
)
NOTICE = f"{WIND_DOWN} Set {API_URL_ENV} to use a compatible server."


def notice(settings: Mapping[str, Any]) -> str:
    """:data:`NOTICE`, or where a base URL is set, that the command uses that server (the URL
    itself is not shown: it may carry a token)."""
    if settings.get("base_url"):
        where = "the base_url setting"
    elif os.environ.get(API_URL_ENV):
        where = API_URL_ENV
    else:
        return NOTICE
    return f"{WIND_DOWN} Using the server set by {where}."


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


class OpenAIOptions(ProtocolOptions):
    """Settings of the OpenAI backend (``--set key=value`` or ``options:`` in a job file):
    the protocol's (``api_key`` default $OPENAI_API_KEY, ``base_url`` default
    $OPENAI_BASE_URL else api.openai.com, timeout, max_attempts, beta, metadata) and these."""

    organization: str | None = None  # default: $OPENAI_ORG_ID
    project: str | None = None  # default: $OPENAI_PROJECT_ID


# --- error mapping (data-driven) ----------------------------------------------------------


UNAVAILABLE = (
    "OpenAI refused: fine-tuning is not available to this account (OpenAI is winding down "
    "self-serve fine-tuning)"
)
UNAVAILABLE_HINT = (
    "use --provider vertex or --provider local, or point OPENAI_BASE_URL at an "
    "OpenAI-compatible fine-tuning server"
)
API = ApiService.of(
    "OpenAI",
    "OPENAI",
    default_url=DEFAULT_BASE_URL,
    key_url="https://platform.openai.com/api-keys",
    status_url="https://status.openai.com",
).with_rules(
    # the wind-down: by the service's code whatever the status, else by its wording
    rule(
        AuthError,
        UNAVAILABLE,
        UNAVAILABLE_HINT,
        codes=["fine_tuning_not_available", "fine_tuning_unavailable"],
    ),
    rule(
        AuthError,
        UNAVAILABLE,
        UNAVAILABLE_HINT,
        status=[400, 403, 404],
        contains=["not available for new users", "no longer accept", "no longer available"],
    ),
    rule(
        QuotaError,
        "OpenAI quota exhausted: {msg}",
        "add credits or raise the usage limit at https://platform.openai.com/settings/"
        "organization/billing",
        status=[429],
        codes=["insufficient_quota", "billing_hard_limit_reached"],
    ),
    untunable_model(
        "choose a tunable base model, e.g. --model gpt-4.1-mini",
        codes=["model_not_found", "model_not_available", "invalid_model"],
        contains=["cannot be fine-tuned", "not available for fine-tuning", "does not support"],
    ),
    refused_file(
        "OpenAI",
        NAME,
        codes=[
            "invalid_file",
            "invalid_training_file",
            "invalid_file_format",
            "invalid_n_examples",
        ],
    ),
    denied_fix="check that the key's organization/project may fine-tune (OPENAI_ORG_ID, "
    "OPENAI_PROJECT_ID)",
)
ERROR_RULES = API.rules


def map_error(exc: BaseException, *, model: str = "", base_url: str = "") -> TuneportError:
    """One-line tuneport error for an SDK error (never leaking the API key)."""
    return API.map_error(exc, base_url=base_url, model=model or "?")


def unreadable(what: str, exc: BaseException | None = None) -> ProviderError:
    """A reply tuneport cannot read: a create must be looked up, not repeated."""
    return API.unreadable(what, exc)


# --- the service over the OpenAI protocol (tuneport.providers.openai_api) -------------------


def file_limits() -> FileLimits:
    """OpenAI's file limits, read when used (tests lower them)."""
    return FileLimits(MAX_FILE_BYTES, MAX_UPLOAD_BYTES, UPLOAD_PART_BYTES)


def build_client(options: OpenAIOptions) -> OpenAI:
    """The SDK client: key, base URL, organization and project from the settings or the
    environment; ``max_retries=0`` (tenacity, :mod:`tuneport.retry`, owns retries)."""
    from openai import OpenAI

    return OpenAI(
        api_key=key_from(API, options),
        base_url=API.url_override(options.base_url),  # None: the SDK's default
        organization=options.organization,
        project=options.project,
        timeout=options.timeout,
        max_retries=0,  # tenacity (tuneport.retry) owns retries
    )


SERVICE = Service(
    name=NAME,
    api=API,
    options=OpenAIOptions,
    states=STATES,
    bounds=Bounds(
        source=SPEC_SOURCE,
        suffix=(MIN_SUFFIX, MAX_SUFFIX),
        seed=(MIN_SEED, MAX_SEED),
        batch_size=(MIN_BATCH_SIZE, MAX_BATCH_SIZE),
        epochs=(MIN_EPOCHS, MAX_EPOCHS),
        max_beta=MAX_BETA,
        max_metadata=MAX_METADATA,
        max_metadata_key=MAX_METADATA_KEY,
        max_metadata_value=MAX_METADATA_VALUE,
    ),
    limits=file_limits,
    client=build_client,
)


class OpenAIProvider(OpenAIProtocol):
    """Fine-tune and chat through the OpenAI API (or any compatible server)."""

    service = SERVICE
    name = NAME
    options: OpenAIOptions

    def shutdown_dates(self) -> dict[str, str]:
        """Model id -> ``YYYY-MM-DD`` for the models whose ``/v1/models`` object carries a
        ``shutdown_date`` (``Model.shutdown_date: Optional[str]``, openai 3.x SDK types)."""

        def read() -> dict[str, str]:
            found: dict[str, str] = {}
            for model in self.client.models.list():
                value = getattr(model, "shutdown_date", None)
                if isinstance(value, str) and value:
                    found[model.id] = value[:10]
            return found

        return self._call(read)


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


class ProtocolFacts(TypedDict):
    """The descriptor fields every backend over the OpenAI fine-tuning protocol states alike."""

    target: str
    counter: CounterFactory
    uses: frozenset[str]
    default_model: str
    cleanup_deletes_uploads: bool


PROTOCOL: ProtocolFacts = {
    "target": "openai",
    "counter": counter,
    # OpenAIProtocol.job_body: hyperparameters, validation_file, suffix, seed
    "uses": ALL_GENERIC,
    "default_model": "gpt-4.1-mini",
    "cleanup_deletes_uploads": True,  # OpenAIProtocol.cleanup deletes the job's files
}

BACKEND = Backend(
    name=NAME,
    title="OpenAI",
    implementation="tuneport.providers.openai:OpenAIProvider",
    rules=RULES,
    **PROTOCOL,
    model_prefixes=("ft:", "gpt-"),
    notice=notice,
    env=("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"),
    secret_env=("OPENAI_API_KEY",),
    extras=estimate_extras,
    options=tuple(OpenAIOptions.model_fields),
)
