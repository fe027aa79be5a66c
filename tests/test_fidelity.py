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
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
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
            "content": "You are a helpful assistant that can answer to questions about the weather.",
        },
        {"role": "user", "content": "What's the weather like in San Francisco?"},
    ]
    record = Example.model_validate({"messages": messages, "tools": [WEATHER_TOOL]})
    gpt4o = registry.counter_for("openai", "gpt-4o-mini")
    assert gpt4o.count(record) == 101
    assert TiktokenChatCounter("cl100k_base", tools=ToolTokenRule(func_init=10)).count(record) == 105
    assert registry.counter_for("openai", "gpt-4").count(record) == 105
    raw = TiktokenChatCounter("o200k_base")
    assert raw.count_raw({"messages": messages, "tools": [WEATHER_TOOL]}) == 101
    # bare function specs and a JSON-encoded list count as the importer reads them
    assert raw.count_raw({"messages": messages, "tools": [WEATHER_TOOL["function"]]}) == 101
    assert raw.count_raw({"messages": messages, "tools": json.dumps([WEATHER_TOOL])}) == 101
