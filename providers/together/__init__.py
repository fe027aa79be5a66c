"""Together AI fine-tuning backend (official ``together`` SDK, extra ``tuneport[together]``).

Everything tuneport knows about Together lives in this package: here the descriptor
(:data:`BACKEND`: rules, counter, estimate extras), in submodules the implementation
(:class:`~.provider.TogetherProvider`, built from ``client``, ``files``, ``jobs``, ``quote`` and
``port``; settings in ``options``, error rules in ``errors``). The SDK is imported inside the
implementation only, so importing the CLI or this descriptor never imports it.

Facts this module relies on (together==3.1.1 source, docs.together.ai; see the README section):

* the SDK's paths start with ``/v1``: a base URL (``TOGETHER_BASE_URL``, ``--set base_url``) is
  the bare host, ``https://api.together.ai``; with ``/v1`` every call would 404;
* the SDK retries 408/409/429/5xx and lost connections twice by default and sends no
  idempotency key, so a lost create reply would become a second paid job. The client is built
  with ``max_retries=0``; :mod:`tuneport.retry` (tenacity) owns retries, and before re-sending a
  create whose outcome is unknown the backend looks the run up again;
* jobs carry no metadata and take no client id: the run is found again by listing jobs and
  matching the job suffix, which ends with ``tp`` + 10 hex digits of the SHA-256 of the run id
  (:func:`~.jobs.run_tag`), and the base model;
* uploads go through Together's checksum/presigned flow: identical bytes are never sent twice
  (the job store remembers them by SHA-256, and Together answers 409 with the existing file for
  a checksum it knows). A lost reply can leave an empty file registered under the checksum; it
  is deleted and the bytes sent once;
* a 200 reply whose body is not JSON raises a bare ``json.JSONDecodeError`` from the SDK: it is
  retried like a lost reply, then reported as a :class:`~tuneport.errors.ProviderError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tuneport.pricing.estimate import Extras
from tuneport.pricing.table import ModelPrice
from tuneport.providers.base import Backend
from tuneport.providers.together.errors import API, ERROR_RULES
from tuneport.providers.together.options import DEFAULT_MODEL, NAME, TITLE, TogetherOptions
from tuneport.providers.together.quote import QuotedCounts
from tuneport.schemas import ALL_GENERIC, Example, JobConfig
from tuneport.tokens import cache
from tuneport.tokens.approx import ScaledTextCounter
from tuneport.tokens.counter import Counts, TokenCounter
from tuneport.tokens.hf import own_or_approx
from tuneport.validation.rules import (
    ANY_WEIGHT_CHAT,
    COMMON_PREFERENCE,
    Finding,
    Rules,
    no_parallel,
    pref_no_parallel,
)

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
    chat=(*ANY_WEIGHT_CHAT, together_roles, no_parallel),
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
    implementation="tuneport.providers.together.provider:TogetherProvider",
    target="together",
    rules=RULES,
    counter=counter,
    # job_kwargs: validation_file, n_epochs, learning_rate (x the multiplier), batch_size,
    # suffix, random_seed
    uses=ALL_GENERIC,
    env=("TOGETHER_API_KEY", "TOGETHER_BASE_URL", "TOGETHER_PROJECT_ID"),
    secret_env=("TOGETHER_API_KEY",),
    extras=estimate_extras,
    default_model=DEFAULT_MODEL,
    options=tuple(TogetherOptions.model_fields),
)

__all__ = [
    "API",
    "BACKEND",
    "ERROR_RULES",
    "RULES",
    "counter",
    "estimate_extras",
    "online_label",
    "online_spec",
    "tokenizer_ids",
]
