"""Several processes (GPUs) and machines for the local backend, through ``accelerate launch``.

tuneport does not start ranks itself: it writes the accelerate configuration of the run into
``RUN_DIR/accelerate.yaml`` (or copies the user's ``accelerate_config`` file there) and starts
``python -m accelerate.commands.launch --config_file RUN_DIR/accelerate.yaml -m
tuneport.providers.local.trainer RUN_DIR``; accelerate's launcher runs torchrun's elastic agent,
which starts one trainer process per rank and stops the others when one fails.

The combination is checked before anything starts (:func:`problems`): FSDP and DeepSpeed ZeRO-3
shard the weights and need 4-bit weights stored in the compute dtype; 8-bit weights cannot be
sharded; FSDP / DeepSpeed need CUDA GPUs. No torch here: the CLI imports this module.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tuneport.providers.local.recipe_config import SHARDING_STRATEGIES, LocalOptions

ACCELERATE_MODULE = "accelerate.commands.launch"
DEFAULT_MULTI_MACHINE_PORT = 29500
WORKING = "strategy=ddp with QLoRA (the default), or strategy=fsdp with quantize=none (bf16 LoRA)"

# accelerate's FSDP settings for (Q)LoRA: PEFT's documented fsdp_config_qlora.yaml, without
# CPU offload; the adapter is gathered to a full state dict on rank 0 when saved
FSDP_CONFIG: dict[str, Any] = {
    "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
    "fsdp_backward_prefetch": "BACKWARD_PRE",
    "fsdp_cpu_ram_efficient_loading": True,
    "fsdp_forward_prefetch": False,
    "fsdp_offload_params": False,
    "fsdp_sharding_strategy": "FULL_SHARD",
    "fsdp_state_dict_type": "SHARDED_STATE_DICT",
    "fsdp_sync_module_states": True,
    "fsdp_use_orig_params": False,
}
# DeepSpeed ZeRO-3 (parameters, gradients and optimizer states sharded), no offload
DEEPSPEED_CONFIG: dict[str, Any] = {
    "zero_stage": 3,
    "zero3_init_flag": True,
    "zero3_save_16bit_model": True,
    "offload_optimizer_device": "none",
    "offload_param_device": "none",
}
DISTRIBUTED_TYPE = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed": "DEEPSPEED"}


@dataclass(frozen=True)
class Layout:
    """How many processes a run has and how it spreads the model over them."""

    processes: int
    strategy: str  # ddp | fsdp | deepspeed
    machines: int = 1
    source: str = "settings"  # "settings" or the accelerate config file it came from

    @property
    def shards_weights(self) -> bool:
        return self.strategy in SHARDING_STRATEGIES

    def describe(self) -> str:
        where = f" on {self.machines} machines" if self.machines > 1 else ""
        plural = "es" if self.processes > 1 else ""
        return f"{self.processes} process{plural}{where}, {self.strategy}"


def read_config_file(path: Path) -> dict[str, Any]:
    """An accelerate config file (YAML or JSON) as a dict; ConfigError-ready message on failure."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(f"accelerate_config {path}: {reason}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"accelerate_config {path}: not a mapping of accelerate settings")
    return data


def layout(opts: LocalOptions) -> Layout:
    """The processes and strategy of a run: the settings, or its accelerate config file."""
    if opts.accelerate_config is None:
        return Layout(opts.processes, opts.strategy, opts.num_machines)
    data = read_config_file(opts.accelerate_config)
    kind = str(data.get("distributed_type", "NO")).upper()
    strategy = "ddp"
    if kind == "FSDP":
        strategy = "fsdp"
    elif kind == "DEEPSPEED":
        stage = (data.get("deepspeed_config") or {}).get("zero_stage", 2)
        strategy = "deepspeed" if int(stage) >= 3 else "ddp"  # ZeRO-1/2 keep whole weights
    processes = int(data.get("num_processes") or 1)
    machines = int(data.get("num_machines") or 1)
    return Layout(processes, strategy, machines, source=str(opts.accelerate_config))


