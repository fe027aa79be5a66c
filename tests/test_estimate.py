"""Estimates: the cookbook toy dataset by hand, validation tokens, warnings, budget, local QLoRA."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.estimate_helpers import estimate_file
from tuneport.cli.main import run
from tuneport.data import load_records
from tuneport.errors import BudgetError, ConfigError
from tuneport.pricing.budget import check_budget, resolve_max_cost, worst_case_cost
from tuneport.providers import registry
from tuneport.providers.local.sizing import ModelShape, qlora_memory_gib
from tuneport.schemas import Estimate, JobConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TOY = FIXTURES / "real" / "openai_toy_chat_fine_tuning.jsonl"
SAMPLE = FIXTURES / "sample" / "chat.jsonl"
PREFERENCE = FIXTURES / "sample" / "preference.jsonl"


def _cfg(
    provider: str = "openai", model: str = "gpt-4.1-nano-2025-04-14", **kw: object
) -> JobConfig:
    return JobConfig(provider=provider, model=model, data=TOY, **kw)  # type: ignore[arg-type]


# --- the acceptance example, by hand -----------------------------------------------------------
#
# OpenAI cookbook toy dataset, 5 examples, o200k_base, 3 tokens per message + encoded role and
# content + 3 reply priming:
#   line 1: system/user/assistant                         ->    43 tokens
#   line 2: system/user/assistant/user/assistant          ->   106 tokens
#   line 3: system/user/assistant                         ->    26 tokens
#   line 4: system/user/assistant                         ->    27 tokens
#   line 5: a long system/user/assistant example          -> 8,031 tokens
#   total                                                 -> 8,233 tokens
# epochs (auto, n = 5): 3n = 15 < 100 -> min(25, 100 // 5) = 20
# billed = 8,233 x 20 = 164,660 tokens; gpt-4.1-nano training price $1.50 / 1M
# cost = 164,660 x 1.50 / 1,000,000 = $0.24699
TOY_TOKENS = [43, 106, 26, 27, 8031]


def test_toy_dataset_hand_computation_library() -> None:
    from tests.test_tokens import cookbook_num_tokens

    lines = TOY.read_text().splitlines()
    assert [cookbook_num_tokens(json.loads(x)["messages"]) for x in lines] == TOY_TOKENS
    est = estimate_file(TOY, _cfg())
    assert est.examples == 5
    assert est.tokens == sum(TOY_TOKENS) == 8233
    assert est.epochs == min(25, 100 // 5) == 20
    assert est.billed_tokens == 8233 * 20 == 164_660
    assert est.price_per_million_usd == 1.50
    assert est.cost_usd == pytest.approx(8233 * 20 * 1.5 / 1e6) == pytest.approx(0.24699)
    assert est.exact and est.error_band is None
    assert est.price_as_of == "2026-11-23"
    # the record counter gives the same numbers as the fast raw-line path
    counter = registry.counter_for("openai", "gpt-4.1-nano")
    assert [counter.count(r) for r in load_records(TOY)] == TOY_TOKENS


def test_toy_dataset_hand_computation_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        [
            "estimate",
            str(TOY),
            "--provider",
            "openai",
            "--model",
            "gpt-4.1-nano-2025-04-14",
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    for key in (
        "provider",
        "model",
        "examples",
        "tokens",
        "epochs",
        "billed_tokens",
        "price_per_million_usd",
        "cost_usd",
        "exact",
    ):
        assert key in doc
    assert (doc["examples"], doc["tokens"], doc["epochs"], doc["billed_tokens"]) == (
        5,
        8233,
        20,
        164_660,
    )
    assert doc["price_per_million_usd"] == 1.5
    assert doc["cost_usd"] == pytest.approx(0.24699)
    assert doc["exact"] is True and doc["epochs_auto"] is True
    assert doc["token_counter"] == "tiktoken o200k_base"
    assert any("needs at least 10" in w for w in doc["warnings"])


def test_human_output_shows_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["estimate", str(TOY), "-p", "openai", "-m", "gpt-4.1-nano"]) == 0
    out = capsys.readouterr().out
    for text in ("8,233 tokens", "164,660", "$1.50 per 1M", "$0.25", "20 (auto: openai-cookbook"):
        assert text in out


# --- options and warnings ----------------------------------------------------------------------


def test_explicit_epochs_and_validation_tokens_not_billed(tmp_path: Path) -> None:
    est = estimate_file(SAMPLE, _cfg(model="gpt-4.1-mini", epochs=2), validation=TOY)
    counter = registry.counter_for("openai", "gpt-4.1-mini")
    assert est.validation_tokens == 8233
    assert est.epochs == 2
    assert est.billed_tokens == est.tokens * 2
    assert est.cost_usd == pytest.approx(est.tokens * 2 * 5.0 / 1e6)
    records = load_records(SAMPLE)
    assert est.tokens == sum(counter.count(r) for r in records)
    assert any("tools" in w for w in est.warnings)  # the sample has 2 tool-calling examples


def test_epochs_out_of_bounds_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["estimate", str(TOY), "-p", "openai", "-m", "gpt-4.1", "--epochs", "99"]) == 3
    assert "epochs must be 1..50" in capsys.readouterr().err


def test_examples_over_the_context_are_warned_with_their_lines() -> None:
    """The limit comes from the backend's rules (its descriptor), the one place validate reads."""
    import dataclasses

    from tuneport.providers import openai as openai_backend

    rules = dataclasses.replace(openai_backend.RULES, model_limits={"gpt-4.1-nano": 100})
    small = dataclasses.replace(openai_backend.BACKEND, rules=rules)
    with registry.registered("openai", small):
        est = estimate_file(TOY, _cfg())
    over = [w for w in est.warnings if "over the 100-token limit" in w]
    assert len(over) == 1
    assert (
        over[0].startswith("2 examples over")
        and "lines 2, 5" in over[0]
        and "largest 8,031" in over[0]
    )


