"""The local fine-tuning recipe: QLoRA SFT or DPO with transformers + peft + trl + bitsandbytes.

Run as its own process by the local provider::

    python -m tuneport.providers.local.trainer RUN_DIR [--resume]

It reads ``RUN_DIR/config.json`` (a :class:`RunConfig`), and writes ``status.json``,
``metrics.jsonl``, ``checkpoints/``, ``adapter/`` and ``loss.png`` into ``RUN_DIR`` (see
:mod:`tuneport.providers.local.runfiles`). Read it top to bottom: device and precision, tokenizer,
model, data, trainer, train, save.

Defaults that avoid the usual traps: 4-bit nf4 + double quantization with bf16 compute (fp16 on
GPUs without bf16), LoRA on every linear layer, gradient checkpointing, paged 8-bit AdamW, loss on
assistant tokens only, an EOS at the end of every assistant turn, a pad token that is not EOS.
On a machine without CUDA it trains in float32 without quantization and says so.

Several processes (``--set processes=N``): the provider starts this module through ``accelerate
launch`` with the run's ``accelerate.yaml`` (see :mod:`tuneport.providers.local.distributed`);
each rank loads the model on its own ``LOCAL_RANK`` and writes its pid to ``ranks/<RANK>``; rank 0
alone writes status, metrics, the adapter and the checkpoint's model files (with several machines,
each machine's first process writes that machine's run folder). A cancel stops every
rank at the same step; a rank that dies makes the launcher stop the others and the run fails,
resumable from its last checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from tuneport.errors import ConfigError, TuneportError
from tuneport.providers.local import runfiles
from tuneport.providers.local.recipe_config import RunConfig, auto_logging_steps
from tuneport.providers.local.runfiles import RunStatus
from tuneport.providers.local.template import (
    IGNORE_INDEX,
    choose_pad_token,
    masking_template,
    prompt_completion_to_messages,
    set_chat_template,
    stop_token_ids,
    tokenize_chat,
)

# --------------------------------------------------------------------------------------------
# Device and precision
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Precision:
    device: str  # "cuda" | "cpu"
    quantize: str  # "4bit" | "8bit" | "none"
    compute_dtype: torch.dtype
    note: str | None = None  # one line shown to the user (CPU fallback)

    @property
    def label(self) -> str:
        dtype = str(self.compute_dtype).removeprefix("torch.")
        return f"{self.quantize} / {dtype}" if self.quantize != "none" else dtype


def resolve_precision(quantize: str, device: str = "auto") -> Precision:
    """4-bit nf4 with bf16 compute on CUDA (fp16 where bf16 is missing); float32 on CPU."""
    cuda = torch.cuda.is_available() and device != "cpu"
    if cuda:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Precision("cuda", "4bit" if quantize == "auto" else quantize, dtype)
    if quantize in ("auto", "none"):
        return Precision(
            "cpu",
            "none",
            torch.float32,
            "no CUDA GPU found: training on CPU in full precision (float32) without quantization",
        )
    # bitsandbytes >= 0.45 also quantizes on CPU: slow, but the real QLoRA code path
    return Precision(
        "cpu",
        quantize,
        torch.bfloat16,
        f"no CUDA GPU found: training on CPU with {quantize} bitsandbytes quantization (slow)",
    )


def is_main_process() -> bool:
    """Rank 0 (or no launcher): the one process that writes status, metrics and the adapter."""
    return int(os.environ.get("RANK", "0")) == 0


def is_local_main() -> bool:
    """The first process of this machine: it writes this machine's run folder (status, metrics,
    a DDP adapter). One machine: the same as rank 0."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def register_rank(run_dir: Path) -> None:
    """Several processes: this rank's pid in ``ranks/<RANK>`` (cancel signals each rank: torchrun
    starts them in their own sessions), and a SIGTERM when the launcher dies (Linux), so that no
    rank outlives it."""
    if world_size() <= 1:
        return
    ranks = run_dir / runfiles.RANKS
    ranks.mkdir(exist_ok=True)
    (ranks / os.environ.get("RANK", "0")).write_text(f"{os.getpid()}\n")
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the launcher died before prctl
            os.kill(os.getpid(), signal.SIGTERM)


def stop_agreed(local: bool) -> bool:
    """Whether any rank was asked to stop (every rank must stop at the same step)."""
    if world_size() <= 1 or not torch.distributed.is_initialized():
        return local
    from accelerate import PartialState

    flag = torch.tensor([1 if local else 0], device=PartialState().device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())


