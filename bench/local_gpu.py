"""GPU benchmark: tuneport's local QLoRA SFT against a plain TRL SFTTrainer + PEFT script.

Both train the same randomly initialised model with the shape of TinyLlama-1.1B (hidden 2048,
22 layers, 32 heads, 4 KV heads, intermediate 5632, vocab 32000) on the same synthetic
conversations with identical settings: 4-bit nf4 + double quantization, bf16 compute (fp16 where
bf16 is missing), LoRA r=16 / alpha=32 / dropout 0.05 on all linear layers, gradient
checkpointing, paged 8-bit AdamW, assistant-only loss, the same batch size, sequence length and
number of steps. Every example is longer than the sequence length, so both see exactly
``batch × seq_len`` tokens per step.

tuneport runs through its real code path (``LocalProvider.prepare/launch`` → the trainer
process); the baseline runs as a second process of this script (``--baseline``). Both log
``(step, time, tokens, peak memory)`` per step in the same format; throughput is measured over
the steps after the first (warm-up excluded), peak memory is ``torch.cuda.max_memory_allocated``.

    python bench/local_gpu.py --out bench/results/local_gpu.md          # needs a CUDA GPU
    python bench/local_gpu.py --cpu-smoke --out /tmp/local_gpu_smoke.md # tiny shape, on CPU
    python bench/local_gpu.py --processes 4 --out bench/results/local_gpu_4.md  # 1 vs 4 GPUs

``--processes N`` compares tuneport on one GPU with tuneport on N GPUs (``--strategy``, default
ddp; batch per GPU, so N GPUs train N× the tokens per step): tokens/s of the whole run and per
GPU, and the peak memory of GPU 0.

``--cpu-smoke`` proves the script end to end on a tiny shape without quantization; its numbers
mean nothing about GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes.tiny_model (the offline tokenizer builder)

TINYLLAMA_SHAPE = {
    "hidden_size": 2048,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "intermediate_size": 5632,
    "vocab_size": 32000,
}
SMOKE_SHAPE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 512,
}


@dataclass(frozen=True)
class Settings:
    steps: int
    batch: int
    seq_len: int
    rank: int
    alpha: int
    dropout: float
    lr: float
    quantize: str  # "4bit" on CUDA, "none" for the CPU smoke run
    gradient_checkpointing: bool


@dataclass
class Result:
    name: str
    tokens_per_s: float
    peak_memory_gib: float
    steps: int
    final_loss: float | None
    wall_s: float


def build_model(folder: Path, shape: dict[str, int], max_len: int) -> Path:
    """Tokenizer from the offline tiny-model builder + a random model of ``shape``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.fakes.tiny_model import build_tiny_model

    build_tiny_model(folder)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    config = LlamaConfig(
        **{**shape, "vocab_size": max(shape["vocab_size"], len(tok))},
        max_position_embeddings=max(2048, max_len),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(str(folder))  # replaces the tiny weights and config
    return folder


def conversations(n: int, seq_len: int) -> list[dict[str, Any]]:
    """``n`` conversations whose assistant reply alone is longer than ``seq_len`` tokens."""
    words = ["the", "model", "reads", "ten", "tokens", "and", "answers", "a", "question"]
    reply_words = seq_len * 2  # ≥ 1 token per word with the byte-level BPE
    rows = []
    for i in range(n):
        reply = " ".join(words[(i + k) % len(words)] for k in range(reply_words))
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"question {i}: say something long"},
                    {"role": "assistant", "content": reply},
                ]
            }
        )
    return rows


def summarize(name: str, events: list[dict[str, Any]], wall_s: float) -> Result:
    steps = [e for e in events if "tokens" in e and "time" in e]
    if len(steps) < 2:
        raise SystemExit(f"{name}: fewer than 2 logged steps; use --steps ≥ 3")
    t0, t1 = datetime.fromisoformat(steps[0]["time"]), datetime.fromisoformat(steps[-1]["time"])
    elapsed = (t1 - t0).total_seconds()
    tokens = steps[-1]["tokens"] - steps[0]["tokens"]
    return Result(
        name=name,
        tokens_per_s=tokens / elapsed if elapsed > 0 else float("nan"),
        peak_memory_gib=max(float(e.get("memory_gib", 0.0)) for e in steps),
        steps=int(steps[-1]["step"]),
        final_loss=steps[-1].get("loss"),
        wall_s=wall_s,
    )


