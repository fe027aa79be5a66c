"""The `local` export carries what the local trainer uses: per-turn weights and tool calls.

Canonical records go through ``export_records(..., "local")``, the HF folder is loaded back the
way the trainer loads it, and the trainer's own tokenization path turns it into labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.tiny_model import EOS, build_tiny_model
from tuneport.data import export_records
from tuneport.providers.local import template as T
from tuneport.providers.local.trainer import (
    load_dataset_dir,
    load_tokenizer,
    tokenize_sft_dataset,
)
from tuneport.schemas import Example, Message, ToolCall, ToolSpec

WEIGHTED = Example(
    messages=[
        Message(role="system", content="Answer briefly."),
        Message(role="user", content="hi"),
        Message(role="assistant", content="Hello there", weight=0),
        Message(role="user", content="what is the capital of France?"),
        Message(role="assistant", content="Paris", weight=1),
    ]
)
TOOLS = Example(
    messages=[
        Message(role="user", content="weather in Paris?"),
        Message(
            role="assistant",
            tool_calls=[
                ToolCall.model_validate(
                    {
                        "id": "call_1",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                )
            ],
        ),
        Message(role="tool", content="21 degrees", tool_call_id="call_1", name="get_weather"),
        Message(role="assistant", content="It is 21 degrees."),
    ],
    tools=[
        ToolSpec.model_validate(
            {
                "function": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            }
        )
    ],
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "data.hf"
    result = export_records([WEIGHTED, TOOLS], "local", out)
    assert result.examples == 2 and result.dropped == {}
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def bare_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No chat template: the trainer falls back to DEFAULT_CHAT_TEMPLATE, which renders tools."""
    return build_tiny_model(tmp_path_factory.mktemp("bare") / "model", chat_template=False)


def _labels_over(row: dict[str, list[int]], span: tuple[int, int]) -> list[int]:
    return row["labels"][span[0] : span[1]]


def test_hf_folder_keeps_weights_and_tool_fields(exported: Path) -> None:
    ds = load_dataset_dir(exported)
    assert ds.column_names == ["messages", "prompt", "completion", "tools"]
    weighted, tools = ds[0], ds[1]
    assert [m["weight"] for m in weighted["messages"]] == [None, None, 0, None, 1]
    assert weighted["tools"] is None
    call = tools["messages"][1]["tool_calls"]
    assert call == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert tools["messages"][2]["tool_call_id"] == "call_1"
    assert tools["messages"][2]["name"] == "get_weather"
    assert json.loads(tools["tools"])[0]["function"]["name"] == "get_weather"
    assert T.parse_tools(tools["tools"]) == json.loads(tools["tools"])
    cleaned = T.clean_messages(weighted["messages"])
    assert cleaned[2] == {"role": "assistant", "content": "Hello there", "weight": 0}


def test_weight_zero_turn_is_masked_through_the_trainer(exported: Path, tiny_dir: Path) -> None:
    tok, _, _ = load_tokenizer(tiny_dir)
    ds = load_dataset_dir(exported)
    stop_ids = T.stop_token_ids(tok)
    encoded = tokenize_sft_dataset(ds, tok, stop_ids, max_length=512)
    assert len(encoded) == 2
    row = encoded[0]
    messages = T.clean_messages(ds[0]["messages"])
    ids, spans = T.assistant_spans(tok, messages, tools=None, template=T.masking_template(tok))
    assert row["input_ids"] == ids and len(spans) == 2
    skipped, trained = _labels_over(row, spans[0]), _labels_over(row, spans[1])
    assert skipped and all(label == T.IGNORE_INDEX for label in skipped)
    assert trained == ids[spans[1][0] : spans[1][1]]
    assert tok.decode(ids[spans[0][0] : spans[0][1]]) == "Hello there" + EOS
    assert tok.decode(trained) == "Paris" + EOS
    # Only the weight-1 turn is trained: nothing outside it carries a label.
    labelled = [i for i, label in enumerate(row["labels"]) if label != T.IGNORE_INDEX]
    assert labelled == list(range(*spans[1]))


def test_tool_call_conversation_renders_calls_and_tools(exported: Path, bare_dir: Path) -> None:
    tok, _, source = load_tokenizer(bare_dir)
    assert source == "tuneport default"
    ds = load_dataset_dir(exported)
    encoded = tokenize_sft_dataset(ds, tok, T.stop_token_ids(tok), max_length=2048)
    row: dict[str, Any] = encoded[1]
    text = tok.decode(row["input_ids"])
    assert "### Tools:" in text and "Current weather" in text
    assert "21 degrees" in text
    trained = tok.decode(
        [
            t
            for t, label in zip(row["input_ids"], row["labels"], strict=True)
            if label != T.IGNORE_INDEX
        ]
    )
    # Both assistant turns are trained: the tool call (with its string arguments) and the answer.
    assert '"name": "get_weather"' in trained and "call_1" in trained
    assert "It is 21 degrees." in trained
    assert "weather in Paris?" not in trained and "Current weather" not in trained


def test_local_folder_reads_back_with_its_tools(tmp_path: Path) -> None:
    """canonical → local HF folder → canonical keeps tools, tool calls, ids and weights."""
    from tuneport.data import load_records

    out = tmp_path / "rt.hf"
    export_records([WEIGHTED, TOOLS], "local", out)
    weighted, tools = load_records(out)
    assert isinstance(weighted, Example) and isinstance(tools, Example)
    assert weighted.messages == WEIGHTED.messages
    assert weighted.tools is None
    assert tools.tools == TOOLS.tools
    assert [m.tool_calls for m in tools.messages] == [m.tool_calls for m in TOOLS.messages]
    assert tools.messages[2].tool_call_id == "call_1"
