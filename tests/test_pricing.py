"""The dated price table: content, lookup, epoch rules, overrides and error reporting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import PRICES
from tuneport.cli.main import run
from tuneport.errors import ConfigError
from tuneport.pricing.table import (
    PriceTableError,
    builtin_path,
    load_prices,
    openai_cookbook_epochs,
)
from tuneport.providers import registry

# the models PROVIDERS.md says the table must price
REQUIRED = [
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "gpt-4.1-nano"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("vertex", "gemini-2.5-pro"),
    ("vertex", "gemini-2.5-flash"),
    ("vertex", "gemini-2.5-flash-lite"),
]
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@pytest.mark.shipped_prices
def test_shipped_table_has_every_model_dated_and_sourced() -> None:
    """The shipped prices.toml's layout and provenance; no rate is pinned here (tests read
    theirs from fixtures/prices-test.toml), so a price change touches prices.toml only."""
    table = load_prices()
    assert table.files == [str(builtin_path())] and builtin_path().name == "prices.toml"
    for entry in table.entries():
        where = f"{entry.provider}/{entry.model} {entry.method}"
        assert DATE.fullmatch(entry.as_of), where
        assert entry.source.strip(), where
        assert not entry.paid or "https://" in entry.source, where
        assert entry.training_per_million is None or entry.training_per_million > 0, where
    for provider, model in REQUIRED:
        entry = table.lookup(provider, model)
        assert entry.training_per_million, (provider, model)
        assert entry.source.startswith("https://")
        assert entry.inference_input_per_million and entry.inference_output_per_million
        rules = registry.backend(provider).rules  # limits are the backend's, not prices
        assert rules.limit_for(model) and rules.recommended_examples >= 50
    # PROVIDERS.md marks the Vertex prices and the 4.1 example limit unverified
    assert all(e.unverified for e in table.tunable("vertex"))
    assert table.lookup("openai", "gpt-4.1").unverified
    # DPO exists for the 4.1 family only at OpenAI
    assert {e.model for e in table.tunable("openai", method="dpo")} == {
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
    }
    local = table.lookup("local", "/models/llama")
    assert local.training_per_million is None and local.epoch_rule == "fixed"


@pytest.mark.shipped_prices
def test_builtin_file_ships_inside_the_package() -> None:
    assert builtin_path().name == "prices.toml" and builtin_path().is_file()


def test_tests_read_the_fixture_price_table() -> None:
    """Every other test prices from fixtures/prices-test.toml (tests/conftest.py), whatever the
    shipped rates are; the figures they assert are this file's."""
    table = load_prices()
    assert table.files == [str(PRICES)]
    assert table.lookup("openai", "gpt-4.1-mini").training_per_million == 5.0
    assert table.lookup("vertex", "gemini-2.5-pro").training_per_million == 25.0


@pytest.mark.parametrize(
    ("model", "resolved"),
    [
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("ft:gpt-4.1-mini-2025-04-14:acme::B2x9", "gpt-4.1-mini"),
        ("ft:gpt-4o-mini-2024-07-18:acme:support:C1", "gpt-4o-mini"),
        ("gpt-4.1-2026-01-30", "gpt-4.1"),  # a newer dated snapshot of a known model
        ("gpt-4o", "gpt-4o"),
    ],
)
def test_lookup_resolves_aliases_snapshots_and_ft_ids(model: str, resolved: str) -> None:
    assert load_prices().lookup("openai", model).model == resolved


def test_lookup_vertex_resource_names() -> None:
    table = load_prices()
    assert table.lookup("vertex", "gemini-2.5-flash-001").model == "gemini-2.5-flash"
    assert table.lookup("vertex", "publishers/google/models/gemini-2.5-flash-lite").model == (
        "gemini-2.5-flash-lite"
    )


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_prices().lookup("openai", "gpt-9")
    text = str(info.value)
    assert "unknown openai model 'gpt-9'" in text
    for model in ("gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini"):
        assert model in text


def test_method_without_price_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"cannot be tuned with method 'dpo'.*gpt-4\.1-nano"):
        load_prices().lookup("openai", "gpt-4o", "dpo")
    with pytest.raises(ConfigError, match="no prices for provider 'bedrock'"):
        load_prices().lookup("bedrock", "x")