# --- tuneport: the real provider + trainer process ------------------------------------------


def run_tuneport(
    model: Path,
    rows: list[dict[str, Any]],
    s: Settings,
    work: Path,
    *,
    processes: int = 1,
    strategy: str = "ddp",
    env: dict[str, str] | None = None,
    name: str = "tuneport local",
) -> Result:
    """One tuneport run; ``processes`` > 1 goes through accelerate's launcher (``--batch`` is
    per process, so N processes train N× the tokens per step)."""
    from tuneport.progress import NullProgress
    from tuneport.providers.local import runfiles
    from tuneport.providers.local.provider import LocalProvider
    from tuneport.schemas import Example, JobConfig, JobState

    options = {
        "max_steps": s.steps,
        "logging_steps": 1,
        "save_steps": 10_000,
        "gradient_accumulation_steps": 1,
        "gradient_checkpointing": s.gradient_checkpointing,
        "quantize": s.quantize,
        "lora_r": s.rank,
        "lora_alpha": s.alpha,
        "lora_dropout": s.dropout,
        "target_modules": "all-linear",
        "max_length": s.seq_len,
        "learning_rate": s.lr,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
    }
    if processes > 1 or strategy != "ddp":
        options.update(processes=processes, strategy=strategy)
    provider = LocalProvider(home=work / "home", env=env or {})
    cfg = JobConfig(
        provider="local",
        model=str(model),
        data=work / "unused.jsonl",
        batch_size=s.batch,
        epochs=1,
        options=options,
    )
    records = [Example.model_validate(r) for r in rows]
    started = time.monotonic()
    prepared = provider.prepare(records, cfg, work / "prepared", NullProgress())
    job = provider.launch(provider.upload(prepared, cfg, NullProgress()), cfg, "bench")
    while not (status := provider.status(job)).state.terminal:
        time.sleep(0.5)
    wall = time.monotonic() - started
    if status.state is not JobState.SUCCEEDED:
        raise SystemExit(f"tuneport run failed: {status.error}")
    return summarize(name, runfiles.read_events(provider.run_dir(job)), wall)


# --- baseline: plain TRL + PEFT, identical settings -----------------------------------------


def baseline_main(model: Path, data: Path, out: Path, s: Settings) -> None:
    """The plain script (run in its own process): SFTTrainer + LoraConfig + BitsAndBytesConfig."""
    import torch
    from datasets import load_from_disk
    from peft import LoraConfig, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        TrainerCallback,
    )
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
    kwargs: dict[str, Any] = {"dtype": dtype or torch.float32}
    if s.quantize == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
    if cuda:
        kwargs["device_map"] = {"": 0}
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    lm = AutoModelForCausalLM.from_pretrained(str(model), **kwargs)
    lm.config.use_cache = False
    if s.quantize != "none":
        lm = prepare_model_for_kbit_training(
            lm,
            use_gradient_checkpointing=s.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )

    class Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                if cuda:
                    memory = torch.cuda.max_memory_allocated() / 2**30
                else:  # the same figure tuneport logs on CPU: the process's peak RSS
                    import resource

                    memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
                event = {
                    "step": state.global_step,
                    "loss": float(logs["loss"]),
                    "tokens": state.num_input_tokens_seen,
                    "memory_gib": memory,
                    "time": datetime.now(UTC).isoformat(),
                }
                with out.open("a") as fh:
                    fh.write(json.dumps(event) + "\n")

    trainer = SFTTrainer(
        model=lm,
        args=SFTConfig(
            output_dir=str(out.parent / "baseline-out"),
            max_steps=s.steps,
            per_device_train_batch_size=s.batch,
            gradient_accumulation_steps=1,
            learning_rate=s.lr,
            lr_scheduler_type="constant",
            optim="paged_adamw_8bit" if cuda else "adamw_torch",
            activation_checkpointing=s.gradient_checkpointing,
            gradient_checkpointing=s.gradient_checkpointing,
            activation_checkpointing_kwargs={"use_reentrant": False},
            gradient_checkpointing_kwargs={"use_reentrant": False},
            bf16=bool(cuda and dtype == torch.bfloat16),
            fp16=bool(cuda and dtype == torch.float16),
            use_cpu=not cuda,
            max_length=s.seq_len,
            assistant_only_loss=True,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            include_num_input_tokens_seen="non_padding",
        ),
        train_dataset=load_from_disk(str(data)),
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=s.rank,
            lora_alpha=s.alpha,
            lora_dropout=s.dropout,
            target_modules="all-linear",
            bias="none",
            task_type="CAUSAL_LM",
        ),
        callbacks=[Log()],
    )
    trainer.train()


