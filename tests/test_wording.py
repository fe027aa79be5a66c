"""Wording seen by a new user (issue 19): each line says what it means, once, in English."""

from __future__ import annotations

import importlib.util
import logging
import tomllib
from pathlib import Path

import pytest

from tuneport.cli.main import run
from tuneport.schemas import Estimate

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"


def _estimate(**kw: object) -> Estimate:
    fields: dict[str, object] = {
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "examples": 10,
        "tokens": 1000,
        "epochs": 1,
        "billed_tokens": 1000,
        "price_per_million_usd": 5.0,
        "cost_usd": 0.005,
        "exact": True,
    }
    fields.update(kw)
    return Estimate.model_validate(fields)


def test_one_epoch_is_singular_and_local_tokens_are_trained_not_billed() -> None:
    from tuneport.cli._render import estimate_lines

    (first, *_rest) = estimate_lines(_estimate())
    assert "× 1 epoch = 1,000 billed tokens" in first
    assert "× 3 epochs = " in estimate_lines(_estimate(epochs=3, billed_tokens=3000))[0]
    local = _estimate(provider="local", model="m", price_per_million_usd=None, cost_usd=None)
    assert "1,000 trained tokens" in estimate_lines(local)[0]
    assert "billed" not in estimate_lines(local)[0]
    unknown = _estimate(price_per_million_usd=None, cost_usd=None, cost_unknown="no price")
    assert "billed tokens" in estimate_lines(unknown)[0]  # a hosted job bills, price or not


def test_the_estimate_table_says_trained_tokens_for_local(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tuneport.cli.estimate import _print_estimate

    local = _estimate(provider="local", model="m", price_per_million_usd=None, cost_usd=None)
    _print_estimate(local, "own tokenizer", False, "fixed")
    shown = capsys.readouterr().out
    assert "trained tokens" in shown and "billed tokens" not in shown
    _print_estimate(_estimate(), "o200k", False, "fixed")
    assert "billed tokens" in capsys.readouterr().out


def test_preference_weighting_is_not_said_on_chat_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Vertex counts preference prompts twice; the counter's label said so on SFT data too."""
    argv = ["estimate", "-p", "vertex", "-m", "gemini-2.5-flash"]
    assert run([*argv[:1], str(SAMPLE / "chat.jsonl"), *argv[1:]]) == 0
    assert "preference prompts" not in capsys.readouterr().out
    assert run([*argv[:1], str(SAMPLE / "preference.jsonl"), *argv[1:], "--method", "dpo"]) == 0
    assert "preference prompts ×2" in capsys.readouterr().out
    assert run(["plan", str(SAMPLE / "chat.jsonl"), "-p", "vertex"]) == 0
    assert "preference prompts" not in capsys.readouterr().out


def test_the_openai_notice_does_not_ask_for_a_base_url_that_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuneport.providers.openai import BACKEND, NOTICE

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert BACKEND.notice_text({}) == NOTICE
    assert "Set OPENAI_BASE_URL" in NOTICE
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    env = BACKEND.notice_text({})
    assert env is not None and "winding down" in env and "Set OPENAI_BASE_URL" not in env
    assert "set by OPENAI_BASE_URL" in env and "127.0.0.1" not in env
    monkeypatch.delenv("OPENAI_BASE_URL")
    setting = BACKEND.notice_text({"base_url": "http://127.0.0.1:9/v1"})
    assert setting is not None and "set by the base_url setting" in setting


def test_a_local_target_in_eval_says_why_there_is_no_money_figure() -> None:
    from tuneport.curate.stats import iter_input
    from tuneport.evaluate.run import EvalTarget, cases_from_records, estimate_cost

    held_out = ROOT / "fixtures" / "curate" / "heldout.jsonl"
    cases = cases_from_records(iter_input(held_out), source=str(held_out))
    local = EvalTarget(spec="local:abc", provider="local", model="local:abc")
    (line,) = estimate_cost(cases, [local], max_tokens=10).lines
    assert line.free and line.note == "runs on your own hardware"
    assert "no money figure" not in line.note  # shown as "no money figure (<note>)"


@pytest.mark.parametrize("command", [[], ["train"], ["eval"], ["jobs", "list"], ["plan"]])
def test_help_shows_what_each_option_takes(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """typer shows ``<bool>`` beside a flag (it takes no value) and ``<list[str]>`` beside a
    repeatable option; -h shows nothing for a flag and one value for a repeatable option."""
    monkeypatch.setenv("COLUMNS", "120")
    assert run([*command, "-h"]) == 0
    shown = capsys.readouterr().out
    assert "<bool>" not in shown and "<list[" not in shown
    assert "--help" in shown
    if command in (["train"], ["jobs", "list"]):
        assert "KEY=VALUE" in shown


def test_the_summary_names_every_hosted_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-h"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for text in (shown, project["description"]):
        for name in ("OpenAI", "Vertex AI", "Together AI", "Fireworks AI", "local"):
            assert name in text, (name, text)


def test_the_bitsandbytes_cpu_kernel_notice_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """bitsandbytes/backends/cpu/ops.py logs this at import on AVX512-BF16 CPUs when the
    optional `kernels` package cannot load its kernel (it falls back to its own), after
    `kernels` said (offline) that it skips the publisher check: the local backend drops those
    two lines; the loggers' other warnings still show."""
    import tuneport.providers.local as local

    sources = {  # the installed libraries still log these lines, under these logger names
        "bitsandbytes.backends.cpu.ops": "bitsandbytes/backends/cpu/ops.py",
        "kernels._internals.hf_hub": "kernels/_internals/hf_hub.py",
    }
    assert set(local.THIRD_PARTY_NOISE) == set(sources)
    for name, prefix in local.THIRD_PARTY_NOISE.items():
        package = importlib.util.find_spec(name.split(".")[0])
        assert package is not None and package.submodule_search_locations
        path = Path(next(iter(package.submodule_search_locations))).parent / sources[name]
        source = path.read_text(encoding="utf-8")
        assert prefix.split("'")[0] in source and "logging.getLogger(__name__)" in source
    caplog.set_level(logging.WARNING)
    logging.getLogger("bitsandbytes.backends.cpu.ops").warning(
        "Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure you "
        "already `pip install kernels` and the kernels >= 0.11.1",
        "untrusted",
    )
    logging.getLogger("kernels._internals.hf_hub").warning(
        "Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes' "
        "because Hugging Face Hub is in offline mode."
    )
    logging.getLogger("bitsandbytes.backends.cpu.ops").warning("another bitsandbytes warning")
    assert [r.getMessage() for r in caplog.records] == ["another bitsandbytes warning"]