def test_vertex_estimate_is_labelled_approximate(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["estimate", str(SAMPLE), "-p", "vertex", "-m", "gemini-2.5-flash"]) == 0
    out = capsys.readouterr().out
    assert "(±25%, approximate)" in out and "≈$" in out
    assert run(["estimate", str(SAMPLE), "-p", "vertex", "-m", "gemini-2.5-flash", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exact"] is False and doc["error_band"] == 0.25
    assert any("approximate" in w for w in doc["warnings"])


def test_dpo_estimate_counts_prompt_and_both_replies() -> None:
    cfg = JobConfig(provider="openai", model="gpt-4.1-mini", data=PREFERENCE, method="dpo")
    est = estimate_file(PREFERENCE, cfg)
    counter = registry.counter_for("openai", "gpt-4.1-mini")
    assert est.examples == 20
    assert est.tokens == sum(counter.count(r) for r in load_records(PREFERENCE))
    assert est.epochs == 5 and est.method == "dpo"


def test_non_jsonl_formats_go_through_the_importers() -> None:
    path = FIXTURES / "real" / "llamafactory_alpaca_en_demo.json"
    cfg = JobConfig(provider="openai", model="gpt-4o-mini", data=path)
    est = estimate_file(path, cfg)
    counter = registry.counter_for("openai", "gpt-4o-mini")
    records = load_records(path)
    assert est.examples == len(records) > 100
    assert est.tokens == sum(counter.count(r) for r in records)
    assert est.epochs == 3


def test_missing_data_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["estimate", str(tmp_path / "nope.jsonl"), "-p", "openai", "-m", "gpt-4.1"]) == 2


def test_unknown_model_is_counted_with_cost_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    """A model missing from the price table is not refused (the provider decides): tokens are
    counted with the family's tokenizer, the cost is unknown, and --max-cost refuses."""
    assert run(["estimate", str(TOY), "-p", "openai", "-m", "gpt-5-mini", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["cost_usd"] is None and est["tokens"] == 8_233 and est["exact"] is True
    assert "not in the price table" in est["cost_unknown"]
    assert any("cost is unknown" in w for w in est["warnings"])
    assert run(["estimate", str(TOY), "-p", "openai", "-m", "gpt-5-mini", "--max-cost", "5"]) == 5
    err = capsys.readouterr().err
    assert "cannot check the limit $5.00 set by --max-cost" in err and "--prices FILE" in err


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-9-unlisted"),
        ("vertex", "gemini-9-unlisted"),
        ("together", "meta-llama/Unlisted-9B-Instruct"),
        ("fireworks", "accounts/fireworks/models/unlisted-9b"),
    ],
)
def test_every_hosted_backend_counts_an_unlisted_model_with_cost_unknown(
    provider: str, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same rule for every hosted backend: the service decides whether a model can be
    tuned; tuneport counts it and says the price is unknown (never refuses, never says $0)."""
    assert run(["estimate", str(TOY), "-p", provider, "-m", model, "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["cost_usd"] is None and est["tokens"] > 0
    assert "not in the price table" in est["cost_unknown"]


# --- budget ------------------------------------------------------------------------------------


def _est(cost: float | None, exact: bool = True, band: float | None = None) -> Estimate:
    return Estimate(
        provider="openai",
        model="m",
        examples=1,
        tokens=1000,
        epochs=1,
        billed_tokens=1000,
        price_per_million_usd=None if cost is None else 1.0,
        cost_usd=cost,
        exact=exact,
        error_band=band,
    )


def test_check_budget() -> None:
    check_budget(_est(5.0), None)
    check_budget(_est(5.0), 5.0)
    check_budget(_est(None), 0.0)  # local: no money figure
    with pytest.raises(
        BudgetError, match=r"estimated \$5.00 exceeds the limit \$4.00 set by --max-cost"
    ):
        check_budget(_est(5.0), 4.0)
    # approximate: checked at the top of the band
    assert worst_case_cost(_est(4.0, exact=False, band=0.25)) == pytest.approx(5.0)
    with pytest.raises(BudgetError, match=r"up to \$5.00"):
        check_budget(_est(4.0, exact=False, band=0.25), 4.5)


def test_max_cost_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_max_cost() is None
    monkeypatch.setenv("TUNEPORT_MAX_COST", "12.5")
    assert resolve_max_cost() == 12.5
    assert resolve_max_cost(cfg=_cfg(max_cost=3.0)) == 3.0
    assert resolve_max_cost(1.0, _cfg(max_cost=3.0)) == 1.0
    monkeypatch.setenv("TUNEPORT_MAX_COST", "lots")
    with pytest.raises(ConfigError, match="TUNEPORT_MAX_COST"):
        resolve_max_cost()
    with pytest.raises(ConfigError):
        resolve_max_cost(-1.0)


def test_estimate_max_cost_exit_5(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["estimate", str(TOY), "-p", "openai", "-m", "gpt-4.1"]
    assert run([*args, "--max-cost", "10"]) == 0  # $4.12
    capsys.readouterr()
    assert run([*args, "--max-cost", "1"]) == 5
    err = capsys.readouterr().err
    assert "estimated $4.12 exceeds the limit $1.00 set by --max-cost" in err
    monkeypatch.setenv("TUNEPORT_MAX_COST", "2")
    assert run(args) == 5
    err = capsys.readouterr().err
    assert "set by TUNEPORT_MAX_COST" in err and "raise TUNEPORT_MAX_COST" in err


# --- local QLoRA -------------------------------------------------------------------------------

LLAMA3_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def test_param_count_of_a_known_model() -> None:
    shape = ModelShape.from_config(LLAMA3_8B)
    assert shape.params() == 8_030_261_248  # Meta-Llama-3-8B
    mem = qlora_memory_gib(shape, rank=16, batch=1, seq_len=512)
    # 4-bit 8B: ~3.6 GB of blocks + 2 GB of bf16 embeddings/head: a 12-24 GiB card fits
    assert 6 < mem < 12
    assert qlora_memory_gib(shape, rank=16, batch=4, seq_len=2048) > mem


def _safetensors_params(folder: Path) -> int:
    total = 0
    for file in folder.glob("*.safetensors"):
        with file.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for d in info["shape"]:
                    count *= d
                total += count
    return total


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fakes.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_local_estimate_from_the_models_config(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shape = ModelShape.from_config(json.loads((tiny_model / "config.json").read_text()))
    assert shape.params() == _safetensors_params(tiny_model)
    cfg = JobConfig(provider="local", model=str(tiny_model), data=SAMPLE)
    est = estimate_file(SAMPLE, cfg)
    assert est.exact  # the model's own tokenizer and chat template
    assert est.cost_usd is None and est.price_per_million_usd is None
    assert est.epochs == 3
    assert est.steps == -(-26 // (4 * 4)) * 3 == 6
    assert est.gpu_memory_gib is not None and 1.0 < est.gpu_memory_gib < 1.1
    code = run(["estimate", str(SAMPLE), "-p", "local", "-m", str(tiny_model), "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cost_usd"] is None and doc["steps"] == 6 and doc["gpu_memory_gib"]
    cfg2 = JobConfig(
        provider="local",
        model=str(tiny_model),
        data=SAMPLE,
        batch_size=2,
        options={"gradient_accumulation_steps": 1},
    )
    assert estimate_file(SAMPLE, cfg2).steps == 13 * 3
    large = JobConfig(
        provider="local", model=str(tiny_model), data=SAMPLE, options={"lora": "large"}
    )
    r64 = JobConfig(provider="local", model=str(tiny_model), data=SAMPLE, options={"lora_r": 64})
    gib = estimate_file(SAMPLE, large).gpu_memory_gib
    assert gib is not None and gib > est.gpu_memory_gib
    assert gib == estimate_file(SAMPLE, r64).gpu_memory_gib


def test_local_estimate_honours_max_steps(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Trainer runs exactly max_steps steps: the estimate's steps and trained tokens follow
    (a 500-step run on 26 examples trains ~250 epochs' worth, not 3)."""
    cfg = JobConfig(provider="local", model=str(tiny_model), data=SAMPLE)
    full = estimate_file(SAMPLE, cfg)
    per_epoch = 2  # ceil(26 / (4 × 4))
    assert full.billed_tokens == full.tokens * 3 and full.steps == per_epoch * 3
    long = estimate_file(SAMPLE, cfg.model_copy(update={"options": {"max_steps": 500}}))
    assert long.steps == 500 and long.billed_tokens == round(full.tokens * 500 / per_epoch)
    assert any("≈250 epochs" in w and f"{long.billed_tokens:,}" in w for w in long.warnings)
    short = estimate_file(SAMPLE, cfg.model_copy(update={"options": {"max_steps": 1}}))
    assert short.steps == 1 and short.billed_tokens == round(full.tokens / per_epoch)
    same = estimate_file(SAMPLE, cfg.model_copy(update={"options": {"max_steps": 6}}))
    assert same.billed_tokens == full.billed_tokens and not any(
        "max_steps" in w for w in same.warnings
    )
    # the CLI takes the option the way train does
    args = ["estimate", str(SAMPLE), "-p", "local", "-m", str(tiny_model), "--json"]
    assert run([*args, "--set", "max_steps=500"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["steps"] == 500 and doc["billed_tokens"] == long.billed_tokens


def test_local_estimate_without_the_model_at_hand(tmp_path: Path) -> None:
    cfg = JobConfig(provider="local", model=str(tmp_path / "absent"), data=SAMPLE)
    est = estimate_file(SAMPLE, cfg)
    assert not est.exact and est.gpu_memory_gib is None and est.cost_usd is None
    assert any("GPU memory not estimated" in w for w in est.warnings)


def test_price_override_flag_and_env_reach_the_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "p.toml"
    prices.write_text(
        '[providers.openai.models."gpt-4.1-nano"]\nas_of = "2027-02-02"\n'
        '[providers.openai.models."gpt-4.1-nano".sft]\ntraining_per_million = 3.0\n'
    )
    args = ["estimate", str(TOY), "-p", "openai", "-m", "gpt-4.1-nano", "--json"]
    assert run([*args, "--prices", str(prices)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["price_per_million_usd"] == 3.0 and doc["price_as_of"] == "2027-02-02"
    assert doc["cost_usd"] == pytest.approx(8233 * 20 * 3.0 / 1e6)
    monkeypatch.setenv("TUNEPORT_PRICES", str(prices))
    assert run(args) == 0
    assert json.loads(capsys.readouterr().out)["price_per_million_usd"] == 3.0


def test_missing_validation_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["estimate", str(TOY), "-p", "openai", "-m", "gpt-4.1", "--validation"]
    assert run([*args, str(tmp_path / "v.jsonl")]) == 2
    assert "v.jsonl: no such file" in capsys.readouterr().err


def test_unknown_method_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["estimate", str(TOY), "-p", "openai", "-m", "gpt-4.1", "--method", "rl"]) == 3
    assert "unknown method 'rl'" in capsys.readouterr().err
