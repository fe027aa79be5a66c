"""The settings of the Fireworks backend and the defaults tuneport sends."""

from __future__ import annotations

from pydantic import Field

from tuneport.providers.base import MAX_WAIT_S
from tuneport.providers.hosted import HostedOptions

# docs.fireworks.ai/fine-tuning/rft-parameters-reference: learning rate 1e-4, LoRA rank 8,
# 1 epoch, max context 8,192 (the RFT table; the same defaults assumed for SFT/DPO, unverified)
DEFAULT_LEARNING_RATE = 1e-4
DEFAULT_CONTEXT = 8192
DIRECT_UPLOAD_MAX = 150 * 1024 * 1024  # datasets.upload() docstring: "file sizes up to 150Mb"


class FireworksOptions(HostedOptions):
    """Settings of the Fireworks backend (``--set key=value`` or ``options:`` in a job file);
    ``api_key``, ``base_url`` (default: $FIREWORKS_BASE_URL, else https://api.fireworks.ai),
    ``timeout`` and ``max_attempts`` are every hosted backend's."""

    account_id: str | None = None  # default: $FIREWORKS_ACCOUNT_ID
    learning_rate: float | None = Field(default=None, gt=0)  # absolute; wins over the multiplier
    lora_rank: int | None = Field(default=None, ge=1)
    max_context_length: int | None = Field(default=None, ge=1)
    learning_rate_warmup_steps: int | None = Field(default=None, ge=0)
    gradient_accumulation_steps: int | None = Field(default=None, ge=1)
    early_stop: bool | None = None  # SFT only
    eval_auto_carveout: bool | None = None  # SFT only: carve an evaluation set from the data
    dpo_beta: float | None = Field(default=None, gt=0, lt=0.5)  # DPO only (DpoConfig.beta)
    deploy: bool = False  # chat: create a deployment of the tuned model when none serves it
    # wait for a deployment to be READY
    deploy_timeout: float = Field(default=1800.0, gt=0, le=MAX_WAIT_S)
    # wait for an upload to be READY
    dataset_timeout: float = Field(default=1800.0, gt=0, le=MAX_WAIT_S)
    direct_upload_max: int = Field(default=DIRECT_UPLOAD_MAX, ge=1)  # bytes; above: signed URL
    delete_job: bool = False  # cleanup: delete the ended job itself too (the tuned model stays)