def sharded() -> bool:
    """Launched by ``accelerate launch`` with an FSDP or DeepSpeed config."""
    return any(
        os.environ.get(name, "").lower() == "true"
        for name in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED")
    )


def quantization_config(precision: Precision, storage: str = "auto") -> Any:
    """bitsandbytes settings; ``storage`` = the 4-bit storage dtype (``quant_storage``)."""
    from transformers import BitsAndBytesConfig

    if precision.quantize == "4bit":
        extra: dict[str, Any] = {}
        if storage == "auto" and sharded():
            # FSDP/ZeRO-3 shard the packed 4-bit weights: store them as the compute dtype
            extra["bnb_4bit_quant_storage"] = precision.compute_dtype
        elif storage != "auto":
            dtype = getattr(torch, storage)
            if sharded() and dtype != precision.compute_dtype:
                compute = str(precision.compute_dtype).removeprefix("torch.")
                raise ConfigError(
                    f"quant_storage={storage} differs from the compute dtype {compute}: FSDP / "
                    "ZeRO-3 need them equal",
                    hint=f"set quant_storage=auto (or {compute}), or use strategy=ddp with QLoRA",
                )
            extra["bnb_4bit_quant_storage"] = dtype
        return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=precision.compute_dtype,
            **extra,
        )
    if precision.quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)  # type: ignore[no-untyped-call]
    return None


# --------------------------------------------------------------------------------------------
# Tokenizer and model
# --------------------------------------------------------------------------------------------


def load_tokenizer(path: str | Path, template_file: Path | None = None) -> tuple[Any, bool, str]:
    """Tokenizer with a chat template and a pad token != EOS; (tokenizer, pad_added, source)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    override = template_file.read_text(encoding="utf-8") if template_file else None
    source = set_chat_template(tokenizer, override)
    pad_added = choose_pad_token(tokenizer)
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"the tokenizer of {path} has no EOS token", hint="use a chat model")
    return tokenizer, pad_added, source


def resize_embeddings(model: Any, size: int) -> None:
    """Grow the vocabulary to ``size`` rows, new rows = the mean row (deterministic).

    Deterministic so that base + adapter loaded later (the adapter does not carry the
    embeddings) computes exactly what was trained.
    """
    old = model.get_input_embeddings().weight.shape[0]
    if size <= old:
        return
    model.resize_token_embeddings(size, mean_resizing=False)
    with torch.no_grad():
        for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
            if layer is None:
                continue
            weight = layer.weight
            weight[old:] = weight[:old].float().mean(dim=0).to(weight.dtype)


def load_base_model(
    path: str | Path, precision: Precision, vocab_size: int, storage: str = "auto"
) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": precision.compute_dtype}
    qconfig = quantization_config(precision, storage)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
    if precision.device == "cuda" and not sharded():  # FSDP/DeepSpeed place the shards
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    resize_embeddings(model, vocab_size)
    model.config.use_cache = False  # incompatible with gradient checkpointing
    return model


def lora_config(cfg: RunConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )


def read_adapter_meta(adapter: Path) -> dict[str, Any]:
    import json

    meta_path = adapter / runfiles.ADAPTER_META
    if meta_path.is_file():
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        return meta
    from peft import PeftConfig

    return {"base_model": PeftConfig.from_pretrained(str(adapter)).base_model_name_or_path}


def quiet_libraries() -> None:
    """No progress bars or deprecation chatter from the libraries in interactive commands."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    for module in ("transformers", "peft", "trl"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)


