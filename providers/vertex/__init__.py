"""Vertex AI Gemini tuning through ``google-genai`` (and GCS for the datasets): the descriptor
(:data:`BACKEND`, cheap to import) and, in submodules, the backend (``provider``), put together
from its settings (``options``), credentials (``auth``), errors, client, data, jobs, chat,
cleanup and port parts and its Cloud Storage stager (``gcs``).

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

from collections.abc import Iterator, Mapping
from typing import Any

from tuneport.data.gemini_schema import to_gemini_schema
from tuneport.pricing.estimate import BudgetFigure
from tuneport.providers.base import Backend, Measure
from tuneport.providers.vertex.options import BASE_URL_ENV, TOKEN_ENV, VertexOptions
from tuneport.schemas import Example, JobConfig, Message, PreferenceExample
from tuneport.tokens.approx import ScaledTextCounter
from tuneport.tokens.counter import TokenCounter
from tuneport.validation.rules import (
    COMMON_CHAT,
    COMMON_PREFERENCE,
    Finding,
    Rules,
    ToolNames,
    TurnOrder,
    arguments_object,
    no_images,
    no_names,
    no_parallel,
    no_weight,
)

NAME = "vertex"

# JobConfig fields Vertex Gemini tuning has no use for -> why (warned about, never fatal)
UNSUPPORTED_FIELDS: dict[str, str] = {
    "batch_size": "Vertex Gemini tuning has no batch size; the service chooses it",
    "seed": "Vertex Gemini tuning takes no seed",
}


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
    """Adapter sizes the docs do not confirm for the model (warned about once, never fatal;
    generic settings Vertex ignores are declared in the descriptor's ``ignores``)."""
    size = _adapter_size(cfg)
    if size is not None and adapter_sizes(cfg.model, cfg.method) is None:
        return [
            f"adapter_size {size} is not confirmed for {cfg.model} ({cfg.method}): the docs "
            f"list sizes for other models only ({ADAPTER_SIZES_SOURCE}); Vertex decides"
        ]
    return []


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

# Gemini contents: roles user and model, alternating from user; a chat ends with a model turn, a
# preference prompt with a user turn; function responses are user-side turns (the findings and
# fixes say "model", Gemini's word).
GEMINI_TURNS = TurnOrder(user="user", assistant="model")


def gemini_tool_schemas(ex: Example) -> Iterator[Finding]:
    """Each tool's JSON Schema ``parameters`` converts to Gemini's ``Schema`` subset
    (:mod:`tuneport.data.gemini_schema`): unconvertible → error, lossy → warning."""
    for tool in ex.tools or ():
        if tool.function.parameters is None:
            continue
        converted = to_gemini_schema(tool.function.parameters)
        name = tool.function.name
        for text in converted.problems:
            yield Finding("tool_schema", f"tool {name!r}: {text}")
        for text in converted.notes:
            yield Finding("tool_schema_changed", f"tool {name!r}: {text}")


def gemini_parts(ex: Example) -> Iterator[Finding]:
    for i, m in enumerate(ex.messages):
        if m.role != "system" and not m.tool_calls and not m.content:
            yield Finding("empty_parts", f"messages[{i}] ({m.role}) would become an empty part")


def pref_text_only(ex: PreferenceExample) -> Iterator[Finding]:
    if ex.tools or any(m.tool_calls for m in [*ex.prompt, ex.chosen, ex.rejected]):
        yield Finding("tools_unsupported", "Vertex preference data is text only")


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
        GEMINI_TURNS,
        gemini_parts,
        gemini_tool_schemas,
        TOOL_NAMES,
        no_weight,
        no_names,
        no_parallel,
        no_images,
    ),
    preference=(*COMMON_PREFERENCE, pref_text_only, GEMINI_TURNS, TOOL_NAMES),
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
    implementation="tuneport.providers.vertex.provider:VertexProvider",
    target="vertex",
    rules=RULES,
    counter=counter,
    # tuning_config: validation_dataset, epoch_count, learning_rate_multiplier, the suffix as
    # tuned_model_display_name; no batch size, no seed
    uses=frozenset({"validation", "epochs", "learning_rate_multiplier", "suffix"}),
    ignores=UNSUPPORTED_FIELDS,
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


__all__ = [
    "BACKEND",
    "NAME",
    "RULES",
    "adapter_sizes",
    "budget_rule",
    "config_warnings",
    "counter",
]
