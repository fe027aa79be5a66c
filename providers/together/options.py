"""The Together backend's constants and settings (:class:`TogetherOptions`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneport.providers.base import MAX_WAIT_S
from tuneport.providers.hosted import HostedOptions

NAME = "together"
TITLE = "Together AI"
INSTALL_HINT = "pip install 'tuneport[together]'"
DEFAULT_BASE_URL = "https://api.together.ai"
DEFAULT_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
KEY_URL = "https://api.together.ai/settings/api-keys"
TARGET = "together"  # BACKEND.target: the export format Together reads (data.exporters)
DEFAULT_LEARNING_RATE = 1e-5  # fine_tuning.create() default (together/resources/fine_tuning.py)


class TogetherOptions(HostedOptions):
    """Settings of the Together backend (``--set key=value`` or ``options:`` in a job file);
    ``api_key`` defaults to $TOGETHER_API_KEY, ``base_url`` to $TOGETHER_BASE_URL, else
    https://api.together.ai."""

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