def problems(opts: LocalOptions, *, cuda_devices: int | None) -> list[str]:
    """What is wrong with the run's processes / strategy / machines, one line each.

    ``cuda_devices``: the CUDA GPUs on this machine (0 on a machine without; None: not probed).
    """
    found: list[str] = []
    if opts.accelerate_config is not None:
        explicit = {"processes", "strategy", "num_machines", "machine_rank", "main_address"}
        clash = sorted(explicit & opts.model_fields_set)
        if clash:
            found.append(
                f"accelerate_config={opts.accelerate_config} already sets the processes; "
                f"drop {', '.join(clash)}"
            )
        try:
            lay = layout(opts)
        except ValueError as exc:
            return [*found, str(exc)]
    else:
        lay = layout(opts)
        if opts.num_machines > 1:
            if opts.processes % opts.num_machines:
                found.append(
                    f"processes={opts.processes} counts every machine's processes: it must be a "
                    f"multiple of num_machines={opts.num_machines}"
                )
            if opts.machine_rank >= opts.num_machines:
                found.append(
                    f"machine_rank={opts.machine_rank} must be below num_machines="
                    f"{opts.num_machines} (the main machine is 0)"
                )
            if not opts.main_address and opts.on != "sky":  # SkyPilot gives each node the head's
                found.append("num_machines > 1 needs main_address (the machine_rank 0 host)")
        elif opts.machine_rank:
            found.append("machine_rank is for num_machines > 1")
    cuda = cuda_devices is not None and cuda_devices > 0 and opts.device != "cpu"
    if lay.shards_weights:
        quantized = opts.quantize in ("4bit", "8bit") or (opts.quantize == "auto" and cuda)
        if opts.quantize == "8bit":
            found.append(f"strategy={lay.strategy} cannot shard 8-bit weights; use {WORKING}")
        elif quantized and opts.quant_storage == "uint8":
            found.append(
                f"strategy={lay.strategy} with 4-bit weights needs them stored in the compute "
                "dtype (quant_storage=auto or bfloat16), not uint8; or use " + WORKING
            )
        if cuda_devices is not None and not cuda:
            found.append(
                f"strategy={lay.strategy} needs CUDA GPUs; on this machine use strategy=ddp "
                "(gloo on CPU)"
            )
    if lay.strategy == "deepspeed" and cuda and importlib_missing("deepspeed"):
        found.append("strategy=deepspeed needs DeepSpeed: pip install deepspeed")
    if cuda and lay.machines == 1 and cuda_devices is not None and lay.processes > cuda_devices:
        found.append(
            f"processes={lay.processes} but this machine has {cuda_devices} CUDA GPU"
            f"{'s' if cuda_devices > 1 else ''}: one process per GPU"
        )
    if opts.use_liger_kernel:
        if opts.device == "cpu" or (cuda_devices is not None and not cuda):
            found.append(
                "use_liger_kernel needs a CUDA GPU (Liger's kernels are Triton): "
                "drop it on this machine"
            )
        elif importlib_missing("liger_kernel"):
            found.append("use_liger_kernel needs Liger: pip install liger-kernel")
    return found


def importlib_missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def accelerate_settings(opts: LocalOptions) -> dict[str, Any]:
    """The accelerate config (the keys ``accelerate config`` writes) for the run's settings.

    ``MULTI_GPU`` is accelerate's torchrun launcher; on a machine without CUDA the trainer
    passes ``use_cpu`` and the ranks talk over gloo. Mixed precision is left to the trainer
    (bf16 / fp16 training arguments). ``main_process_port: 0`` lets accelerate pick a free port.
    """
    machines = opts.num_machines
    port = opts.main_port
    if port is None:
        port = DEFAULT_MULTI_MACHINE_PORT if machines > 1 else 0
    settings: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "distributed_type": DISTRIBUTED_TYPE[opts.strategy],
        "downcast_bf16": "no",
        "machine_rank": opts.machine_rank,
        "main_training_function": "main",
        "mixed_precision": "no",
        "num_machines": machines,
        "num_processes": opts.processes,
        "rdzv_backend": "static",
        "same_network": True,
        "main_process_port": port,
        "use_cpu": False,
    }
    if machines > 1:
        settings["main_process_ip"] = opts.main_address
    if opts.strategy == "fsdp":
        settings["fsdp_config"] = dict(FSDP_CONFIG)
    if opts.strategy == "deepspeed":
        settings["deepspeed_config"] = dict(DEEPSPEED_CONFIG)
    return settings


def write_config(opts: LocalOptions, out: Path) -> None:
    """``out`` = the user's accelerate config (copied) or one written from the settings."""
    if opts.accelerate_config is not None:
        shutil.copyfile(opts.accelerate_config, out)
        return
    text = yaml.safe_dump(accelerate_settings(opts), sort_keys=True)
    out.write_text(
        "# written by tuneport for this run (accelerate config); see the README\n" + text,
        encoding="utf-8",
    )


def launch_prefix(python: str, config: Path) -> list[str]:
    """The command before ``-m tuneport.providers.local.trainer RUN_DIR``."""
    return [python, "-m", ACCELERATE_MODULE, "--config_file", str(config)]