def load_tuned(path: Path, precision: Precision) -> tuple[Any, Any]:
    """(model, tokenizer) for inference: a run directory, an adapter folder or merged weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (path / runfiles.ADAPTER).is_dir():
        path = path / runfiles.ADAPTER
    if not (path / "adapter_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        kwargs: dict[str, Any] = {"dtype": precision.compute_dtype}
        qconfig = quantization_config(precision)
        if qconfig is not None:
            kwargs["quantization_config"] = qconfig
        if precision.device == "cuda":
            kwargs["device_map"] = {"": 0}
        merged: Any = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
        return merged.eval(), tokenizer
    from peft import PeftModel

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    base = load_base_model(read_adapter_meta(path)["base_model"], precision, len(tokenizer))
    model: Any = PeftModel.from_pretrained(base, str(path))
    model.config.use_cache = True
    return model.eval(), tokenizer


def merge_adapter(adapter: Path, out: Path, dtype: torch.dtype | None = None) -> Path:
    """Write base + ``adapter`` merged into plain safetensors weights (+ tokenizer) at ``out``.

    The base is loaded unquantized in its own dtype (merging into 4-bit weights would be lossy),
    on the GPU(s) when there are any.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    base_path = read_adapter_meta(adapter)["base_model"]
    kwargs: dict[str, Any] = {"dtype": dtype if dtype is not None else "auto"}
    if torch.cuda.is_available():
        kwargs["device_map"] = "auto"
    base = AutoModelForCausalLM.from_pretrained(str(base_path), **kwargs)
    resize_embeddings(base, len(tokenizer))
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.config.use_cache = True
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return out


