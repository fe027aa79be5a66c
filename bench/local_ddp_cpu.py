"""CPU benchmark: tuneport's local SFT with 1 vs 2 processes (accelerate launch, DDP over gloo).

Three runs of the real code path (``LocalProvider.launch`` → trainer process(es)) on a small
random Llama shape, float32, no quantization, LoRA on all linear layers, the same per-process
batch (so 2 processes train twice the tokens per optimizer step):

* 1 process, 1 thread;
* 1 process, 2 threads (the whole 2-core machine for one process);
* 2 processes, 1 thread each (the same cores split into two ranks).

Throughput is tokens/s over the logged steps after the first (warm-up and loading excluded),
from rank 0's metrics, whose token count covers every rank.

    python bench/local_ddp_cpu.py --out bench/results/local_ddp_cpu.md

What it measures on a CPU is the overhead of the multi-process path (gradient all-reduce over
gloo, one process per rank), not GPU scaling: ``bench/local_gpu.py --processes N`` does that.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from local_gpu import Result, Settings, build_model, conversations, run_tuneport  # noqa: E402

SHAPE = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "intermediate_size": 688,
    "vocab_size": 2048,
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average: {load()}"


def threads_env(n: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="markdown report to write")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args(argv)

    s = Settings(
        steps=args.steps,
        batch=args.batch,
        seq_len=args.seq_len,
        rank=16,
        alpha=32,
        dropout=0.05,
        lr=2e-4,
        quantize="none",
        gradient_checkpointing=False,
    )
    before = uptime()
    results: list[tuple[str, Result]] = []
    with tempfile.TemporaryDirectory(prefix="tuneport-ddp-bench-") as tmp:
        work = Path(tmp)
        model = build_model(work / "model", SHAPE, s.seq_len)
        rows = conversations(s.batch * s.steps * 2, s.seq_len)
        plans = [
            ("1 process × 1 thread", 1, 1),
            ("1 process × 2 threads", 1, 2),
            ("2 processes × 1 thread", 2, 1),
        ]
        for i, (name, processes, threads) in enumerate(plans):
            start_load = load()
            result = run_tuneport(
                model,
                rows,
                s,
                work / f"run{i}",
                processes=processes,
                env=threads_env(threads),
                name=name,
            )
            results.append((f"{start_load} → {load()}", result))
            print(f"{name}: {result.tokens_per_s:,.0f} tokens/s", flush=True)
    after = uptime()

    base = results[0][1].tokens_per_s
    lines = [
        "# Local SFT on CPU: 1 vs 2 processes (DDP over gloo)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with "
        f"`python bench/local_ddp_cpu.py --out {args.out}` on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores.",
        "",
        "**The machine was shared with other work during the run** (several other jobs on the "
        "same 2 cores; see the load averages): absolute numbers are noisy and low.",
        "",
        f"- `uptime` before: `{before}`",
        f"- `uptime` after: `{after}`",
        "",
        f"| run | tokens/s (steps 2..{s.steps}) | vs 1 × 1 | steps | wall incl. load (s) "
        "| load average start → end |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for loads, r in results:
        lines.append(
            f"| {r.name} | {r.tokens_per_s:,.0f} | {r.tokens_per_s / base:.2f}× | {r.steps} "
            f"| {r.wall_s:.1f} | {loads} |"
        )
    lines += [
        "",
        f"Settings: random Llama shape {SHAPE}, float32, no quantization, LoRA r={s.rank} on all "
        f"linear layers, batch {s.batch} per process, sequence length {s.seq_len}, {s.steps} "
        "steps, no gradient checkpointing. The 2-process run trains 2× the tokens per step "
        "(batch per process).",
        "",
    ]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
