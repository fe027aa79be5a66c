"""``tuneport plan``: every provider and model side by side, offline, without keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.estimate_helpers import estimate_file
from tuneport import tokens
from tuneport.cli.main import run
from tuneport.jobs.plan import plan
from tuneport.pricing.table import load_prices
from tuneport.schemas import JobConfig

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample" / "chat.jsonl"
PREFERENCE = ROOT / "fixtures" / "sample" / "preference.jsonl"


def test_plan_covers_every_tunable_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    table = load_prices()
    for entry in table.tunable():
        name = "(any local model)" if entry.model == "*" else entry.model
        assert name[:25] in out  # long hosted ids wrap (folded, never cut) in a narrow terminal
    assert "≈" in out  # vertex and local counts are approximate
    assert "±25%" in out and "own GPU" in out
    flat = " ".join(out.split())  # the footer wraps to the terminal
    assert "prices as of" in flat and "2026-11-23" in flat.split("prices as of", 1)[1]


def test_plan_json_matches_the_single_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", str(SAMPLE), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    assert [(r["provider"], r["model"]) for r in rows] == [
        (e.provider, e.model) for e in load_prices().tunable()
    ]
    for row in rows:
        for key in ("provider", "model", "valid", "problems", "tokens", "epochs", "cost_usd"):
            assert key in row
        if row["provider"] == "openai":
            cfg = JobConfig(provider="openai", model=row["model"], data=SAMPLE)
            est = estimate_file(SAMPLE, cfg)
            assert (row["tokens"], row["epochs"], row["billed_tokens"]) == (
                est.tokens,
                est.epochs,
                est.billed_tokens,
            )
            assert row["cost_usd"] == pytest.approx(est.cost_usd)
            assert row["exact"] is True
            assert row["valid"] is True  # the sample is valid for OpenAI
        elif row["provider"] == "vertex":
            assert row["exact"] is False and row["error_band"] == 0.25
            # a listed model without a price: counted, cost unknown (not "free")
            assert (row["cost_usd"] is None) is bool(row["cost_unknown"])
        elif row["provider"] in ("together", "fireworks"):
            # hosted LoRA: the base model's tokenizer is not cached here -> o200k plus the
            # chat template's tokens, ±30 % (±60 % where the template family is not known)
            unknown = "gpt-oss" in row["model"]
            assert row["exact"] is False and row["error_band"] == (0.6 if unknown else 0.3)
            if row["price_per_million_usd"] is not None:
                assert row["cost_usd"] == pytest.approx(
                    row["billed_tokens"] * row["price_per_million_usd"] / 1e6, abs=1e-6
                )
            assert row["epochs"] == 1 and row["unverified"] is True
        elif row["provider"] == "azure":
            # OpenAI's tokenizers; Azure's rates are not in the table: cost unknown, never $0
            assert row["exact"] is True and row["cost_usd"] is None and row["cost_unknown"]
            assert row["unverified"] is True
        else:
            assert row["provider"] == "local"
            assert row["cost_usd"] is None and row["price_per_million_usd"] is None
    # 26 examples: 3n = 78 < 100 -> min(25, 100 // 26) = 3 epochs at OpenAI
    assert {r["epochs"] for r in rows if r["provider"] == "openai"} == {3}


def test_plan_reports_invalid_data_per_provider(tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines()
    bad = json.loads(lines[0])
    bad["messages"] = [m for m in bad["messages"] if m["role"] != "assistant"]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([*lines, json.dumps(bad)]) + "\n")
    rows = plan(path)
    openai = [r for r in rows if r.provider == "openai"]
    assert openai and all(not r.valid for r in openai)
    assert all(r.problem_kinds.get("missing_assistant") == 1 for r in openai)
    assert all(r.examples == 27 for r in rows)


def test_plan_dpo_lists_only_models_with_preference_tuning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = plan(PREFERENCE, method="dpo")
    assert {(r.provider, r.model) for r in rows} == {
        (e.provider, e.model) for e in load_prices().tunable(method="dpo")
    }
    assert "gpt-4o" not in {r.model for r in rows if r.provider == "openai"}
    assert run(["plan", str(PREFERENCE), "--method", "dpo", "--provider", "openai"]) == 0
    out = capsys.readouterr().out
    assert "gpt-4.1-mini" in out and "gemini" not in out


def test_plan_runs_offline_from_an_empty_tiktoken_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tiktoken.load
    import tiktoken.registry

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})

    def no_download(url: str) -> bytes:
        raise AssertionError(f"download attempted: {url}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_download)
    tokens.encoding.cache_clear()
    try:
        assert run(["plan", str(SAMPLE), "--json"]) == 0
    finally:
        tokens.encoding.cache_clear()
    assert len(json.loads(capsys.readouterr().out)) == len(load_prices().tunable())


_NO_NETWORK = """
import socket, sys
def refuse(*a, **k):
    raise OSError("network disabled for this test")
socket.socket.connect = refuse
socket.getaddrinfo = refuse
sys.argv = ["tuneport", *sys.argv[1:]]
from tuneport.cli.main import main
main()
"""


def test_plan_end_to_end_fresh_machine_no_keys_no_network(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI", "GOOGLE", "GEMINI", "TIKTOKEN", "TUNEPORT"))
    }
    env["HOME"] = str(tmp_path / "home")
    env["TUNEPORT_HOME"] = str(tmp_path / "tuneport")
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    proc = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK, "plan", str(SAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "gpt-4.1-nano" in proc.stdout and "gemini-2.5-flash" in proc.stdout
    assert list((tmp_path / "tuneport" / "cache" / "tiktoken").iterdir())


def test_local_has_no_problems_with_the_sample(capsys: pytest.CaptureFixture[str]) -> None:
    """The local export keeps tool calls, results, names and weights, so validating for local
    flags none of them (plan used to show 2 problems for local on the sample)."""
    assert run(["plan", str(SAMPLE), "-p", "local", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["provider"] == "local" and row["valid"] is True
    assert row["problems"] == 0 and row["errors"] == 0
    assert run(["validate", str(SAMPLE), "-p", "local", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []


@pytest.mark.parametrize("command", [["plan", str(SAMPLE)], ["prices"]])
def test_rows_say_when_tuning_ended_or_ends_and_when_the_model_stops_working(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # gpt-4.1-nano's tuning ended 2026-10-23: its row once said only `yes` (the JSON knew)
    import io

    from rich.console import Console

    screen = io.StringIO()
    wide = Console(file=screen, width=200, highlight=False, soft_wrap=True, color_system=None)
    monkeypatch.setattr("tuneport.cli._console.out", wide)
    assert run([*command, "-p", "openai"]) == 0
    rows: dict[str, str] = {}  # a row and the lines its wrapping lifecycle cell continues on
    name = ""
    for line in screen.getvalue().splitlines():
        if " openai " in line:
            name = line.split()[1]
            rows[name] = line
        elif name and line.strip() and line.startswith(" " * 10):
            rows[name] += " " + line.strip()
        else:
            name = ""
    assert "tuning ended 2026-10-23" in rows["gpt-4.1-nano"]
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"):
        assert "2027-01-06" in rows[model] and "2027-01-14" in rows[model]  # OpenAI's wind-down
        assert "tuning end" in rows[model] and "working 2027-01-14" in rows[model]


def test_plan_json_carries_the_tuning_and_shutdown_dates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["plan", str(SAMPLE), "-p", "openai", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["gpt-4.1-nano"]["tuning_ends"] == "2026-10-23"
    assert rows["gpt-4o"]["tuning_ends"] == "2027-01-06"
    assert rows["gpt-4o"]["shutdown_date"] == "2027-01-14"