def generate_reply(
    model: Any,
    tokenizer: Any,
    messages: list[dict[str, Any]],
    *,
    max_new_tokens: int = 256,
    temperature: float | None = None,
) -> str:
    """One assistant reply, stopping at EOS or the model's end-of-turn tokens."""
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    encoded = {k: v.to(model.device) for k, v in encoded.items()}
    generation_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    sample = bool(temperature and temperature > 0)
    with torch.no_grad():
        output = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_token_ids(tokenizer, generation_eos),
            pad_token_id=tokenizer.pad_token_id,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=None,
            top_k=None,
        )
    new_tokens = output[0][encoded["input_ids"].shape[1] :]
    return str(tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def load_dataset_dir(path: Path) -> Any:
    from datasets import load_from_disk

    dataset = load_from_disk(str(path))
    if hasattr(dataset, "keys"):  # a DatasetDict: take its train split
        dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
    return dataset


def tokenize_sft_dataset(
    dataset: Any,
    tokenizer: Any,
    stop_ids: list[int],
    max_length: int,
    recorder: Recorder | None = None,
) -> Any:
    """``input_ids`` + ``labels`` (assistant-only, EOS-terminated) for each conversation.

    Conversations whose first trained token lies beyond ``max_length`` teach nothing: they are
    dropped with a note, and an error says so when none is left.
    """
    template = masking_template(tokenizer)
    columns = set(dataset.column_names)
    if "messages" not in columns and not {"prompt", "completion"} <= columns:
        raise ConfigError(
            f"the SFT dataset has columns {sorted(columns)}",
            hint="expected `messages` or `prompt` + `completion`",
        )

    def encode(row: dict[str, Any]) -> dict[str, list[int]]:
        messages = row["messages"] if "messages" in row else prompt_completion_to_messages(row)
        return tokenize_chat(
            tokenizer,
            messages,
            tools=row.get("tools"),
            template=template,
            stop_ids=stop_ids,
            max_length=max_length,
        )

    encoded = dataset.map(encode, remove_columns=dataset.column_names)
    return _keep_fitting(
        encoded,
        lambda row: any(label != IGNORE_INDEX for label in row["labels"]),
        max_length,
        recorder,
        rows="examples",
        none_left=f"no example has an assistant token within max_length={max_length} tokens",
    )


def _keep_fitting(
    dataset: Any,
    fits: Callable[[dict[str, Any]], bool],
    max_length: int,
    recorder: Recorder | None,
    *,
    rows: str,
    none_left: str,
) -> Any:
    """The rows of ``dataset`` whose prompt leaves room within ``max_length`` (``fits``): the
    others skipped with a note naming them (``rows``), an error (``none_left``) if none is left."""
    kept = dataset.filter(fits)
    dropped = len(dataset) - len(kept)
    if dropped and len(kept) == 0:
        raise ConfigError(none_left, hint="raise it with --set max_length=N or shorten the prompts")
    if dropped and recorder is not None:
        recorder.note(
            f"{dropped} of {len(dataset)} {rows} skipped: their prompt fills "
            f"max_length={max_length} tokens (raise it with --set max_length=N)"
        )
    return kept


def clean_preference_dataset(
    dataset: Any, tokenizer: Any, max_length: int, recorder: Recorder | None = None
) -> Any:
    """``prompt``/``chosen``/``rejected`` rows for DPO; prompts filling ``max_length`` are skipped
    (with a note; an error when none is left), as for SFT."""
    from tuneport.providers.local.template import clean_messages

    def clean(row: dict[str, Any]) -> dict[str, Any]:
        return {
            key: clean_messages(row[key]) if isinstance(row[key], list) else row[key]
            for key in ("prompt", "chosen", "rejected")
        }

    def fits(row: dict[str, Any]) -> bool:
        prompt = row["prompt"]
        if isinstance(prompt, str):
            return len(tokenizer(prompt)["input_ids"]) < max_length
        rendered = tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return len(rendered["input_ids"]) < max_length

    missing = {"prompt", "chosen", "rejected"} - set(dataset.column_names)
    if missing:
        raise ConfigError(
            f"the DPO dataset lacks columns {sorted(missing)}",
            hint="DPO needs preference records (prompt, chosen, rejected)",
        )
    extra = [c for c in dataset.column_names if c not in ("prompt", "chosen", "rejected")]
    cleaned = dataset.map(clean, remove_columns=extra)
    return _keep_fitting(
        cleaned,
        fits,
        max_length,
        recorder,
        rows="preference pairs",
        none_left=f"every DPO prompt fills max_length={max_length} tokens",
    )


# --------------------------------------------------------------------------------------------
# Status, metrics and cancellation
# --------------------------------------------------------------------------------------------


class Recorder:
    """Writes ``status.json`` (atomically) and ``metrics.jsonl`` for the provider to read."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        previous = runfiles.read_status(run_dir)
        self.status = RunStatus(phase="loading", pid=os.getpid(), started_at=runfiles.utcnow())
        self._earlier_seconds = 0.0  # time earlier attempts ran (a resumed run adds to it)
        if previous is not None:
            self.status.notes = previous.notes
            self._earlier_seconds = previous.seconds or 0.0
        self._started = time.monotonic()
        self.main = is_local_main()
        # ids of new messages sort after every event already shown (also those a resume redoes)
        events = runfiles.read_events(run_dir)
        self.high_step = max((int(e.get("step") or 0) for e in events), default=0)
        self._messages = sum(1 for e in events if "step" not in e)  # sub-id counter
        self.stop_requested = False
        self.in_loop = False  # inside trainer.train(): a stop request is honoured at a step end
        self._last_write = 0.0
        self._announced: str | None = None  # the last phase written as an event

    def update(self, force: bool = True, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.status, key, value)
        now = time.monotonic()
        self.status.seconds = round(self._earlier_seconds + now - self._started, 1)
        if not self.main:
            return
        self._announce_phase()
        if force or now - self._last_write > 0.5:
            runfiles.write_status(self.run_dir, self.status)
            self._last_write = now

    def _announce_phase(self) -> None:
        """Each phase as an event, so a watch that polled late still lists every phase."""
        phase = self.status.phase
        if phase == self._announced or phase not in runfiles.PHASE_WORDS:
            return
        self._announced = phase
        words = runfiles.PHASE_WORDS[phase]
        if phase == "training" and self.status.max_steps:
            words += f" ({self.status.max_steps:,} steps)"
        self.message(words, phase=phase)

    def message(self, text: str, **data: Any) -> None:
        """A non-metric event; its id ``STEP.N`` sorts after every event written before."""
        if not self.main:
            return
        self._messages += 1
        step = max(self.status.step, self.high_step)
        event = {"id": f"{step}.{self._messages}", "message": text, **data}
        runfiles.append_event(self.run_dir, {**event, "time": runfiles.utcnow().isoformat()})

    def note(self, text: str) -> None:
        """A message that is also kept in ``status.json`` (and printed to the log)."""
        if not self.main:
            return
        print(text, flush=True)
        if text not in self.status.notes:
            self.status.notes.append(text)
        self.message(text)
        self.update()


PEER_STOPPED = "another process of this run stopped (train.log names it)"


class StopRequested(Exception):
    """SIGTERM arrived before the training loop started."""


def make_callback(recorder: Recorder) -> Any:
    from transformers import TrainerCallback

    class StatusCallback(TrainerCallback):
        """Mirrors the Trainer's progress into status.json / metrics.jsonl; honours cancel."""

        def __init__(self) -> None:
            self.last_time = time.monotonic()
            self.last_tokens = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.last_time = time.monotonic()
            self.last_tokens = state.num_input_tokens_seen
            recorder.in_loop = True
            recorder.update(phase="training", max_steps=state.max_steps, step=state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            recorder.update(
                force=False,
                step=state.global_step,
                epoch=state.epoch,
                trained_tokens=state.num_input_tokens_seen,
            )
            if state.global_step >= state.max_steps:
                control.should_log = True  # the last step's loss is always recorded
            if stop_agreed(recorder.stop_requested):
                recorder.stop_requested = True
                control.should_training_stop = True
                control.should_save = True  # so that `resume` can continue from here
                control.should_log = True

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            logs = logs or {}
            if "eval_loss" in logs:
                recorder.message(
                    f"step {state.global_step}: eval loss {logs['eval_loss']:.4f}",
                    eval_loss=float(logs["eval_loss"]),
                )
            if "train_loss" in logs:  # the Trainer's summary at the end
                recorder.message(
                    f"training done: mean loss {float(logs['train_loss']):.4f} over "
                    f"{state.global_step:,} steps",
                    train_loss=float(logs["train_loss"]),
                )
            if "loss" not in logs:
                return  # evaluation or the final train summary
            now = time.monotonic()
            tokens = state.num_input_tokens_seen
            rate = (tokens - self.last_tokens) / max(now - self.last_time, 1e-9)
            self.last_time, self.last_tokens = now, tokens
            event = {
                "id": str(state.global_step),
                "step": state.global_step,
                "epoch": round(state.epoch or 0.0, 4),
                "loss": float(logs["loss"]),
                "lr": float(logs.get("learning_rate", 0.0)),
                "tokens_per_s": round(rate, 1),
                "tokens": tokens,
                "memory_gib": round(peak_memory_gib(), 3),
                "time": runfiles.utcnow().isoformat(),
            }
            for key in (
                "grad_norm",
                "rewards/accuracies",
                "rewards/margins",
                "mean_token_accuracy",
            ):
                if key in logs:
                    event[key] = float(logs[key])
            if recorder.main:
                runfiles.append_event(recorder.run_dir, event)
            recorder.update(
                force=state.global_step >= state.max_steps,
                loss=event["loss"],
                step=state.global_step,
                tokens_per_s=event["tokens_per_s"],
            )

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            recorder.update(step=state.global_step)

    return StatusCallback()


def peak_memory_gib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def write_loss_plot(run_dir: Path, recorder: Recorder) -> Path | None:
    """``loss.png`` at the end of a run (succeeded, cancelled or failed); a plotting problem is
    a note, never a failed run."""
    try:
        return plot_loss(run_dir)
    except Exception as exc:  # matplotlib missing or broken: the adapter is what matters
        recorder.note(f"loss.png not written: {type(exc).__name__}: {exc}")
        return None


def plot_loss(run_dir: Path) -> Path | None:
    points = [(e["step"], e["loss"]) for e in runfiles.read_events(run_dir) if "loss" in e]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else "")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(run_dir.name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = run_dir / runfiles.LOSS_PNG
    fig.savefig(out)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------------------------
# The recipe
# --------------------------------------------------------------------------------------------


def prepare_base(cfg: RunConfig, run_dir: Path, recorder: Recorder | None) -> Path | str:
    """The model to train on: the base, or the base with the parent adapter merged in."""
    if cfg.init_adapter is None:
        return cfg.model
    from accelerate import PartialState

    merged = run_dir / runfiles.BASE
    with PartialState().main_process_first():  # one merge when several processes run
        if not (merged / "config.json").is_file():
            if recorder is not None:
                recorder.note(f"merging the adapter {cfg.init_adapter} into its base")
            tmp = run_dir / ".base.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            merge_adapter(cfg.init_adapter, tmp)
            os.replace(tmp, merged)
    return merged


def build_trainer(
    cfg: RunConfig, run_dir: Path, recorder: Recorder | None = None, resume: bool = False
) -> Any:
    """The TRL trainer for ``cfg`` (SFTTrainer or DPOTrainer), ready to ``train()``."""
    opts = cfg.options
    precision = resolve_precision(opts.quantize, opts.device)
    if recorder is not None:
        recorder.update(device=precision.device, precision=precision.label)
        if precision.note and not resume:
            recorder.note(precision.note)

    base = prepare_base(cfg, run_dir, recorder)
    tokenizer, pad_added, template_source = load_tokenizer(base, opts.chat_template)
    if recorder is not None and not resume:
        if template_source == "tuneport default":
            recorder.note("the model has no chat template: using tuneport's default template")
        if pad_added:
            recorder.note("the tokenizer has no usable pad token: added <|pad|> and resized")
    if opts.use_liger_kernel and precision.device != "cuda":
        raise ConfigError(
            "use_liger_kernel needs a CUDA GPU (Liger's kernels are Triton)",
            hint="drop use_liger_kernel on a machine without CUDA",
        )
    model = load_base_model(base, precision, len(tokenizer), opts.quant_storage)
    model.config.pad_token_id = tokenizer.pad_token_id
    # upcasts the unquantized layers to fp32 and readies checkpointing; FSDP/ZeRO-3 QLoRA must
    # keep one storage dtype across shards, so it is skipped there
    if precision.quantize != "none" and not sharded():
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model,
            use_gradient_checkpointing=opts.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )

    stop_ids = stop_token_ids(tokenizer, model.generation_config.eos_token_id)
    train_data = load_dataset_dir(cfg.data)
    eval_data = load_dataset_dir(cfg.validation) if cfg.validation else None

    cuda = precision.device == "cuda"
    common: dict[str, Any] = {
        "output_dir": str(run_dir / runfiles.CHECKPOINTS),
        "num_train_epochs": cfg.epochs,
        "max_steps": opts.max_steps or -1,
        "per_device_train_batch_size": cfg.batch_size,
        "per_device_eval_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": opts.gradient_accumulation_steps,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": opts.lr_scheduler,
        "warmup_steps": opts.warmup_ratio,
        "optim": opts.optim or ("paged_adamw_8bit" if cuda else "adamw_torch"),
        "activation_checkpointing": opts.gradient_checkpointing,
        "gradient_checkpointing": opts.gradient_checkpointing,
        "activation_checkpointing_kwargs": {"use_reentrant": False},
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "bf16": cuda and precision.compute_dtype == torch.bfloat16,
        "fp16": cuda and precision.compute_dtype == torch.float16,
        "use_cpu": not cuda,
        "logging_steps": opts.logging_steps
        or auto_logging_steps(cfg.planned_steps(len(train_data))),
        "save_strategy": "steps",
        "save_steps": opts.save_steps,
        "save_total_limit": opts.save_total_limit,
        "eval_strategy": "epoch" if eval_data is not None else "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": cfg.seed,
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
        "use_liger_kernel": opts.use_liger_kernel,
        # several machines without a shared disk: each machine keeps its checkpoints (resume)
        "save_on_each_node": opts.num_machines > 1,
        # LoRA leaves no parameter unused: skip DDP's extra graph traversal per step
        "ddp_find_unused_parameters": False,
    }
    callbacks = [make_callback(recorder)] if recorder is not None else []

    if cfg.method == "dpo":
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        # ref_model=None with a PEFT model: the reference is the base with the adapter disabled
        return DPOTrainer(
            model=model,
            ref_model=None,
            args=DPOConfig(**common, beta=opts.beta, max_length=opts.max_length),
            train_dataset=clean_preference_dataset(
                train_data, tokenizer, opts.max_length, recorder
            ),
            eval_dataset=(
                clean_preference_dataset(eval_data, tokenizer, opts.max_length)
                if eval_data is not None
                else None
            ),
            processing_class=tokenizer,
            peft_config=lora_config(cfg),
            callbacks=callbacks,
        )

    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    train_tok = tokenize_sft_dataset(train_data, tokenizer, stop_ids, opts.max_length, recorder)
    eval_tok = (
        tokenize_sft_dataset(eval_data, tokenizer, stop_ids, opts.max_length)
        if eval_data is not None
        else None
    )
    # padding-free without packing needs max_length=None in TRL: sequences are truncated above
    max_length = None if (opts.padding_free and not opts.packing) else opts.max_length
    return SFTTrainer(
        model=model,
        args=SFTConfig(
            **common,
            max_length=max_length,
            packing=opts.packing,
            padding_free=opts.padding_free,
        ),
        train_dataset=train_tok,
        eval_dataset=eval_tok,
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
        callbacks=callbacks,
    )


def save_adapter(trainer: Any, cfg: RunConfig, run_dir: Path) -> Path:
    """Adapter + tokenizer + tuneport.json into ``RUN_DIR/adapter`` (atomically)."""
    import json

    out = run_dir / runfiles.ADAPTER
    tmp = run_dir / ".adapter.tmp"
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        if is_main_process():
            shutil.rmtree(tmp, ignore_errors=True)
        if trainer.is_fsdp_enabled:  # the adapter as one file, gathered on rank 0
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        # every rank takes part (the shards are gathered); rank 0 writes
        trainer.save_model(str(tmp))
        if not is_main_process():
            return out
    elif not is_local_main():
        return out  # DDP: every rank holds the same weights; each machine's first one writes
    else:
        shutil.rmtree(tmp, ignore_errors=True)
        # the embeddings are not trained; resize_embeddings rebuilds added rows deterministically
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(str(tmp), save_embedding_layers=False)
    trainer.processing_class.save_pretrained(str(tmp))
    base = run_dir / runfiles.BASE if cfg.init_adapter else cfg.model
    meta = {
        "base_model": str(base),
        "model": cfg.model,
        "method": cfg.method,
        "run_id": cfg.run_id,
        "parent_run": cfg.parent_run,
        "vocab_size": len(trainer.processing_class),
    }
    (tmp / runfiles.ADAPTER_META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def run(cfg: RunConfig, run_dir: Path, recorder: Recorder, resume: bool) -> str:
    """Train and save; returns the final phase (``succeeded`` or ``cancelled``)."""
    checkpoint = runfiles.latest_checkpoint(run_dir) if resume else None
    if checkpoint is not None:
        step = int(checkpoint.name.rpartition("-")[2])
        if recorder.main:
            runfiles.truncate_events(run_dir, step)
        recorder.update(resumed_from=checkpoint.name, step=step)
        recorder.note(f"resuming from {checkpoint.name}")
    elif resume:
        recorder.note("no checkpoint to resume from: starting from step 0")

    trainer = build_trainer(cfg, run_dir, recorder, resume=resume)
    if recorder.stop_requested:
        raise StopRequested
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    if recorder.stop_requested:
        if recorder.main:
            write_loss_plot(run_dir, recorder)
        return "cancelled"
    recorder.update(phase="saving", step=trainer.state.global_step)
    save_adapter(trainer, cfg, run_dir)
    if recorder.main:
        write_loss_plot(run_dir, recorder)
    return "succeeded"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuneport.providers.local.trainer")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    cfg = RunConfig.model_validate_json((run_dir / runfiles.CONFIG).read_text(encoding="utf-8"))
    cfg = cfg.in_folder(run_dir)  # a rented cluster's run: data paths relative to the folder
    recorder = Recorder(run_dir)
    recorder.update()
    register_rank(run_dir)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if world_size() > 1 and not (run_dir / runfiles.CANCEL).exists():
            # not a cancel: the launcher stops the ranks because one of them died
            recorder.update(
                phase="failed",
                error=f"{PEER_STOPPED}; `tuneport jobs resume {cfg.run_id}` continues from "
                "the last checkpoint",
                finished_at=runfiles.utcnow(),
            )
            os._exit(1)
        recorder.stop_requested = True
        if not recorder.in_loop:
            raise StopRequested

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        phase = run(cfg, run_dir, recorder, args.resume)
    except (StopRequested, KeyboardInterrupt):
        phase = "cancelled"
    except TuneportError as exc:
        traceback.print_exc()
        if recorder.main:
            write_loss_plot(run_dir, recorder)
        recorder.update(phase="failed", error=exc.one_line(), finished_at=runfiles.utcnow())
        print(f"error: {exc.one_line()}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:
        traceback.print_exc()
        if recorder.main:
            write_loss_plot(run_dir, recorder)
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        if world_size() > 1:
            message = f"rank {os.environ.get('RANK', '0')}: {message}"
            if isinstance(exc, torch.distributed.DistError) or "gloo" in message:
                message = (  # a peer died in the middle of a collective
                    f"{PEER_STOPPED}; `tuneport jobs resume {cfg.run_id}` continues from the "
                    f"last checkpoint ({message[:200]})"
                )
        recorder.update(phase="failed", error=message, finished_at=runfiles.utcnow())
        return 1
    if phase == "cancelled":
        recorder.note(
            f"cancelled: `tuneport jobs resume {cfg.run_id}` continues from the last checkpoint"
        )
    recorder.update(phase=phase, finished_at=runfiles.utcnow())
    if recorder.main:
        print(f"{phase}: {run_dir}", flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
