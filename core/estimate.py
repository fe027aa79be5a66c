"""Cost and size estimates before launch: tokens × epochs × dated price.

How the figures are computed
----------------------------
* ``tokens``: the sum of every training example's tokens, counted by the provider's counter
  (:func:`tuneport.tokens.counter_for`; exact for OpenAI, approximate offline for Vertex).
* ``epochs``: ``--epochs`` if given (checked against the model's bounds), else the provider's
  auto rule from the price table (OpenAI: the cookbook rule; Vertex: its default count).
* ``billed_tokens = tokens × epochs``; ``cost_usd = billed_tokens × training price / 1e6``.
  Validation tokens are counted and shown but not billed (see ``prices.toml``).
* Local runs (no price): ``steps = ceil(examples / (batch_size × grad_accumulation)) × epochs``
  and a QLoRA GPU-memory estimate (:func:`qlora_memory_gib`); ``cost_usd`` is ``None``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneport.counting import TokenCounter
from tuneport.errors import InputError
from tuneport.pricing import WILDCARD, ModelPrice, PriceTable, load_prices
from tuneport.schemas import Estimate, Example, JobConfig, PreferenceExample
from tuneport.tokens import (
    Counts,
    TiktokenChatCounter,
    count_jsonl,
    count_records,
    counter_for,
    fast_counter,
    uses_tools,
)

AnyRecord = Example | PreferenceExample

# Formats whose JSONL lines the fast raw counter understands (same numbers as the records).
FAST_FORMATS = ("canonical", "openai", "openai-dpo")
_LIST_LINES = 5


def _lines(pairs: Sequence[tuple[int, int]]) -> str:
    shown = ", ".join(str(line) for line, _ in pairs[:_LIST_LINES])
    more = f" and {len(pairs) - _LIST_LINES} more" if len(pairs) > _LIST_LINES else ""
    return f"line{'s' if len(pairs) > 1 else ''} {shown}{more}"


def _int_option(options: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = options.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _lora_rank(options: Mapping[str, Any], default: int) -> int:
    """``lora_r``, else the rank of the named ``lora`` preset of the local backend, else default."""
    explicit = _int_option(options, "lora_r", None)
    if explicit:
        return explicit
    preset = options.get("lora")
    if isinstance(preset, str):
        try:  # the presets are the local backend's data (no torch in that module)
            from tuneport.providers.local.recipe_config import LORA_PRESETS
        except ImportError:
            return default
        if preset in LORA_PRESETS:
            return LORA_PRESETS[preset].r
    return default


# --- local model size and QLoRA memory ---------------------------------------------------------


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


def qlora_memory_gib(shape: ModelShape, *, rank: int, batch: int, seq_len: int) -> float:
    """Estimated peak GPU memory (GiB) of QLoRA training.

    * frozen weights: linear layers in NF4 (≈0.516 bytes/param), embeddings/head/norms in bf16;
    * LoRA (rank ``rank`` on all linear layers): 16 bytes/param — fp32 weight, gradient and the
      two Adam moments;
    * activations with gradient checkpointing: one bf16 hidden state per layer
      (``batch·seq·hidden·2·layers``) + one layer recomputed (``batch·seq·(12·hidden +
      3·intermediate)·2``) + the logits in bf16 and fp32 with their gradient
      (``batch·seq·vocab·10``);
    * plus :data:`RUNTIME_OVERHEAD_GIB`.
    """
    weights = shape.linear_params() * NF4_BYTES + shape.other_params() * 2
    lora = shape.lora_params(rank) * 16
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


# --- estimates ---------------------------------------------------------------------------------


def estimate_counts(
    counts: Counts,
    cfg: JobConfig,
    *,
    price: ModelPrice,
    counter: TokenCounter,
    validation: Counts | None = None,
) -> Estimate:
    """The estimate for already counted examples (the pure part of :func:`estimate`)."""
    n = counts.examples
    tokens = counts.total
    epochs = price.resolve_epochs(n, cfg.epochs)
    billed = tokens * epochs
    rate = price.training_per_million
    cost = None if rate is None else round(billed * rate / 1e6, 6)
    warnings: list[str] = []
    approx = "" if counter.exact else "≈"

    if n == 0:
        warnings.append("no examples to train on")
    elif n < price.min_examples:
        warnings.append(f"{n} examples: {price.provider} needs at least {price.min_examples}")
    elif price.recommended_examples and n < price.recommended_examples:
        warnings.append(
            f"{n} examples: {price.provider} recommends at least {price.recommended_examples}"
        )
    limit = price.context_tokens
    if limit:
        over = counts.over(limit)
        if over:
            worst = max(t for _, t in over)
            warnings.append(
                f"{len(over)} example{'s' if len(over) > 1 else ''} over the {limit:,}-token "
                f"limit of {cfg.model} ({_lines(over)}; largest {approx}{worst:,}): "
                "the provider rejects or truncates them"
            )
    if validation is not None and limit:
        v_over = validation.over(limit)
        if v_over:
            warnings.append(
                f"{len(v_over)} validation example(s) over the {limit:,}-token limit "
                f"({_lines(v_over)})"
            )
    if counts.skipped:
        warnings.append(
            f"{len(counts.skipped)} row(s) not counted because they are not readable records "
            f"({_lines([(ln, 0) for ln in counts.skipped])}); run `tuneport validate`"
        )
    if not counter.exact:
        warnings.append(
            f"token count is approximate ({counter.label}); pass --online for exact counts "
            "where the provider offers them"
        )
    if counts.tool_examples and counter.exact and isinstance(counter, TiktokenChatCounter):
        warnings.append(
            f"{counts.tool_examples} example(s) with tools: definitions and calls are counted as "
            "encoded JSON "
            "(OpenAI does not publish its tool rendering), so their counts are close, not exact"
        )
    if price.unverified and rate is not None:
        warnings.append(
            f"price ${rate:,.2f}/1M is unverified (as of {price.as_of}, {price.source}); "
            "override it with --prices FILE"
        )
    if price.notice:
        warnings.append(price.notice)

    steps = gpu = None
    if price.batch_size is not None:
        batch = cfg.batch_size or price.batch_size
        accum = _int_option(cfg.options, "gradient_accumulation_steps", price.grad_accumulation)
        steps = max(1, math.ceil(n / (batch * (accum or 1)))) * epochs if n else 0
        if price.lora_rank is not None:
            shape_cfg = model_config(cfg.model)
            rank = _lora_rank(cfg.options, price.lora_rank)
            max_len = _int_option(cfg.options, "max_length", price.max_seq_len) or 2048
            if shape_cfg is None:
                if cfg.model != WILDCARD:
                    warnings.append(
                        f"no config.json for {cfg.model} (not a local folder or cached): "
                        "GPU memory not estimated"
                    )
            else:
                try:
                    shape = ModelShape.from_config(shape_cfg)
                except (KeyError, TypeError, ValueError):
                    warnings.append(f"config.json of {cfg.model} lacks sizes: GPU memory unknown")
                else:
                    seq = min(max_len, max(counts.largest, 1))
                    gpu = round(qlora_memory_gib(shape, rank=rank, batch=batch, seq_len=seq), 2)

    return Estimate(
        provider=cfg.provider,
        model=cfg.model,
        method=cfg.method,
        examples=n,
        tokens=tokens,
        validation_tokens=validation.total if validation is not None else None,
        epochs=epochs,
        billed_tokens=billed,
        price_per_million_usd=rate,
        cost_usd=cost,
        exact=counter.exact,
        error_band=None if counter.exact else counter.error_band,
        price_as_of=price.as_of,
        price_source=price.source,
        warnings=warnings,
        steps=steps,
        gpu_memory_gib=gpu,
    )


def estimate(
    records: Iterable[AnyRecord],
    cfg: JobConfig,
    *,
    validation_records: Iterable[AnyRecord] | None = None,
    prices: PriceTable | None = None,
    counter: TokenCounter | None = None,
) -> Estimate:
    """Tokens, epochs, billed tokens and cost of tuning ``cfg.model`` on ``records``."""
    prices = prices or load_prices()
    price = prices.lookup(cfg.provider, cfg.model, cfg.method)
    counter = counter or counter_for(cfg.provider, cfg.model)
    counts = count_records(records, counter)
    validation = (
        count_records(validation_records, counter) if validation_records is not None else None
    )
    return estimate_counts(counts, cfg, price=price, counter=counter, validation=validation)


def count_path(
    path: Path, counter: TokenCounter, *, fmt: str | None = None, workers: int | None = None
) -> Counts:
    """Per-example token counts of a data file.

    Canonical/OpenAI JSONL with a counter that reads raw lines (tiktoken, the o200k
    approximation) takes the fast path (worker processes for big files); every other format
    and counter reads records through the importers.
    """
    from tuneport.data import read_records
    from tuneport.data.records import resolve_format

    name = resolve_format(path, fmt, None)
    fast = fast_counter(counter)
    if fast is not None and name in FAST_FORMATS and path.is_file():
        from tuneport import countcache  # counts left by `validate --model` (same file+counter)

        cached = countcache.load(path, fast.spec)
        if cached is not None:
            return cached
        before = path.stat()
        sha256 = countcache.file_sha256(path)
        counts = count_jsonl(path, fast, workers=workers)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            countcache.save(path, fast.spec, counts, sha256=sha256)
        return counts
    counts = Counts()
    for row in read_records(path, name):
        if row.record is None:
            counts.skipped.append(row.line)
            continue
        counts.tokens.append(counter.count(row.record))
        counts.lines.append(row.line)
        counts.tool_examples += uses_tools(row.record)
    return counts


def estimate_file(
    path: Path,
    cfg: JobConfig,
    *,
    validation: Path | None = None,
    prices: PriceTable | None = None,
    counter: TokenCounter | None = None,
    online: bool = False,
    settings: Mapping[str, Any] | None = None,
    fmt: str | None = None,
    workers: int | None = None,
) -> Estimate:
    """:func:`estimate` for a data file, counted fast (streamed; parallel for big JSONL)."""
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="check the path")
    prices = prices or load_prices()
    price = prices.lookup(cfg.provider, cfg.model, cfg.method)
    counter = counter or counter_for(cfg.provider, cfg.model, online=online, settings=settings)
    counts = count_path(path, counter, fmt=fmt, workers=workers)
    v_counts = None
    if validation is not None:
        if not validation.exists():
            raise InputError(f"{validation}: no such file", hint="check --validation")
        v_counts = count_path(validation, counter, workers=workers)
    return estimate_counts(counts, cfg, price=price, counter=counter, validation=v_counts)
