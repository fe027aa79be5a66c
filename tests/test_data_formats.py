"""Importers and format detection: every input format, streaming, line numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tuneport.data import (
    FORMATS,
    Row,
    detect_format,
    from_alpaca,
    from_openai,
    from_sharegpt,
    from_sharegpt_preference,
    from_vertex,
    from_vertex_preference,
    load_records,
    read_records,
    reading,
)
from tuneport.data.rows import RowError, canonical_dict
from tuneport.errors import InputError
from tuneport.schemas import Example, Message, PreferenceExample

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


SAMPLES: dict[str, dict[str, Any]] = {
    "openai": CHAT,
    "openai-dpo": {
        "input": {"messages": [{"role": "user", "content": "Hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello"}],
        "non_preferred_output": [{"role": "assistant", "content": "Go"}],
    },
    "vertex": {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Yo"}]},
        ]
    },
    "vertex-preference": {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "completions": [
            {"score": 0, "completion": {"role": "model", "parts": [{"text": "Go"}]}},
            {"score": 1, "completion": {"role": "model", "parts": [{"text": "Hello"}]}},
        ],
    },
    "alpaca": {"instruction": "Add", "input": "2+2", "output": "4"},
    "sharegpt": {
        "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]
    },
    "sharegpt-preference": {
        "conversations": [{"from": "human", "value": "Hi"}],
        "chosen": {"from": "gpt", "value": "Hello"},
        "rejected": {"from": "gpt", "value": "Go"},
    },
    "canonical": {**canonical_dict(Example.model_validate(CHAT))},
}


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_detect_jsonl_and_array(fmt: str, tmp_path: Path) -> None:
    assert detect_format(_jsonl(tmp_path / "a.jsonl", [SAMPLES[fmt]] * 2)) == fmt
    array = tmp_path / "b.json"
    array.write_text(json.dumps([SAMPLES[fmt]] * 2, indent=2), encoding="utf-8")
    assert detect_format(array) == fmt
    assert len(load_records(array)) == 2
    assert set(FORMATS) >= set(SAMPLES)


def test_sharegpt_messages_variant_and_openai_same_shape(tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "function_call", "content": '{"name": "f", "arguments": {}}'},
        ]
    }
    assert detect_format(_jsonl(tmp_path / "a.jsonl", [row])) == "sharegpt"
    record = load_records(tmp_path / "a.jsonl")[0]
    assert isinstance(record, Example) and record.messages[1].tool_calls


def test_openai_import_keeps_everything() -> None:
    row = {
        "messages": [
            {"role": "system", "content": "S"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "r"},
            {"role": "assistant", "content": "done", "weight": 1, "name": "bot"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "parallel_tool_calls": False,
    }
    ex = from_openai(row)
    assert ex.messages[1].content == "ab"
    assert ex.messages[4].weight == 1 and ex.messages[4].name == "bot"
    assert ex.tools and ex.tools[0].function.name == "f" and ex.parallel_tool_calls is False


def test_openai_collects_all_findings() -> None:
    row = {"messages": [{"role": "bot", "content": "x"}, {"content": 3, "extra": 1}, "no"]}
    with pytest.raises(RowError) as info:
        from_openai(row)
    kinds = [f[0] for f in info.value.findings]  # (kind, message[, fix])
    assert kinds == [
        "unrecognized_role",
        "message_unrecognized_key",
        "message_missing_key",
        "content_type",
        "message_type",
    ]


def test_vertex_import_function_parts() -> None:
    row = {
        "systemInstruction": {"role": "system", "parts": [{"text": "S"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "w", "args": {"c": "P"}}},
                    {"functionCall": {"name": "w", "args": {"c": "R"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "w", "response": {"output": "21"}}},
                    {"functionResponse": {"name": "w", "response": {"t": 25}}},
                ],
            },
            {"role": "model", "parts": [{"text": "Warm"}, {"text": " both"}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "w", "description": "weather"}]}],
    }
    ex = from_vertex(row)
    roles = [m.role for m in ex.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant"]
    calls = ex.messages[2].tool_calls or []
    assert [c.id for c in calls] == ["call_0", "call_1"]
    assert [m.tool_call_id for m in ex.messages[3:5]] == ["call_0", "call_1"]
    assert ex.messages[3].content == "21" and json.loads(ex.messages[4].content or "") == {"t": 25}
    assert ex.messages[5].content == "Warm both"
    assert ex.tools and ex.tools[0].function.description == "weather"


def test_vertex_preference_scores() -> None:
    pref = from_vertex_preference(SAMPLES["vertex-preference"])
    assert pref.chosen.content == "Hello" and pref.rejected.content == "Go"
    bad = {
        **SAMPLES["vertex-preference"],
        "completions": SAMPLES["vertex-preference"]["completions"][:1],
    }
    with pytest.raises(RowError):
        from_vertex_preference(bad)


def test_alpaca_system_history_and_preference() -> None:
    ex = from_alpaca(
        {
            "instruction": "Q2",
            "input": "ctx",
            "output": "A2",
            "system": "S",
            "history": [["Q1", "A1"]],
        }
    )
    assert isinstance(ex, Example)
    assert [(m.role, m.content) for m in ex.messages] == [
        ("system", "S"),
        ("user", "Q1"),
        ("assistant", "A1"),
        ("user", "Q2\nctx"),
        ("assistant", "A2"),
    ]
    pref = from_alpaca({"instruction": "Q", "chosen": "good", "rejected": "bad"})
    assert isinstance(pref, PreferenceExample) and pref.chosen.content == "good"


def test_sharegpt_tools_string_and_function_calls() -> None:
    row = {
        "conversations": [
            {"from": "human", "value": "Recipe?"},
            {"from": "function_call", "value": '{"name": "search", "arguments": {"q": "rice"}}'},
            {"from": "observation", "value": '{"found": 1}'},
            {"from": "gpt", "value": "Found one"},
        ],
        "system": "S",
        "tools": '[{"name": "search", "description": "find", "parameters": {"type": "object"}}]',
    }
    ex = from_sharegpt(row)
    assert [m.role for m in ex.messages] == ["system", "user", "assistant", "tool", "assistant"]
    call = (ex.messages[2].tool_calls or [])[0]
    assert (
        json.loads(call.function.arguments) == {"q": "rice"}
        and ex.messages[3].tool_call_id == call.id
    )
    assert ex.tools and ex.tools[0].function.name == "search"
    assert from_sharegpt({**row, "tools": "[]"}).tools is None
    with pytest.raises(RowError):
        from_sharegpt({**row, "tools": "[not json"})


def test_sharegpt_preference_system_in_conversations() -> None:
    row = {**SAMPLES["sharegpt-preference"]}
    row["conversations"] = [{"from": "system", "value": "S"}, *row["conversations"]]
    pref = from_sharegpt_preference(row)
    assert [m.role for m in pref.prompt] == ["system", "user"]


def test_canonical_round_trip(tmp_path: Path) -> None:
    records = [
        Example(
            id="1",
            messages=[
                Message(role="user", content="é"),
                Message(role="assistant", content="ü", weight=0),
            ],
            metadata={"src": "x"},
        ),
        PreferenceExample(
            prompt=[Message(role="user", content="q")],
            chosen=Message(role="assistant", content="a"),
            rejected=Message(role="assistant", content="b"),
        ),
    ]
    path = _jsonl(tmp_path / "c.jsonl", [canonical_dict(r) for r in records])
    assert all(json.loads(line)["format"] == "tuneport/1" for line in path.read_text().splitlines())
    assert load_records(path) == records


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_delimited_tables(suffix: str, sep: str, tmp_path: Path) -> None:
    path = tmp_path / f"t{suffix}"
    path.write_text(f"question{sep}answer\nq1{sep}a1\nq2{sep}a2\n", encoding="utf-8")
    assert detect_format(path) == "table"
    rows = list(read_records(path))  # default mapping question/answer
    assert [r.line for r in rows] == [2, 3]
    assert rows[1].record == Example(
        messages=[Message(role="user", content="q2"), Message(role="assistant", content="a2")]
    )


def test_table_jsonl_with_map_and_missing_column(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "t.jsonl", [{"ask": "q", "say": "a", "n": 1}, {"ask": "q2"}])
    rows = list(
        read_records(path, column_map={"ask": "user", "say": "assistant", "n": "id"}, system="S")
    )
    assert rows[0].record and rows[0].record.id == "1"
    assert [m.role for m in rows[0].record.messages] == ["system", "user", "assistant"]  # type: ignore[union-attr]
    assert rows[1].record is None and rows[1].problems[0].kind == "missing_field"


def test_parquet_table_and_hf_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = tmp_path / "qa.parquet"
    pq.write_table(
        pa.table({"question": ["q"] * 3000, "answer": ["a"] * 3000}), table, row_group_size=1000
    )
    assert detect_format(table) == "table"
    rows = list(read_records(table))
    assert len(rows) == 3000 and rows[-1].line == 3000
    hf = tmp_path / "hf.parquet"
    pq.write_table(pa.table({"messages": [CHAT["messages"]] * 3}), hf)
    assert detect_format(hf) == "hf"
    assert load_records(hf)[0] == Example.model_validate(CHAT)


def test_hf_folder_round_trip(tmp_path: Path) -> None:
    from tuneport.data import export_records

    records = load_records(
        Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "preference.jsonl"
    )
    out = tmp_path / "pref.hf"
    export_records(records, "local", out)
    assert detect_format(out) == "hf"
    back = load_records(out)
    assert back == records
    with pytest.raises(InputError, match="not a Hugging Face dataset"):
        list(read_records(tmp_path))


def test_array_reader_small_chunks_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Elements straddling many chunk boundaries keep exact start lines."""
    monkeypatch.setattr(reading, "_CHUNK", 7)
    rows = [
        {"instruction": f"q{i}" * (i + 1), "output": "é" * i, "n": [True, None, 1.5e3]}
        for i in range(30)
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    got = list(reading.iter_json_array(path, file="a"))
    assert [r.value for r in got] == rows
    text = path.read_text(encoding="utf-8").splitlines()
    assert all(text[r.line - 1].strip() == "{" for r in got)


def test_array_reader_non_utf8_element(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(
        b'[\n{"instruction": "a", "output": "b"},\n{"instruction": "caf\xe9", "output": "x"}\n]'
    )
    rows: list[Row] = list(read_records(path))
    assert rows[0].problems == []
    assert rows[1].line == 3 and rows[1].problems[0].kind == "non_utf8"
    assert rows[1].record and rows[1].record.messages[0].content == "caf\ufffd"  # type: ignore[union-attr]


def test_array_with_bom_and_trailing_garbage(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'\xef\xbb\xbf[{"instruction": "a", "output": "b"}]\nxx')
    rows = list(read_records(path))
    kinds = [p.kind for r in rows for p in r.problems]
    assert kinds == ["bom", "json_syntax"] and rows[-1].line == 2


def test_unknown_format_names_keys(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "x.jsonl", [{"foo": 1, "bar": 2}])
    with pytest.raises(InputError, match="keys: bar, foo"):
        detect_format(path)
    with pytest.raises(InputError, match="unknown format 'xml'"):
        list(read_records(path, "xml"))


def test_hf_dataset_dict_folder_uses_train_split(tmp_path: Path) -> None:
    import datasets

    rows = {"messages": [CHAT["messages"]] * 2}
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows),
            "test": datasets.Dataset.from_dict({"messages": [CHAT["messages"]]}),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    assert detect_format(tmp_path / "dd") == "hf"
    assert len(load_records(tmp_path / "dd")) == 2


def test_csv_non_utf8_row_is_located(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"question,answer\nq1,a1\ncaf\xe9,a2\n")
    rows = list(read_records(path))
    assert rows[0].problems == []
    assert rows[1].line == 3 and [p.kind for p in rows[1].problems] == ["non_utf8"]


def test_importing_data_stays_light() -> None:
    """pyarrow and datasets load only when a table/HF file is read or written."""
    import subprocess
    import sys

    code = "import sys, tuneport.data; print(sorted({'pyarrow', 'datasets'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_JSONISH = [b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"\n", b"\r\n", b" ", b"\xef\xbb\xbf"]
_JSONISH += [b'"messages"', b'"role"', b'"user"', b'"content"', b"null", b"1", b"\xe9", b"\xff"]
_JSONISH += [b'"contents"', b'"parts"', b'"text"', b'"conversations"', b'"from"', b'"value"']


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_readers_never_crash_on_garbage(
    suffix: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Arbitrary JSON-ish bytes: rows with problems or an InputError, never another exception."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.validation_helpers import rules
    from tuneport.validation import validate_rows

    folder = tmp_path_factory.mktemp("fuzz")

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.sampled_from(_JSONISH), max_size=60), st.sampled_from([None, *FORMATS]))
    def check(chunks: list[bytes], fmt: str | None) -> None:
        path = folder / f"f{suffix}"
        path.write_bytes(b"".join(chunks))
        try:
            rows = list(read_records(path, fmt))
        except InputError:
            return
        validate_rows(rows, file="f", rules=rules("vertex"))
        for row in rows:
            assert row.record is not None or row.problems

    check()


def test_importers_never_crash_on_random_json(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Random JSON values shaped like each format's keys: importers report, never raise."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    keys = st.sampled_from(
        ["messages", "role", "content", "tool_calls", "tool_call_id", "weight", "function",
         "arguments", "name", "id", "contents", "parts", "text", "functionCall", "args",
         "functionResponse", "response", "completions", "score", "completion", "input",
         "preferred_output", "non_preferred_output", "conversations", "from", "value",
         "chosen", "rejected", "instruction", "output", "history", "system", "tools",
         "systemInstruction", "prompt", "format", "kind", "user", "assistant", "model"]
    )  # fmt: skip
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), keys, st.text(max_size=4))
    values = st.recursive(
        leaves,
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=4),
        max_leaves=25,
    )
    folder = tmp_path_factory.mktemp("fuzzjson")

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.dictionaries(keys, values, max_size=5), min_size=1, max_size=3),
           st.sampled_from(FORMATS))  # fmt: skip
    def check(rows: list[dict[str, Any]], fmt: str) -> None:
        path = folder / "f.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        got = list(read_records(path, fmt))
        assert len(got) == len(rows)
        for row in got:
            assert row.record is not None or row.problems

    check()