def run_baseline(model: Path, rows: list[dict[str, Any]], s: Settings, work: Path) -> Result:
    from datasets import Dataset

    data = work / "baseline-data"
    Dataset.from_list(rows).save_to_disk(str(data))
    log = work / "baseline.jsonl"
    command = [
        sys.executable,
        __file__,
        "--baseline",
        json.dumps({"model": str(model), "data": str(data), "out": str(log), **asdict(s)}),
    ]
    started = time.monotonic()
    done = subprocess.run(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"baseline failed (exit {done.returncode})")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    return summarize("plain TRL + PEFT", events, wall)


# --- report ---------------------------------------------------------------------------------


def versions() -> str:
    import bitsandbytes
    import peft
    import torch
    import transformers
    import trl

    return (
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"peft {peft.__version__}, trl {trl.__version__}, bitsandbytes {bitsandbytes.__version__}"
    )


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return str(torch.cuda.get_device_name(0))
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def report(results: list[Result], s: Settings, shape: dict[str, int], smoke: bool) -> str:
    a, b = results
    ratio = a.tokens_per_s / b.tokens_per_s if b.tokens_per_s else float("nan")
    lines = [
        "# Local QLoRA SFT: tuneport vs plain TRL + PEFT",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {device_name()} "
        f"with `python bench/local_gpu.py{' --cpu-smoke' if smoke else ''}`.",
        "",
    ]
    if smoke:
        lines += [
            "**CPU smoke run on a tiny shape: checks the script, says nothing about GPUs.**",
            "",
        ]
    lines += [
        "| | tuneport local | plain TRL + PEFT |",
        "|---|---:|---:|",
        f"| tokens/s (steps 2..{s.steps}) | {a.tokens_per_s:,.0f} | {b.tokens_per_s:,.0f} |",
        f"| peak {'RSS' if smoke else 'GPU'} memory (GiB) | {a.peak_memory_gib:.2f} "
        f"| {b.peak_memory_gib:.2f} |",
        f"| steps | {a.steps} | {b.steps} |",
        f"| final loss | {a.final_loss:.4f} | {b.final_loss:.4f} |"
        if a.final_loss is not None and b.final_loss is not None
        else "| final loss | - | - |",
        f"| wall time incl. load (s) | {a.wall_s:.1f} | {b.wall_s:.1f} |",
        "",
        f"tuneport / baseline throughput: {ratio:.3f}",
        "",
        "Settings (identical for both): "
        f"model shape {json.dumps(shape)} with random weights; "
        f"quantization {'4-bit nf4, double quant' if s.quantize == '4bit' else s.quantize}; "
        f"LoRA r={s.rank} alpha={s.alpha} "
        f"dropout={s.dropout} on all linear layers; batch {s.batch}; sequence length "
        f"{s.seq_len}; {s.steps} steps; lr {s.lr}; gradient checkpointing "
        f"{s.gradient_checkpointing}; assistant-only loss.",
        "",
        f"Versions: {versions()}.",
        "",
    ]
    return "\n".join(lines)