@pytest.mark.parametrize(
    ("n", "epochs"),
    [
        (1, 25),  # 3 < 100: min(25, 100)
        (5, 20),  # 15 < 100: min(25, 20)
        (10, 10),
        (33, 3),  # 99 < 100: min(25, 3)
        (34, 3),  # middle band
        (8333, 3),  # 24999
        (8334, 2),  # 25002 > 25000: max(1, 25000 // 8334)
        (12501, 1),
        (1_000_000, 1),
    ],
)
def test_openai_cookbook_epoch_rule(n: int, epochs: int) -> None:
    assert openai_cookbook_epochs(n) == epochs
    assert load_prices().lookup("openai", "gpt-4.1").auto_epochs(n) == epochs


def test_fixed_rule_and_epoch_bounds() -> None:
    table = load_prices()
    vertex = table.lookup("vertex", "gemini-2.5-flash")
    assert vertex.auto_epochs(7) == vertex.default_epochs == vertex.auto_epochs(70_000)
    assert table.lookup("openai", "gpt-4.1").resolve_epochs(5, 4) == 4
    with pytest.raises(ConfigError, match=re.escape("epochs must be 1..50")):
        table.lookup("openai", "gpt-4.1").resolve_epochs(5, 51)
    with pytest.raises(ConfigError, match="epochs must be"):
        table.lookup("openai", "gpt-4.1").resolve_epochs(5, 0)


OVERRIDE = """
[providers.openai.models."gpt-4.1-nano"]
as_of = "2027-01-02"
[providers.openai.models."gpt-4.1-nano".sft]
training_per_million = 2.0

[providers.openai.models."gpt-5-mini"]
aliases = ["gpt-5-mini-2026-08-01"]
source = "https://example.com/my-contract"
as_of = "2026-12-01"
[providers.openai.models."gpt-5-mini".sft]
training_per_million = 4.0

[providers.acme]
epoch_rule = "fixed"
default_epochs = 2
source = "contract 42"
as_of = "2026-10-10"
[providers.acme.models.m1.sft]
training_per_million = 1.0
"""


