"""Benchmark: `tuneport convert` memory does not grow with file size.

Generates chat datasets of 20k and 200k examples (OpenAI chat JSONL, and Alpaca as one JSON
array for the incremental array reader), converts each in its own subprocess and reads that
child's peak RSS from ``os.wait4``. The 200k/20k peak-RSS ratio must be ≤ 1.2.

    python bench/convert_memory.py            # writes bench/results/convert_memory.md
    python bench/convert_memory.py --quick    # 2k / 20k, no results file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work"
RESULTS = ROOT / "bench" / "results" / "convert_memory.md"
MAX_RATIO = 1.2
WORDS = [
    *("the", "a", "model", "data", "train", "token", "tune", "port"),
    *("chat", "user", "reply", "question", "answer", "fast", "small"),
]


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _chat(rng: random.Random, i: int) -> dict[str, object]:
    messages: list[dict[str, object]] = [{"role": "system", "content": "You are helpful."}]
    for turn in range(rng.randint(1, 3)):
        messages.append({"role": "user", "content": f"{i} " + _text(rng, 5, 40)})
        if rng.random() < 0.1:
            call = {
                "id": f"c{i}_{turn}",
                "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"q": i})},
            }
            messages.append({"role": "assistant", "tool_calls": [call]})
            messages.append(
                {"role": "tool", "tool_call_id": f"c{i}_{turn}", "content": _text(rng, 2, 8)}
            )
        messages.append({"role": "assistant", "content": _text(rng, 5, 80)})
    return {"messages": messages}


def generate(n: int) -> tuple[Path, Path]:
    """(chat JSONL, Alpaca JSON array) with ``n`` examples each; reused when present."""
    WORK.mkdir(parents=True, exist_ok=True)
    jsonl, array = WORK / f"chat_{n}.v2.jsonl", WORK / f"alpaca_{n}.json"
    rng = random.Random(n)
    if not jsonl.exists():
        with jsonl.open("w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps(_chat(rng, i)) + "\n")
    if not array.exists():
        with array.open("w", encoding="utf-8") as fh:
            fh.write("[\n")
            for i in range(n):
                row = {
                    "instruction": f"{i} " + _text(rng, 5, 30),
                    "input": "",
                    "output": _text(rng, 5, 80),
                }
                fh.write(("," if i else "") + json.dumps(row, indent=2) + "\n")
            fh.write("]\n")
    return jsonl, array


def convert(src: Path, target: str) -> tuple[float, float]:
    """Run one conversion in a child process: (wall seconds, peak RSS MiB of that child)."""
    out = WORK / f"{src.stem}.{target}.out"
    argv = [
        sys.executable,
        "-c",
        "from tuneport.cli.main import main; main()",
        "convert",
        str(src),
        "--to",
        target,
        "-o",
        str(out),
        "--force",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"convert {src} failed")
    return wall, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    small, large = (2_000, 20_000) if args.quick else (20_000, 200_000)
    rows: list[str] = []
    worst = 0.0
    for kind in ("jsonl", "array"):
        files = {n: generate(n)[0 if kind == "jsonl" else 1] for n in (small, large)}
        for target in ("openai", "vertex"):
            res = {n: convert(files[n], target) for n in (small, large)}
            ratio = res[large][1] / res[small][1]
            worst = max(worst, ratio)
            size = files[large].stat().st_size / 2**20
            name = f"{files[large].name.split('_')[0]} ({kind})"
            cells = [
                name,
                target,
                f"{res[small][0]:.1f} s",
                f"{res[large][0]:.1f} s",
                f"{large / res[large][0]:,.0f} ex/s",
                f"{size:.0f} MiB",
                f"{res[small][1]:.0f} MiB",
                f"{res[large][1]:.0f} MiB",
                f"{ratio:.2f}",
            ]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    a, b = f"{small // 1000}k", f"{large // 1000}k"
    verdict = "PASS" if worst <= MAX_RATIO else "FAIL"
    report = "\n".join(
        [
            "# convert memory benchmark",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
            f"({os.cpu_count()} CPUs, shared), Python {platform.python_version()}; "
            "`python bench/convert_memory.py`.",
            "",
            "Each conversion runs `tuneport convert IN --to TARGET` in its own process; peak RSS "
            f"is that child's `ru_maxrss` (os.wait4). {small:,} vs {large:,} examples.",
            "",
            f"| input | target | wall {a} | wall {b} | rate {b} | size {b} "
            f"| peak RSS {a} | peak RSS {b} | RSS ratio |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Worst RSS ratio {worst:.2f} (limit {MAX_RATIO}): **{verdict}**. Wall times are "
            "noisy: the CPUs were shared with other jobs; the RSS figures are what this "
            "benchmark checks.",
            "",
        ]
    )
    if not args.quick:
        RESULTS.write_text(report, encoding="utf-8")
    print(report)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