def report_gpus(
    results: list[Result], s: Settings, shape: dict[str, int], n: int, strategy: str
) -> str:
    """1 GPU vs ``n`` GPUs (tuneport both): tokens/s of the whole run, peak memory of GPU 0."""
    one, many = results
    lines = [
        f"# Local QLoRA SFT on 1 vs {n} GPUs ({strategy})",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {n}× {device_name()} with "
        f"`python bench/local_gpu.py --processes {n} --strategy {strategy}`.",
        "",
        f"| | 1 GPU | {n} GPUs |",
        "|---|---:|---:|",
        f"| tokens/s, all GPUs (steps 2..{s.steps}) | {one.tokens_per_s:,.0f} "
        f"| {many.tokens_per_s:,.0f} |",
        f"| tokens/s per GPU | {one.tokens_per_s:,.0f} | {many.tokens_per_s / n:,.0f} |",
        f"| peak GPU memory per GPU (rank 0, GiB) | {one.peak_memory_gib:.2f} "
        f"| {many.peak_memory_gib:.2f} |",
        f"| steps | {one.steps} | {many.steps} |",
        f"| wall time incl. load (s) | {one.wall_s:.1f} | {many.wall_s:.1f} |",
        "",
        f"Scaling: {many.tokens_per_s / one.tokens_per_s:.2f}× the tokens/s of one GPU "
        f"(ideal {n}×).",
        "",
        f"Settings: model shape {json.dumps(shape)} with random weights; 4-bit nf4; LoRA "
        f"r={s.rank} on all linear layers; batch {s.batch} per GPU (so {n}× the tokens per step "
        f"on {n} GPUs); sequence length {s.seq_len}; {s.steps} steps; gradient checkpointing "
        f"{s.gradient_checkpointing}.",
        "",
        f"Versions: {versions()}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="markdown table to write")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny shape on CPU: check the script only"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="N > 1: tuneport on 1 vs N GPUs (tokens/s and peak memory per GPU)",
    )
    parser.add_argument("--strategy", choices=("ddp", "fsdp", "deepspeed"), default="ddp")
    parser.add_argument("--baseline", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.baseline:  # the child process of run_baseline
        spec = json.loads(args.baseline)
        paths = {k: Path(spec.pop(k)) for k in ("model", "data", "out")}
        baseline_main(paths["model"], paths["data"], paths["out"], Settings(**spec))
        return 0

    if args.out is None:
        parser.error("--out is required")
    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        print(
            "error: this benchmark needs a CUDA GPU (torch.cuda.is_available() is False); "
            "run with --cpu-smoke to check the script on a tiny shape",
            file=sys.stderr,
        )
        return 2
    smoke = args.cpu_smoke
    if args.processes > 1 and (smoke or torch.cuda.device_count() < args.processes):
        print(
            f"error: --processes {args.processes} needs {args.processes} CUDA GPUs "
            f"(this machine has {torch.cuda.device_count()}); the CPU comparison is "
            "bench/local_ddp_cpu.py",
            file=sys.stderr,
        )
        return 2
    shape = SMOKE_SHAPE if smoke else TINYLLAMA_SHAPE
    settings = Settings(
        steps=min(args.steps, 4) if smoke else args.steps,
        batch=2 if smoke else args.batch,
        seq_len=64 if smoke else args.seq_len,
        rank=args.rank,
        alpha=2 * args.rank,
        dropout=0.05,
        lr=2e-4,
        quantize="none" if smoke else "4bit",
        gradient_checkpointing=True,
    )
    with tempfile.TemporaryDirectory(prefix="tuneport-bench-") as tmp:
        work = Path(tmp)
        model = build_model(work / "model", shape, settings.seq_len)
        n = args.processes
        rows = conversations(settings.batch * settings.steps * n, settings.seq_len)
        if n > 1:
            results = [
                run_tuneport(model, rows, settings, work / "one", name="1 GPU"),
                run_tuneport(
                    model,
                    rows,
                    settings,
                    work / "many",
                    processes=n,
                    strategy=args.strategy,
                    name=f"{n} GPUs",
                ),
            ]
            text = report_gpus(results, settings, shape, n, args.strategy)
        else:
            results = [
                run_tuneport(model, rows, settings, work / "tuneport"),
                run_baseline(model, rows, settings, work),
            ]
            text = report(results, settings, shape, smoke)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