def test_override_file_replaces_and_extends(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(OVERRIDE)
    table = load_prices(path)
    nano = table.lookup("openai", "gpt-4.1-nano-2025-04-14")
    assert nano.training_per_million == 2.0 and nano.as_of == "2027-01-02"
    assert nano.source == "https://openai.com/api/pricing/"  # inherited, not lost
    assert nano.inference_output_per_million == 0.8
    assert table.lookup("openai", "gpt-5-mini-2026-08-01").training_per_million == 4.0
    assert table.lookup("openai", "gpt-5-mini").auto_epochs(5) == 20  # provider defaults
    assert table.lookup("acme", "m1").auto_epochs(1000) == 2
    assert table.lookup("openai", "gpt-4.1").training_per_million == 25.0
    assert table.files[-1] == str(path)


def test_override_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.toml"
    path.write_text(OVERRIDE)
    monkeypatch.setenv("TUNEPORT_PRICES", str(path))
    assert load_prices().lookup("openai", "gpt-4.1-nano").training_per_million == 2.0
    # an explicit path wins over the environment
    other = tmp_path / "o.toml"
    other.write_text('[providers.openai.models."gpt-4.1-nano".sft]\ntraining_per_million = 9.0\n')
    assert load_prices(other).lookup("openai", "gpt-4.1-nano").training_per_million == 9.0


BAD = """
[providers.openai]
epoch_rule = "sometimes"
[providers.openai.models."gpt-4.1".sft]
training_per_million = "cheap"
colour = "red"
[providers.vertex.models."gemini-2.5-flash"]
as_of = "yesterday"
"""


def test_every_error_in_a_price_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(PriceTableError) as info:
        load_prices(path)
    problems = info.value.problems
    assert len(problems) == 4
    assert all(p.startswith(f"{path}: providers.") for p in problems)
    joined = "\n".join(problems)
    assert "providers.openai.epoch_rule: " in joined and "unknown epoch rule" in joined
    assert 'providers.openai.models."gpt-4.1".sft.training_per_million' in joined
    assert 'providers.openai.models."gpt-4.1".sft.colour' in joined
    assert 'providers.vertex.models."gemini-2.5-flash".as_of' in joined
    assert info.value.exit_code == 3


def test_missing_required_keys_of_a_new_model_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    path.write_text("[providers.acme.models.m1.sft]\ntraining_per_million = 1.0\n")
    with pytest.raises(PriceTableError) as info:
        load_prices(path)
    assert info.value.problems == [
        f"{path}: providers.acme.models.m1.source: required (here or in provider)",
        f"{path}: providers.acme.models.m1.as_of: required (here or in provider)",
        f"{path}: providers.acme.models.m1.epoch_rule: required (here or in provider)",
    ]


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text("[providers\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_prices(bad)
    with pytest.raises(ConfigError, match="no such price file"):
        load_prices(tmp_path / "nope.toml")


# --- CLI ---------------------------------------------------------------------------------------


def test_prices_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["prices", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    models = {(e["provider"], e["model"], e["method"]) for e in doc["entries"]}
    assert ("openai", "gpt-4.1-nano", "sft") in models
    assert ("vertex", "gemini-2.5-flash", "dpo") in models
    nano = next(e for e in doc["entries"] if e["model"] == "gpt-4.1-nano")
    assert nano["as_of"] == "2026-11-23" and nano["source"].startswith("https://")
    assert "gpt-4.1-nano-2025-04-14" in nano["aliases"]


def test_prices_command_table_for_one_provider(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["prices", "--provider", "vertex"]) == 0
    out = capsys.readouterr().out
    assert "gemini-2.5-flash-lite" in out and "gpt-4.1" not in out
    assert "unverified" in out and "2026-11-23" in out
    assert "source (vertex): https://" in out


def test_prices_command_reports_each_bad_key_on_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    assert run(["prices", "--prices", str(path)]) == 3
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 4
    assert all(str(path) in ln for ln in lines)


def test_prices_command_unknown_provider(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["prices", "--provider", "bedrock"]) == 3
    assert "unknown provider 'bedrock'" in capsys.readouterr().err


# --- hostile price files: refused with exit 3, every problem listed ------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"providers = 5\n", ["providers: Input should be a valid dictionary"]),
        (
            b'[providers.openai.models."gpt-4.1-mini".sft]\ntraining_per_million = -3\n'
            b'[providers.openai.models."gpt-4.1-nano".sft]\ntraining_per_million = nan\n'
            b'[providers.openai.models."gpt-4.1".sft]\ntraining_per_million = inf\n'
            b'[providers.openai.models."gpt-4o"]\ninference_input_per_million = -1.0\n'
            b"[providers.openai]\nmin_epochs = 0\n",
            [
                '"gpt-4.1-mini".sft.training_per_million: Input should be greater than or equal',
                '"gpt-4.1-nano".sft.training_per_million: Input should be a finite number',
                '"gpt-4.1".sft.training_per_million: Input should be a finite number',
                "models.gpt-4o.inference_input_per_million: Input should be greater than or equal",
                "providers.openai.min_epochs: Input should be greater than or equal to 1",
            ],
        ),
        (b'[providers.openai.models]\n"gpt-4.1-mini" = 7\n', ['models."gpt-4.1-mini"']),
        (b"\xff\xfe[providers]\n", ["not UTF-8 text"]),
        (b"a = " + b"[" * 50_000 + b"]" * 50_000 + b"\n", ["nested too deeply"]),
    ],
)
def test_a_hostile_price_file_is_refused_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: bytes, expected: list[str]
) -> None:
    from tuneport.cli.main import run

    prices = tmp_path / "prices.toml"
    prices.write_bytes(text)
    sample = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
    code = run(
        ["estimate", str(sample), "-p", "openai", "-m", "gpt-4.1-mini", "--prices", str(prices)]
    )
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    for part in expected:
        assert part in err, part
    with pytest.raises(ConfigError):
        load_prices(prices)


def test_a_negative_price_cannot_slip_under_the_budget(tmp_path: Path) -> None:
    prices = tmp_path / "p.toml"
    prices.write_text('[providers.openai.models."gpt-4.1-mini".sft]\ntraining_per_million = -4.0\n')
    with pytest.raises(ConfigError, match="greater than or equal to 0"):
        load_prices(prices)


def test_a_device_is_not_read_as_a_price_file() -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_prices(Path("/dev/zero"))
