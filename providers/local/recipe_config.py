"""Typed settings of the local backend: user options, LoRA presets and the run config.

``LocalOptions`` is what users set with ``--set key=value`` / the job file's ``options:``.
``RunConfig`` is the fully resolved recipe written to ``RUN_DIR/config.json``; the trainer
process reads nothing else. No torch here: the CLI imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tuneport.schemas import Method

DEFAULT_LEARNING_RATE = 2e-4
DEFAULT_EPOCHS = 3
DEFAULT_BATCH_SIZE = 4
DEFAULT_GRAD_ACCUM = 4

Quantize = Literal["auto", "4bit", "8bit", "none"]
Strategy = Literal["ddp", "fsdp", "deepspeed"]
# the dtype bitsandbytes packs 4-bit weights into; auto = the compute dtype when the strategy
# shards the weights (FSDP, ZeRO-3 need one dtype across shards), uint8 otherwise
QuantStorage = Literal["auto", "uint8", "bfloat16", "float16", "float32"]
SHARDING_STRATEGIES: tuple[str, ...] = ("fsdp", "deepspeed")
TargetModules = Literal["all-linear"] | list[str]


class LoraPreset(BaseModel):
    """One LoRA shape. ``target_modules="all-linear"`` adapts every linear layer except the head."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(gt=0)
    alpha: int = Field(gt=0)
    dropout: float = Field(ge=0.0, lt=1.0)
    target_modules: TargetModules = "all-linear"


LORA_PRESETS: dict[str, LoraPreset] = {
    # attention projections only: the smallest adapter, fastest to train
    "small": LoraPreset(r=8, alpha=16, dropout=0.05, target_modules=["q_proj", "v_proj"]),
    # the QLoRA paper's recipe: every linear layer
    "default": LoraPreset(r=16, alpha=32, dropout=0.05, target_modules="all-linear"),
    "large": LoraPreset(r=64, alpha=128, dropout=0.05, target_modules="all-linear"),
}

LoraPresetName = Literal["small", "default", "large"]


class LocalOptions(BaseModel):
    """Options of a local run (``--set key=value``); unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    # LoRA
    lora: LoraPresetName = "default"
    lora_r: int | None = Field(default=None, gt=0)
    lora_alpha: int | None = Field(default=None, gt=0)
    lora_dropout: float | None = Field(default=None, ge=0.0, lt=1.0)
    target_modules: TargetModules | None = None
    # precision / memory
    quantize: Quantize = "auto"  # auto = 4-bit nf4 on CUDA, none on CPU
    gradient_checkpointing: bool = True
    optim: str | None = None  # default paged_adamw_8bit on CUDA, adamw_torch on CPU
    device: Literal["auto", "cpu"] = "auto"
    # schedule
    learning_rate: float | None = Field(default=None, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    gradient_accumulation_steps: int = Field(default=DEFAULT_GRAD_ACCUM, gt=0)
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    lr_scheduler: str = "cosine"
    max_length: int = Field(default=2048, gt=8)
    quant_storage: QuantStorage = "auto"
    # batching
    packing: bool = False
    padding_free: bool = False
    use_liger_kernel: bool = False  # TRL's switch: Liger's fused Triton kernels (CUDA only)
    # several processes (GPUs) through `accelerate launch`; `--batch-size` is per process
    processes: int = Field(default=1, gt=0)  # on every machine together
    strategy: Strategy = "ddp"
    num_machines: int = Field(default=1, gt=0)
    machine_rank: int = Field(default=0, ge=0)
    main_address: str | None = None  # the machine with machine_rank 0 (num_machines > 1)
    main_port: int | None = Field(default=None, ge=0, le=65535)  # default: a free port / 29500
    accelerate_config: Path | None = None  # an accelerate config file instead of the settings
    # where it trains: this machine, or a cluster rented through SkyPilot (`--on sky`)
    on: Literal["here", "sky"] = "here"
    accelerators: str | None = None  # SkyPilot's NAME:COUNT per machine, e.g. A100:8
    cloud: str | None = None  # SkyPilot cloud (default: the cheapest SkyPilot finds)
    region: str | None = None
    use_spot: bool = False
    sky_install: str | None = None  # pip spec on the cluster; default tuneport[local]==VERSION
    # checkpoints and logging
    save_steps: int = Field(default=100, gt=0)
    save_total_limit: int = Field(default=2, gt=0)
    # None = every step for short runs, up to every 10th for long ones (auto_logging_steps)
    logging_steps: int | None = Field(default=None, gt=0)
    # DPO
    beta: float = Field(default=0.1, gt=0)
    # continue from an earlier adapter (merged into the base first)
    parent: str | None = None  # a job id / run id of an earlier local run
    init_adapter: Path | None = None  # or a PEFT adapter folder
    # a Jinja chat template file to use instead of the model's own
    chat_template: Path | None = None

    @field_validator("target_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        """``--set target_modules=q_proj,v_proj`` arrives as one string."""
        if isinstance(value, str) and value != "all-linear":
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def distributed(self) -> bool:
        """Launched through ``accelerate launch`` (several processes, machines or a config)."""
        return (
            self.processes > 1
            or self.num_machines > 1
            or self.strategy != "ddp"
            or self.accelerate_config is not None
        )

    def lora_config(self) -> LoraPreset:
        """The preset with any explicit ``lora_*`` / ``target_modules`` overrides applied."""
        preset = LORA_PRESETS[self.lora]
        return LoraPreset(
            r=self.lora_r or preset.r,
            alpha=self.lora_alpha or preset.alpha,
            dropout=preset.dropout if self.lora_dropout is None else self.lora_dropout,
            target_modules=self.target_modules or preset.target_modules,
        )


class RunConfig(BaseModel):
    """The resolved recipe of one run, written to ``RUN_DIR/config.json`` before it starts."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    model: str  # what the user asked for: a Hub id or a local folder
    method: Method = "sft"
    data: Path  # a ``datasets`` folder (save_to_disk) inside the run directory
    validation: Path | None = None
    epochs: int = DEFAULT_EPOCHS
    learning_rate: float = DEFAULT_LEARNING_RATE
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 42
    lora: LoraPreset
    options: LocalOptions
    init_adapter: Path | None = None  # resolved from options.parent / options.init_adapter
    parent_run: str | None = None

    def in_folder(self, run_dir: Path) -> RunConfig:
        """This config with relative data paths resolved against ``run_dir`` (a run trained on a
        SkyPilot cluster is written with paths relative to its folder, which moves there)."""
        update: dict[str, Path] = {}
        if not self.data.is_absolute():
            update["data"] = run_dir / self.data
        if self.validation is not None and not self.validation.is_absolute():
            update["validation"] = run_dir / self.validation
        return self.model_copy(update=update) if update else self

    def global_batch(self) -> int:
        """Examples per optimizer step: per-process batch × accumulation × processes."""
        return self.batch_size * self.options.gradient_accumulation_steps * self.options.processes

    def steps_per_epoch(self, examples: int) -> int:
        return max(1, -(-examples // self.global_batch()))

    def planned_steps(self, examples: int) -> int:
        """Optimizer steps the run takes: ``max_steps`` when set (the Trainer then ignores the
        epoch count), else epochs × steps per epoch."""
        return self.options.max_steps or self.steps_per_epoch(examples) * self.epochs


def auto_logging_steps(planned: int) -> int:
    """Log every step up to 100 steps (a short run shows its whole loss curve), then about 50
    points per run, at most every 10th step."""
    return max(1, min(10, planned // 50))
