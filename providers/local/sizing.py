"""QLoRA sizing of a local run, from a model's ``config.json`` (no torch): optimizer steps and
an estimated peak GPU memory. The local backend's estimate extras."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tuneport.pricing.estimate import Extras
from tuneport.pricing.table import WILDCARD, ModelPrice
from tuneport.providers.local.distributed import Layout, layout
from tuneport.providers.local.recipe_config import (
    DEFAULT_BATCH_SIZE,
    LORA_PRESETS,
    LocalOptions,
)
from tuneport.retry import is_connection_error
from tuneport.schemas import JobConfig
from tuneport.tokens.counter import Counts


@dataclass(frozen=True)
class ModelShape:
    """The sizes read from a Hugging Face ``config.json`` (no torch needed)."""

    hidden: int
    layers: int
    vocab: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ModelShape:
        text = cfg.get("text_config")
        if isinstance(text, Mapping) and "hidden_size" not in cfg:
            cfg = {**cfg, **text}
        hidden = int(cfg["hidden_size"])
        heads = int(cfg.get("num_attention_heads") or 1)
        return cls(
            hidden=hidden,
            layers=int(cfg["num_hidden_layers"]),
            vocab=int(cfg["vocab_size"]),
            intermediate=int(cfg.get("intermediate_size") or 4 * hidden),
            heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            tied=bool(cfg.get("tie_word_embeddings", False)),
        )

    def linear_params(self) -> int:
        """Parameters of the transformer blocks' linear layers (the ones QLoRA quantizes)."""
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        attention = h * q + 2 * h * kv + q * h
        mlp = 3 * h * self.intermediate  # gate, up, down (SwiGLU)
        return self.layers * (attention + mlp)

    def other_params(self) -> int:
        """Embeddings, LM head (unless tied) and norms: kept in 16 bits."""
        embed = self.vocab * self.hidden
        head = 0 if self.tied else embed
        return embed + head + (2 * self.layers + 1) * self.hidden

    def params(self) -> int:
        return self.linear_params() + self.other_params()

    def lora_params(self, rank: int) -> int:
        """LoRA parameters with every linear layer adapted (``all-linear``)."""
        h, q, kv, i = (
            self.hidden,
            self.heads * self.head_dim,
            self.kv_heads * self.head_dim,
            (self.intermediate),
        )
        per_layer = (h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h)
        return self.layers * rank * per_layer


GIB = 1024**3
NF4_BYTES = 0.5 + 0.127 / 8  # 4-bit weights + double-quantized block constants (QLoRA paper)
RUNTIME_OVERHEAD_GIB = 1.0  # CUDA context, allocator fragmentation, kernels


def qlora_memory_gib(
    shape: ModelShape,
    *,
    rank: int,
    batch: int,
    seq_len: int,
    shards: int = 1,
    weight_bytes: float = NF4_BYTES,
) -> float:
    """Estimated peak memory (GiB) of one GPU in QLoRA (or LoRA) training.

    * frozen weights: linear layers in NF4 (≈0.516 bytes/param), embeddings/head/norms in bf16;
    * LoRA (rank ``rank`` on all linear layers): 16 bytes/param — fp32 weight, gradient and the
      two Adam moments;
    * activations with gradient checkpointing: one bf16 hidden state per layer
      (``batch·seq·hidden·2·layers``) + one layer recomputed (``batch·seq·(12·hidden +
      3·intermediate)·2``) + the logits in bf16 and fp32 with their gradient
      (``batch·seq·vocab·10``);
    * plus :data:`RUNTIME_OVERHEAD_GIB`.

    ``weight_bytes``: bytes per linear-layer parameter (NF4; 1 for 8-bit, 2 for bf16 LoRA).
    ``shards``: GPUs that split the weights and LoRA states (FSDP / ZeRO-3; 1 for DDP, where
    every GPU holds the whole model); a sharded GPU also holds one gathered layer and the next
    one being prefetched. Activations are per GPU (its own batch) either way.
    """
    weights = shape.linear_params() * weight_bytes + shape.other_params() * 2
    lora = shape.lora_params(rank) * 16.0
    if shards > 1:
        gathered = 2 * weights / max(shape.layers, 1)
        weights, lora = weights / shards + gathered, lora / shards
    tokens = batch * seq_len
    acts = tokens * shape.hidden * 2 * shape.layers
    acts += tokens * (12 * shape.hidden + 3 * shape.intermediate) * 2
    acts += tokens * shape.vocab * 10
    return (weights + lora + acts) / GIB + RUNTIME_OVERHEAD_GIB


def model_config(model: str) -> dict[str, Any] | None:
    """``config.json`` of a local model folder or a model in the Hugging Face cache."""
    path = Path(model).expanduser()
    candidate: Path | None = path / "config.json" if path.is_dir() else None
    if candidate is None and model != WILDCARD and not model.startswith((".", "/", "~")):
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(model, "config.json")
        except Exception:  # not a repo id
            found = None
        candidate = Path(found) if isinstance(found, str) else None
    if candidate is None or not candidate.is_file():
        return None
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


HUB_PROBE_TIMEOUT = 5.0  # seconds: one metadata request, never a download


