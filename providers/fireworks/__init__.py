"""Fireworks AI fine-tuning backend (official ``fireworks-ai`` SDK, extra
``tuneport[fireworks]``).

Everything tuneport knows about Fireworks is here: the descriptor (:data:`BACKEND`) in this
module, the implementation (:class:`~tuneport.providers.fireworks.provider.FireworksProvider`)
in its submodules: ``options``, ``errors`` (the service and its error rules), ``ids``,
``client``, ``datasets``, ``jobs``, ``deployments``, ``port`` and ``provider``. The SDK is
imported inside the implementation only.

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

from collections.abc import Iterator, Mapping
from typing import Any

from tuneport.providers.base import Backend
from tuneport.providers.fireworks.ids import short
from tuneport.providers.fireworks.options import DEFAULT_CONTEXT, FireworksOptions
from tuneport.schemas import Example
from tuneport.tokens.counter import TokenCounter
from tuneport.tokens.hf import own_or_approx
from tuneport.validation.rules import ANY_WEIGHT_CHAT, COMMON_PREFERENCE, Finding, Rules

NAME = "fireworks"
TITLE = "Fireworks AI"

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
    counted: TokenCounter = own_or_approx([model, TOKENIZERS.get(short(model), "")])
    return counted


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
    chat=(*ANY_WEIGHT_CHAT, system_first),
    preference=COMMON_PREFERENCE,
    source="docs.fireworks.ai/fine-tuning/fine-tuning-models, /dpo-fine-tuning (read 2026-12-01)",
)

BACKEND = Backend(
    name=NAME,
    title=TITLE,
    implementation="tuneport.providers.fireworks.provider:FireworksProvider",
    target="openai",
    rules=RULES,
    counter=counter,
    # job_kwargs: evaluation_dataset, epochs, learning_rate (x the multiplier),
    # batch_size_samples, the suffix in output_model and display_name; no seed
    uses=frozenset({"validation", "epochs", "learning_rate_multiplier", "batch_size", "suffix"}),
    ignores={"seed": "its fine-tuning jobs take no seed"},
    model_prefixes=("accounts/",),
    env=("FIREWORKS_API_KEY", "FIREWORKS_ACCOUNT_ID", "FIREWORKS_BASE_URL"),
    secret_env=("FIREWORKS_API_KEY",),
    default_model="accounts/fireworks/models/llama-v3p1-8b-instruct",
    options=tuple(FireworksOptions.model_fields),
)
