"""The local QLoRA backend: its descriptor (:data:`BACKEND`) and, in submodules, the provider
wrapper (``provider``), the run files and the trainer recipe (torch is imported only inside the
trainer process and for chat/export)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from tuneport.providers.base import Backend
from tuneport.providers.local.recipe_config import LocalOptions
from tuneport.providers.local.sizing import estimate_extras
from tuneport.tokens.counter import TokenCounter
from tuneport.tokens.hf import own_or_approx
from tuneport.validation.rules import (
    COMMON_CHAT,
    COMMON_PREFERENCE,
    Rules,
    arguments_json,
    no_images,
)

NAME = "local"
# bitsandbytes (>= 0.48) logs a warning at import on CPUs with AVX512-BF16 when the optional
# `kernels` package cannot fetch its CPU kernel (bitsandbytes/backends/cpu/ops.py), and offline
# `kernels` first logs that it skips the kernel's publisher check (kernels/_internals/hf_hub.py).
# bitsandbytes falls back to its own kernel, so both lines on stderr are noise; the loggers'
# other warnings still show.
THIRD_PARTY_NOISE = {
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward",
    "kernels._internals.hf_hub": "Skipping publisher trust check for "
    "'kernels-community/quantization-bitsandbytes'",
}


def _dropping(prefix: str) -> Callable[[logging.LogRecord], bool]:
    return lambda record: not str(record.msg).startswith(prefix)


for _logger, _prefix in THIRD_PARTY_NOISE.items():
    logging.getLogger(_logger).addFilter(_dropping(_prefix))


def counter(model: str, settings: Mapping[str, Any]) -> TokenCounter:
    """The model's own tokenizer and chat template when the model is a local folder or in the
    Hugging Face cache; otherwise the o200k approximation plus the chat template's tokens,
    labelled with its band (tuneport.tokens.templates)."""
    why = "no model chosen" if model == "*" else f"tokenizer of {model} not available locally"
    counted: TokenCounter = own_or_approx([model], why=why)
    return counted


# Local QLoRA (TRL): no provider minimum; examples longer than the trainer's max_length (default
# 2048, `--set max_length=N`) are truncated, so the limit is a warning. The local export carries
# tool calls and results, names and per-turn weights, so none of them is flagged.
RULES = Rules(
    provider=NAME,
    min_examples=1,
    recommended_examples=1,
    token_limit=LocalOptions.model_fields["max_length"].default,
    token_limit_severity="warning",
    token_limit_note="the trainer truncates them to max_length (--set max_length=N)",
    chat=(*COMMON_CHAT, arguments_json, no_images),
    preference=COMMON_PREFERENCE,
    source="tuneport local backend (TRL SFTTrainer/DPOTrainer, max_length default)",
)


def rented(settings: Mapping[str, Any]) -> str | None:
    """Why a run on GPUs rented through SkyPilot (``on=sky``) has no cost figure."""
    if settings.get("on") != "sky":
        return None
    return "the GPUs were rented through SkyPilot and billed by the cloud (see `sky cost-report`)"


BACKEND = Backend(
    name=NAME,
    title="local QLoRA",
    implementation="tuneport.providers.local.provider:LocalProvider",
    target="local",
    rules=RULES,
    counter=counter,
    # RunConfig (provider._run_config): validation, epochs, learning rate (x the multiplier),
    # batch_size, seed; no suffix
    uses=frozenset({"validation", "epochs", "learning_rate_multiplier", "batch_size", "seed"}),
    ignores={"suffix": "a local run and its adapter are named by the run id"},
    model_prefixes=("local:",),
    env=("TUNEPORT_HOME", "CUDA_VISIBLE_DEVICES"),
    secret_env=("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),  # model downloads from the Hub
    extras=estimate_extras,
    options=tuple(LocalOptions.model_fields),
    rented=rented,
)