def unreachable_model(model: str) -> str | None:
    """Why the trainer could not load ``model`` (a Hub id that is neither a local folder nor in
    the Hugging Face cache) on this machine, or ``None`` when it can (or when that cannot be
    told without downloading). Asks the Hub for the model's metadata only."""
    if model == WILDCARD or model.startswith((".", "/", "~")) or model_config(model) is not None:
        return None
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline:
        return "HF_HUB_OFFLINE is set, so it cannot be downloaded"
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(model, timeout=HUB_PROBE_TIMEOUT)
    except Exception as exc:
        names = {cls.__name__ for cls in type(exc).__mro__}
        if names & {"RepositoryNotFoundError", "RevisionNotFoundError"}:
            return "the Hugging Face Hub has no such model (or it is private: set HF_TOKEN)"
        if names & {"OfflineModeIsEnabled"} or is_connection_error(exc):
            return "the Hugging Face Hub cannot be reached to download it"
        return None  # gated, rate-limited, ...: the trainer says what the Hub answers
    return None


def _options(cfg: JobConfig) -> LocalOptions:
    """The run's local options (defaults where a value is missing or invalid: the estimate
    must not fail on a setting ``train`` will refuse with its own message)."""
    known = {k: v for k, v in cfg.options.items() if k in LocalOptions.model_fields}
    try:
        return LocalOptions.model_validate(known)
    except ValidationError:
        return LocalOptions()


WEIGHT_BYTES = {"4bit": NF4_BYTES, "8bit": 1.0 + 4 / 64, "none": 2.0}  # 8-bit: + row scales


def _layout(opts: LocalOptions, warnings: list[str]) -> Layout:
    try:
        return layout(opts)
    except ValueError as exc:
        warnings.append(f"{exc}: assumed one process")
        return Layout(1, "ddp")


def estimate_extras(counts: Counts, cfg: JobConfig, price: ModelPrice) -> Extras:
    """Optimizer steps and GPU memory (per GPU) of a local run (no money figure)."""
    opts = _options(cfg)
    n = counts.examples
    epochs = price.resolve_epochs(n, cfg.epochs)
    batch = cfg.batch_size or DEFAULT_BATCH_SIZE
    warnings: list[str] = []
    lay = _layout(opts, warnings)
    global_batch = batch * opts.gradient_accumulation_steps * lay.processes
    per_epoch = max(1, math.ceil(n / global_batch)) if n else 0
    steps = per_epoch * epochs
    if lay.processes > 1 or lay.strategy != "ddp":
        per_gpu = (
            f"each GPU holds 1/{lay.processes} of the weights and LoRA states"
            if lay.shards_weights
            else "each GPU holds the whole model"
        )
        warnings.append(
            f"assumed {lay.describe()} ({lay.source}): {batch} examples × "
            f"{opts.gradient_accumulation_steps} accumulation × {lay.processes} processes = "
            f"{global_batch} per optimizer step; GPU memory is per GPU ({per_gpu})"
        )
    cost_unknown: str | None = None
    if opts.on == "sky":
        from tuneport.providers.local.sky import hourly_price

        machines = f" × {opts.num_machines} machines" if opts.num_machines > 1 else ""
        hourly = hourly_price(opts)
        if hourly.startswith("price unknown"):
            cost_unknown = hourly
        cloud = opts.cloud or "the cheapest cloud SkyPilot finds"
        warnings.append(
            f"rents {opts.accelerators}{machines} through SkyPilot ({cloud}): {hourly}; billed by "
            "the hour until the run ends or is cancelled (which tears the cluster down)"
        )
    trained: int | None = None
    if opts.max_steps is not None and n and opts.max_steps != steps:
        # the Trainer runs exactly max_steps steps, fewer or more than the epochs would take
        trained = round(counts.total * opts.max_steps / per_epoch)
        warnings.append(
            f"max_steps={opts.max_steps:,} runs {opts.max_steps:,} optimizer steps "
            f"(≈{opts.max_steps / per_epoch:.3g} epochs, not {epochs}): about {trained:,} "
            "tokens are trained"
        )
        steps = opts.max_steps
    shape_cfg = model_config(cfg.model)
    if shape_cfg is None:
        if cfg.model != WILDCARD:
            warnings.append(
                f"no config.json for {cfg.model} (not a local folder or cached): "
                "GPU memory not estimated"
            )
        return Extras(
            steps=steps, warnings=warnings, trained_tokens=trained, cost_unknown=cost_unknown
        )
    try:
        shape = ModelShape.from_config(shape_cfg)
    except (KeyError, TypeError, ValueError):
        warnings.append(f"config.json of {cfg.model} lacks sizes: GPU memory unknown")
        return Extras(
            steps=steps, warnings=warnings, trained_tokens=trained, cost_unknown=cost_unknown
        )
    rank = opts.lora_r or LORA_PRESETS[opts.lora].r
    seq = min(opts.max_length, max(counts.largest, 1))
    quantize = "4bit" if opts.quantize == "auto" else opts.quantize  # auto: 4-bit on a GPU
    gpu = qlora_memory_gib(
        shape,
        rank=rank,
        batch=batch,
        seq_len=seq,
        shards=lay.processes if lay.shards_weights else 1,
        weight_bytes=WEIGHT_BYTES[quantize],
    )
    gpu = round(gpu, 2)
    return Extras(
        steps=steps,
        gpu_memory_gib=gpu,
        warnings=warnings,
        trained_tokens=trained,
        cost_unknown=cost_unknown,
    )
