"""Provider fidelity (issue 13): data the providers accept is read, what they reject is
reported, and exports carry what the providers' own types allow (see also test_contracts.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tuneport.cli.main import run
from tuneport.data.detect import detect_format
from tuneport.data.exporters import to_openai, to_openai_dpo, to_vertex
from tuneport.data.gemini_schema import from_gemini_schema, to_gemini_schema
from tuneport.data.importers import from_openai, from_openai_dpo
from tuneport.data.records import load_records
from tuneport.providers import registry
from tuneport.schemas import Example, Message, PreferenceExample
from tuneport.tokens.bpe import TiktokenChatCounter, ToolTokenRule
from tuneport.validation.validate import validate_rows

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                },
                "unit": {
                    "type": "string",
                    "description": "The unit of temperature to return",
                    "enum": ["celsius", "fahrenheit"],
                },
            },
            "required": ["location"],
        },
    },
}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _chat(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Question {i}?"},
            {"role": "assistant", "content": f"Answer {i}."},
        ],
        **extra,
    }


def _kinds(records: list[Any], provider: str) -> dict[str, str]:
    from tuneport.data.rows import Row

    rows = [Row(i + 1, r, []) for i, r in enumerate(records)]
    report = validate_rows(rows, file="t.jsonl", rules=registry.backend(provider).rules)
    return {p.kind: p.severity for p in report.problems if p.line is not None}


# --- 1. strict tools -------------------------------------------------------------------------


def test_strict_tool_is_read_and_kept_for_openai() -> None:
    tool = json.loads(json.dumps(WEATHER_TOOL))
    tool["function"]["strict"] = True
    record = from_openai(_chat(tools=[tool]))
    assert record.tools and record.tools[0].function.strict is True
    assert to_openai(record)["tools"][0]["function"]["strict"] is True
    dropped: Counter[str] = Counter()
    row = to_vertex(record, dropped)
    assert "strict" not in json.dumps(row["tools"]) and dropped["strict"] == 1


def test_strict_tool_file_validates_for_openai(tmp_path: Path) -> None:
    tool = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "strict": True}}
    path = _jsonl(tmp_path / "t.jsonl", [_chat(i, tools=[tool]) for i in range(12)])
    assert run(["validate", str(path), "--provider", "openai"]) == 0


# --- 8. DPO parallel_tool_calls ----------------------------------------------------------------


def test_dpo_parallel_tool_calls_survive_import_and_export() -> None:
    row = {
        "input": {
            "messages": [{"role": "user", "content": "q"}],
            "tools": [WEATHER_TOOL],
            "parallel_tool_calls": False,
        },
        "preferred_output": [{"role": "assistant", "content": "a"}],
        "non_preferred_output": [{"role": "assistant", "content": "b"}],
    }
    record = from_openai_dpo(row)
    assert record.parallel_tool_calls is False
    assert to_openai_dpo(record) == row


# --- 13. no name on tool messages ------------------------------------------------------------


def test_tool_message_is_exported_without_name() -> None:
    record = Example(
        messages=[
            Message(role="user", content="weather?"),
            Message(
                role="assistant",
                tool_calls=[
                    {"id": "c1", "function": {"name": "w", "arguments": "{}"}}  # type: ignore[list-item]
                ],
            ),
            Message(role="tool", content="sunny", tool_call_id="c1", name="w"),
            Message(role="assistant", content="Sunny."),
        ]
    )
    dropped: Counter[str] = Counter()
    tool_message = to_openai(record, dropped)["messages"][2]
    assert tool_message == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}
    assert dropped["name"] == 1


# --- 11. images, legacy function calling, whitespace -----------------------------------------

IMAGE_ROW = {
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                },
            ],
        },
        {"role": "assistant", "content": "A cat."},
    ]
}


def test_image_parts_are_read_and_written_back_for_openai() -> None:
    record = from_openai(IMAGE_ROW)
    assert record.messages[0].content == "What is in this picture?"
    assert to_openai(record) == IMAGE_ROW
    assert _kinds([record], "openai") == {}
    counter = TiktokenChatCounter("o200k_base")  # text counted, the image not
    assert counter.count_raw(IMAGE_ROW) == counter.count(record)


def test_image_parts_checked_per_provider() -> None:
    on_assistant = json.loads(json.dumps(IMAGE_ROW))
    on_assistant["messages"][1]["content"] = on_assistant["messages"][0]["content"]
    assert _kinds([from_openai(on_assistant)], "openai")["image_role"] == "error"
    assert _kinds([from_openai(IMAGE_ROW)], "vertex")["unsupported_field"] == "warning"
    dropped: Counter[str] = Counter()
    to_vertex(from_openai(IMAGE_ROW), dropped)
    assert dropped["image_url"] == 1
    pref = PreferenceExample(
        prompt=from_openai(IMAGE_ROW).messages[:1],
        chosen=Message(role="assistant", content="a"),
        rejected=Message(role="assistant", content="b"),
    )
    assert _kinds([pref], "openai")["image_unsupported"] == "error"


LEGACY_ROW = {
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_current_weather", "arguments": '{"location": "Paris"}'},
        },
        {"role": "function", "name": "get_current_weather", "content": "21C"},
        {"role": "assistant", "content": "It is 21C."},
    ],
    "functions": [WEATHER_TOOL["function"]],
}


def test_legacy_function_calling_is_read_as_tools() -> None:
    notes: list[tuple[str, str]] = []
    record = from_openai(LEGACY_ROW, None, notes)
    assistant, result = record.messages[1], record.messages[2]
    assert assistant.tool_calls and assistant.tool_calls[0].function.name == "get_current_weather"
    assert result.role == "tool" and result.tool_call_id == assistant.tool_calls[0].id
    assert record.tools and record.tools[0].function.name == "get_current_weather"
    assert {kind for kind, _ in notes} == {"legacy_functions"}
    assert _kinds([record], "openai") == {}
    counter = TiktokenChatCounter("o200k_base")
    assert counter.count_raw(LEGACY_ROW) == counter.count(record)


def test_legacy_file_validates_with_a_warning(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "legacy.jsonl", [LEGACY_ROW] + [_chat(i) for i in range(11)])
    assert run(["validate", str(path), "--provider", "openai", "--json"]) == 0


def test_whitespace_only_content_is_a_warning() -> None:
    row = _chat()
    row["messages"][1]["content"] = "  \n"
    assert _kinds([from_openai(row)], "openai") == {"blank_content": "warning"}
    row["messages"][1]["content"] = ""
    assert _kinds([from_openai(row)], "openai") == {"empty_content": "error"}


# --- 12. role typo ---------------------------------------------------------------------------


def test_role_typo_is_reported_at_its_line_not_read_as_sharegpt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [_chat(i) for i in range(12)]
    rows[4]["messages"][0]["role"] = "human"
    path = _jsonl(tmp_path / "typo.jsonl", rows)
    assert detect_format(path) == "openai"
    assert run(["validate", str(path), "--provider", "openai"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:5" in out and "did you mean 'user'?" in out


def test_sharegpt_messages_file_still_detected_by_majority(tmp_path: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "human", "content": f"q{i}"},
                {"role": "gpt", "content": f"a{i}"},
            ]
        }
        for i in range(5)
    ]
    rows.append(_chat())
    path = _jsonl(tmp_path / "sg.jsonl", rows)
    assert detect_format(path) == "sharegpt"
    assert len(load_records(path)) == 6


# --- 2. Vertex tool schemas --------------------------------------------------------------------


def test_json_schema_is_converted_for_gemini() -> None:
    from google.genai import types

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "city": {"type": ["string", "null"]},
            "mode": {"const": "fast"},
            "n": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "where": {"$ref": "#/$defs/place"},
        },
        "required": ["city"],
        "additionalProperties": False,
        "$defs": {"place": {"type": "object", "properties": {"lat": {"type": "number"}}}},
    }
    converted = to_gemini_schema(schema)
    assert not converted.problems
    assert converted.notes == ["parameters.n: oneOf read as anyOf (Gemini has no oneOf)"]
    types.Schema.model_validate(converted.schema)  # google-genai accepts it
    with pytest.raises(Exception):  # noqa: B017 - the raw schema is refused (ValidationError)
        types.Schema.model_validate({k: v for k, v in schema.items() if k != "properties"})
    back = from_gemini_schema(converted.schema)
    assert back["properties"]["city"] == {"type": ["string", "null"]}


def test_unconvertible_schema_fails_vertex_validation(tmp_path: Path) -> None:
    recursive = {
        "type": "function",
        "function": {
            "name": "tree",
            "parameters": {
                "type": "object",
                "properties": {"node": {"$ref": "#/$defs/node"}},
                "$defs": {
                    "node": {
                        "type": "object",
                        "properties": {"child": {"$ref": "#/$defs/node"}},
                    }
                },
            },
        },
    }
    record = from_openai(_chat(tools=[recursive]))
    assert _kinds([record], "vertex")["tool_schema"] == "error"
    assert "tool_schema" not in _kinds([record], "openai")
    one_of = json.loads(json.dumps(WEATHER_TOOL))
    one_of["function"]["parameters"]["properties"]["unit"] = {
        "oneOf": [{"type": "string"}, {"type": "integer"}]
    }
    assert _kinds([from_openai(_chat(tools=[one_of]))], "vertex") == {
        "tool_schema_changed": "warning"
    }


# --- 4. tool tokens ---------------------------------------------------------------------------


def test_tool_tokens_follow_the_cookbook_example() -> None:
    """How_to_count_tokens_with_tiktoken.ipynb: 101 prompt tokens on gpt-4o / gpt-4o-mini and
    105 on gpt-3.5-turbo / gpt-4 for this request, as counted by the OpenAI API."""
    messages = [
        {
            "role": "system",
            "content": "You are a helpful assistant that can answer to questions about the "
            "weather.",
        },
        {"role": "user", "content": "What's the weather like in San Francisco?"},
    ]
    record = Example.model_validate({"messages": messages, "tools": [WEATHER_TOOL]})
    gpt4o = registry.counter_for("openai", "gpt-4o-mini")
    assert gpt4o.count(record) == 101
    cl100k = TiktokenChatCounter("cl100k_base", tools=ToolTokenRule(func_init=10))
    assert cl100k.count(record) == 105
    assert registry.counter_for("openai", "gpt-4").count(record) == 105
    raw = TiktokenChatCounter("o200k_base")
    assert raw.count_raw({"messages": messages, "tools": [WEATHER_TOOL]}) == 101
    # bare function specs and a JSON-encoded list count as the importer reads them
    assert raw.count_raw({"messages": messages, "tools": [WEATHER_TOOL["function"]]}) == 101
    assert raw.count_raw({"messages": messages, "tools": json.dumps([WEATHER_TOOL])}) == 101


# --- 3. OpenAI bounds before upload ------------------------------------------------------------


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Any:
    from tests.fakes.openai_server import serving_openai

    with serving_openai(monkeypatch, "sk-test-KEY", poll_now=True) as server:
        yield server


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seed", "-1"], "seed: Input should be greater than or equal to 0, got -1"),
        (["--seed", "2147483648"], "seed 2147483648 is outside"),
        (["--suffix", "x" * 65], "suffix is 65 characters; OpenAI takes 1..64"),
        (["--suffix", ""], "suffix is 0 characters"),
        (["--batch-size", "257"], "batch_size 257 is outside 1..256"),
        (["--epochs", "51"], "epochs 51 is outside 1..50"),
        (
            ["--learning-rate-multiplier", "0"],
            "learning_rate_multiplier: Input should be greater than 0",
        ),
        (["--method", "dpo", "--set", "beta=2.5"], "beta 2.5 is outside (0, 2]"),
        (["--set", f"metadata.{'k' * 65}=v"], "metadata key(s) longer than 64"),
        (["--set", f"metadata.k={'v' * 513}"], "metadata value(s) longer than 512"),
    ],
)
def test_openai_bounds_refused_before_upload(
    fake_openai: Any,
    flags: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    fixtures_dir: Path,
) -> None:
    data = fixtures_dir / "sample" / (("preference" if "dpo" in flags else "chat") + ".jsonl")
    args = ["train", "--provider", "openai", "--data", str(data), "--model", "gpt-4.1-mini"]
    args += ["--yes", *flags]
    assert run(args) == 3
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not fake_openai.calls("POST", "/files") and not fake_openai.jobs


def test_openai_bounds_all_reported_at_once() -> None:
    from tuneport.providers.openai import OpenAIProvider

    provider = OpenAIProvider(api_key="sk-x", metadata={f"k{i}": "v" for i in range(16)})
    # seed and batch size bounds are JobConfig's own (every backend); OpenAI adds its own limits
    cfg = _job("openai", seed=2**31, batch_size=300, suffix="")
    found = [what for what, _ in provider.bound_problems(cfg)]
    assert len(found) == 4 and any("metadata holds more than 15 pairs" in f for f in found)


def _job(provider: str, **kw: Any) -> Any:
    from tuneport.schemas import JobConfig

    kw.setdefault("model", "gpt-4.1-mini" if provider == "openai" else "gemini-2.5-flash")
    kw.setdefault("data", Path("train.jsonl"))
    return JobConfig(provider=provider, **kw)


# --- 5. over-limit examples: a warning, billed at the limit ------------------------------------


def test_over_limit_examples_warn_and_are_billed_at_the_limit(tmp_path: Path) -> None:
    import dataclasses

    from tuneport.pricing.estimate import estimate_counts
    from tuneport.pricing.table import load_prices
    from tuneport.tokens.counter import Counts

    counts = Counts()
    for line, n in enumerate([100, 5_000, 300, 9_000], 1):
        counts.tokens.append(n)
        counts.lines.append(line)
    rules = dataclasses.replace(registry.backend("openai").rules, model_limits={"gpt-4.1": 1_000})
    price = load_prices().lookup("openai", "gpt-4.1")
    est = estimate_counts(
        counts,
        _job("openai", model="gpt-4.1", epochs=2),
        price=price,
        counter=TiktokenChatCounter("o200k_base"),
        rules=rules,
    )
    assert est.tokens == 14_400 and est.billable_tokens == 100 + 1_000 + 300 + 1_000
    assert est.truncated_examples == 2 and est.billed_tokens == 2 * 2_400
    assert est.cost_usd == pytest.approx(2 * 2_400 * 25 / 1e6)
    warning = next(w for w in est.warnings if "over the 1,000-token limit" in w)
    assert "2 examples" in warning and "lines 2, 4" in warning and "truncates" in warning
    assert "12,000 tokens per epoch not billed" in warning


def test_over_limit_example_is_a_validate_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [_chat(i) for i in range(12)]
    rows[3]["messages"][0]["content"] = "word " * 70_000
    path = _jsonl(tmp_path / "long.jsonl", rows)
    assert run(["validate", str(path), "-p", "openai", "-m", "gpt-4o-mini"]) == 0
    out = capsys.readouterr().out
    assert "token_limit" in out and f"{path}:4" in out and "valid" in out
    assert "OpenAI truncates them to the limit" in out


# --- 6. price table: current models, unknown models, tuning end dates --------------------------


def test_price_table_models_and_dates() -> None:
    from tuneport.pricing.table import load_prices

    table = load_prices()
    vertex = {e.model for e in table.tunable("vertex")}
    assert "gemini-2.0-flash" not in vertex  # retired 2026-06-01
    assert {"gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-3.1-flash-lite"} <= vertex
    for entry in table.entries():
        assert entry.source and entry.as_of, entry
        assert (entry.tuning_ends is None) is (entry.tuning_ends_source is None), entry
    flash = table.lookup("vertex", "gemini-3.5-flash")
    assert flash.training_per_million is None and flash.cost_unknown
    assert table.lookup("openai", "gpt-4.1-nano").tuning_ends == "2026-10-23"
    with pytest.raises(Exception, match=r"unknown vertex model 'gemini-2\.0-flash'"):
        table.lookup("vertex", "gemini-2.0-flash")
    unlisted = table.lookup("vertex", "gemini-9-flash", unlisted_ok=True)
    assert not unlisted.listed and unlisted.cost_unknown and unlisted.epoch_rule == "fixed"


def test_tuning_end_dates_warn_never_refuse() -> None:
    from datetime import date

    from tuneport.pricing.estimate import estimate_counts
    from tuneport.pricing.table import load_prices
    from tuneport.tokens.counter import Counts

    counts = Counts()
    counts.tokens.append(10)
    counts.lines.append(1)
    table = load_prices()

    def warnings(model: str, today: date) -> list[str]:
        est = estimate_counts(
            counts,
            _job("openai", model=model),
            price=table.lookup("openai", model),
            counter=TiktokenChatCounter("o200k_base"),
            rules=registry.backend("openai").rules,
            today=today,
        )
        return [w for w in est.warnings if "tuning" in w]

    (gone,) = warnings("gpt-4.1-nano", date(2026, 12, 1))
    assert "stopped tuning gpt-4.1-nano on 2026-10-23" in gone and "deprecations" in gone
    (soon,) = warnings("gpt-4.1-mini", date(2026, 12, 1))
    assert "stops tuning gpt-4.1-mini on 2027-01-06" in soon
    assert warnings("gpt-4.1-mini", date(2026, 6, 1)) == []

    def shutdown(model: str, today: date) -> list[str]:
        est = estimate_counts(
            counts,
            _job("openai", model=model),
            price=table.lookup("openai", model),
            counter=TiktokenChatCounter("o200k_base"),
            rules=registry.backend("openai").rules,
            today=today,
        )
        return [w for w in est.warnings if "working on" in w]

    (stops,) = shutdown("gpt-4o", date(2026, 12, 1))  # OpenAI's wind-down, with its source
    assert "gpt-4o and every model tuned from it stop working on 2027-01-14" in stops
    assert "deprecations" in stops
    assert (
        shutdown("gpt-4o", date(2026, 6, 1)) == []
        and shutdown("gpt-4.1-nano", date(2026, 12, 1)) == []
    )


def test_listed_model_without_price_refuses_max_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fixtures_dir: Path
) -> None:
    sample = fixtures_dir / "sample" / "chat.jsonl"
    args = ["estimate", str(sample), "-p", "vertex", "-m", "gemini-3.5-flash"]
    assert run([*args, "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert (
        est["cost_usd"] is None
        and est["tokens"] > 0
        and "no sft training price" in (est["cost_unknown"])
    )
    assert run([*args, "--max-cost", "100"]) == 5
    assert "cannot check the limit $100.00" in capsys.readouterr().err
    # with a user price it is priced like any other model
    prices = tmp_path / "p.toml"
    prices.write_text(
        '[providers.vertex.models."gemini-3.5-flash".sft]\ntraining_per_million = 4.0\n',
        encoding="utf-8",
    )
    assert run([*args, "--prices", str(prices), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cost_usd"] > 0


# --- 7. Vertex billing -------------------------------------------------------------------------


def test_vertex_preference_billing_counts_the_prompt_twice() -> None:
    counter = registry.counter_for("vertex", "gemini-2.5-flash")
    pair = PreferenceExample(
        prompt=[Message(role="user", content="Tell me a long story about a lighthouse keeper")],
        chosen=Message(role="assistant", content="Once upon a time"),
        rejected=Message(role="assistant", content="No"),
    )
    prompt = counter.count_text(pair.prompt[0].content or "")
    replies = counter.count_text("Once upon a time") + counter.count_text("No")
    assert counter.count(pair) == 2 * prompt + replies
    raw = {
        "input": {"messages": [{"role": "user", "content": pair.prompt[0].content}]},
        "preferred_output": [{"role": "assistant", "content": "Once upon a time"}],
        "non_preferred_output": [{"role": "assistant", "content": "No"}],
    }
    assert counter.count_raw(raw) == counter.count(pair)  # type: ignore[attr-defined]


def test_vertex_budget_guard_uses_the_higher_per_turn_figure(tmp_path: Path) -> None:
    from tuneport.errors import BudgetError
    from tuneport.jobs.quote import estimate
    from tuneport.pricing.budget import check_budget

    turns = []
    for i in range(3):
        turns += [
            {"role": "user", "content": f"question number {i} " * 20},
            {"role": "assistant", "content": f"answer number {i} " * 20},
        ]
    path = _jsonl(tmp_path / "multi.jsonl", [{"messages": turns}] * 20)
    est = estimate(_job("vertex", model="gemini-2.5-flash", data=path, epochs=1))
    assert est.budget_billed_tokens is not None and est.budget_note
    # per example, the model turns' records hold messages 0-1, 0-3 and 0-5, +8 tokens each
    counter = registry.counter_for("vertex", "gemini-2.5-flash")
    sizes = [counter.count_text(m["content"]) for m in turns]
    records = sum(sum(sizes[: k + 1]) + 8 for k in (1, 3, 5))
    assert est.billed_tokens == 20 * sum(sizes)
    assert est.budget_billed_tokens == 20 * records
    assert any("the budget guard uses" in w and "notebook" in w for w in est.warnings)
    assert est.cost_usd is not None and est.budget_cost_usd is not None
    between = (est.cost_usd + est.budget_cost_usd) / 2 / 1.25  # under the docs figure's band
    with pytest.raises(BudgetError, match="the higher figure: Google's older cost notebook"):
        check_budget(est, between)


# --- 9. size limits ------------------------------------------------------------------------------


def test_openai_large_file_goes_through_the_uploads_api(
    fake_openai: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from tuneport.progress import NullProgress
    from tuneport.providers import openai as openai_backend
    from tuneport.providers.base import PreparedData
    from tuneport.providers.openai import OpenAIProvider

    monkeypatch.setattr(openai_backend, "MAX_FILE_BYTES", 1_000)
    monkeypatch.setattr(openai_backend, "UPLOAD_PART_BYTES", 700)
    path = _jsonl(tmp_path / "big.jsonl", [_chat(i) for i in range(40)])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    prepared = PreparedData(training=path, sha256=digest, examples=40)
    provider = OpenAIProvider(sleep=lambda _s: None)
    uploaded = provider.upload(prepared, _job("openai"), NullProgress())
    assert not fake_openai.calls("POST", "/files")
    calls = [r.path for r in fake_openai.requests if r.path.startswith("/uploads")]
    n_parts = -(-path.stat().st_size // 700)
    assert calls[0] == "/uploads" and calls[-1].endswith("/complete")
    assert len(calls) == n_parts + 2  # create, the parts, complete
    assert fake_openai.file_bytes[uploaded.training] == path.read_bytes()
    again = OpenAIProvider(sleep=lambda _s: None).upload(prepared, _job("openai"), NullProgress())
    assert again.training == uploaded.training and again.reused  # found by content name


def test_openai_file_over_the_uploads_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneport.errors import InputError
    from tuneport.progress import NullProgress
    from tuneport.providers import openai as openai_backend

    monkeypatch.setattr(openai_backend, "MAX_UPLOAD_BYTES", 100)
    provider = openai_backend.OpenAIProvider(api_key="sk-x")
    records = [from_openai(_chat(i)) for i in range(12)]
    with pytest.raises(InputError, match="OpenAI takes fine-tuning files of at most"):
        provider.prepare(records, _job("openai"), tmp_path, NullProgress())


def test_vertex_dataset_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tuneport.errors import InputError
    from tuneport.progress import NullProgress
    from tuneport.providers.vertex import data
    from tuneport.providers.vertex.provider import VertexProvider

    records = [from_openai(_chat(i)) for i in range(12)]
    provider = VertexProvider(project="p")
    monkeypatch.setattr(data, "MAX_DATASET_BYTES", 100)
    with pytest.raises(InputError, match=r"at most .* GB"):
        provider.prepare(records, _job("vertex"), tmp_path / "a", NullProgress())
    monkeypatch.setattr(data, "MAX_DATASET_BYTES", 1 << 30)
    monkeypatch.setattr(data, "MAX_VALIDATION_EXAMPLES", 3)
    val = _jsonl(tmp_path / "val.jsonl", [_chat(i) for i in range(4)])
    with pytest.raises(InputError, match="validation set has 4 examples; Vertex takes at most 3"):
        provider.prepare(records, _job("vertex", validation=val), tmp_path / "b", NullProgress())
    assert provider.prepare(records, _job("vertex"), tmp_path / "c", NullProgress()).examples == 12


# --- 10. adapter sizes ---------------------------------------------------------------------------


def test_adapter_sizes_per_model() -> None:
    from tuneport.errors import ConfigError
    from tuneport.providers import vertex
    from tuneport.providers.vertex.provider import VertexProvider

    assert vertex.adapter_sizes("gemini-2.5-pro", "sft") == (1, 2, 4, 8)
    assert vertex.adapter_sizes("gemini-2.5-flash-lite", "sft") == (1, 2, 4, 8, 16)
    assert vertex.adapter_sizes("gemini-3.5-flash", "sft") is None  # unconfirmed
    for model, size in (("gemini-2.5-pro", 16), ("gemini-2.5-flash", 32)):
        provider = VertexProvider(project="p", adapter_size=size)
        with pytest.raises(ConfigError, match=f"adapter_size {size} is not available"):
            provider.check_config(_job("vertex", model=model))
    VertexProvider(project="p", adapter_size=8).check_config(_job("vertex"))
    # unconfirmed: a warning in the estimate, no refusal
    unconfirmed = _job("vertex", model="gemini-3.5-flash", options={"adapter_size": 32})
    VertexProvider(project="p", adapter_size=32).check_config(unconfirmed)
    (warning,) = [w for w in vertex.config_warnings(unconfirmed) if "adapter_size" in w]
    assert "not confirmed for gemini-3.5-flash" in warning


# --- 7. read back what the provider billed -------------------------------------------------------


def test_vertex_truncated_examples_are_read_back() -> None:
    from tests.fakes.vertex_server import BILLABLE_TOKENS, running_fake_vertex
    from tests.test_vertex_provider import UPLOADED, make

    with running_fake_vertex() as fake:
        fake.truncated_examples = 2
        provider = make(fake)
        ref = provider.launch(UPLOADED, _job("vertex"), "r1")
        provider.status(ref)
        done = provider.status(ref)
        assert done.raw["truncated_examples"] == 2
        assert done.trained_tokens == BILLABLE_TOKENS * (done.epochs or 0)
        events = [e for e in provider.events(ref) if e.level == "warning"]
        assert events and "truncated or dropped 2 example(s)" in events[0].message


def test_prices_shows_rule_sources_and_tuning_end_dates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["prices", "--provider", "vertex", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    facts = {r["fact"]: r for r in doc["rules"]["vertex"]}
    assert facts["min_examples"]["value"] == "1" and "2026" in facts["min_examples"]["source"]
    assert "adapter_size" in facts and "billing" in facts
    flash = next(e for e in doc["entries"] if e["model"] == "gemini-2.5-flash")
    assert flash["tuning_ends"] == "2026-10-20" and flash["tuning_ends_source"]
    assert run(["prices", "--provider", "openai"]) == 0
    out = capsys.readouterr().out
    assert "tuning ends 2026-10-23 (openai gpt-4.1-nano)" in out
    assert "rule (openai) request_bounds" in out and "token_limit:gpt-4.1 = 65536" in out
