"""Exporters: golden files, dropped-field reports, round-trip properties, atomic writing."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneport.data import (
    EXPORTERS,
    export_records,
    from_openai,
    from_openai_dpo,
    from_vertex,
    from_vertex_preference,
    load_records,
    to_local,
    to_openai,
    to_openai_dpo,
    to_vertex,
    to_vertex_preference,
)
from tuneport.errors import ConfigError, InputError
from tuneport.schemas import (
    Example,
    FunctionCall,
    FunctionSpec,
    Message,
    PreferenceExample,
    ToolCall,
    ToolSpec,
)

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "golden"
REGEN = os.environ.get("TUNEPORT_REGEN_GOLDEN") == "1"


def _golden_cases() -> list[tuple[str, str]]:
    return [(target, kind) for target in EXPORTERS for kind in ("chat", "preference")]


@pytest.mark.parametrize(("target", "kind"), _golden_cases())
def test_golden(target: str, kind: str) -> None:
    """Each exporter's output on a few hand-made records is pinned byte for byte.

    Regenerate with ``TUNEPORT_REGEN_GOLDEN=1`` and review the diff."""
    records = load_records(GOLDEN / f"input.{kind}.tuneport.jsonl")
    fn = EXPORTERS[target].exporters[kind]  # type: ignore[index]
    dropped: Counter[str] = Counter()
    lines = []
    for record in records:
        found: Counter[str] = Counter()
        lines.append(json.dumps(fn(record, found), ensure_ascii=False) + "\n")
        dropped.update(found.keys())  # examples affected, as ExportResult reports
    text = "".join(lines)
    report = json.dumps(dict(sorted(dropped.items())), indent=1) + "\n"
    out, rep = GOLDEN / f"{target}.{kind}.jsonl", GOLDEN / f"{target}.{kind}.dropped.json"
    if REGEN:
        out.write_text(text, encoding="utf-8")
        rep.write_text(report, encoding="utf-8")
    assert text == out.read_text(encoding="utf-8")
    assert report == rep.read_text(encoding="utf-8")


def test_golden_files_read_back() -> None:
    """The golden provider files are themselves importable and detected correctly."""
    from tuneport.data import detect_format

    expected = {
        "openai.chat": "openai",
        "openai.preference": "openai-dpo",
        "together.chat": "openai",
        "together.preference": "openai-dpo",
        "vertex.chat": "vertex",
        "vertex.preference": "vertex-preference",
        "canonical.chat": "canonical",
        "canonical.preference": "canonical",
        "local.chat": "hf",
        "local.preference": "hf",
    }
    for stem, fmt in expected.items():
        path = GOLDEN / f"{stem}.jsonl"
        assert detect_format(path) == fmt, stem
        assert load_records(path), stem


def test_vertex_drops_are_reported() -> None:
    record = Example(
        id="x",
        messages=[
            Message(role="system", content="S"),
            Message(role="user", content="u", name="bob"),
            Message(role="assistant", content="a", weight=0),
            Message(role="system", content="late"),
        ],
        parallel_tool_calls=False,
    )
    dropped: Counter[str] = Counter()
    row = to_vertex(record, dropped)
    assert row["systemInstruction"] == {"role": "system", "parts": [{"text": "S"}]}
    assert [c["role"] for c in row["contents"]] == ["user", "model"]
    assert dropped == Counter(
        id=1, name=1, weight=1, parallel_tool_calls=1, system_mid_conversation=1
    )


def test_openai_sft_carries_everything_but_bookkeeping() -> None:
    record = Example(
        id="x", metadata={"k": 1}, messages=[Message(role="user", content="u", name="n")]
    )
    dropped: Counter[str] = Counter()
    assert to_openai(record, dropped) == {
        "messages": [{"role": "user", "content": "u", "name": "n"}]
    }
    assert dropped == Counter(id=1, metadata=1)


def test_local_prompt_completion_split() -> None:
    record = Example(
        messages=[
            Message(role="system", content="S"),
            Message(role="user", content="q"),
            Message(role="assistant", content="a1"),
            Message(role="user", content="q2"),
            Message(role="assistant", content="a2"),
        ]
    )
    row = to_local(record)
    assert row["completion"] == [
        {
            "role": "assistant",
            "content": "a2",
            "weight": None,
            "tool_calls": None,
            "tool_call_id": None,
            "name": None,
        }
    ]
    assert row["prompt"] == row["messages"][:4]
    assert row["tools"] is None


def _records(n: int) -> Iterator[Example]:
    for i in range(n):
        yield Example(
            messages=[Message(role="user", content=f"q{i}"), Message(role="assistant", content="a")]
        )
        if i == 2:
            raise InputError("boom", where="f:3")


def test_export_is_atomic_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    with pytest.raises(InputError):
        export_records(_records(5), "openai", out)
    assert list(tmp_path.iterdir()) == []
    out.write_text("keep", encoding="utf-8")
    with pytest.raises(InputError):
        export_records(_records(5), "openai", out, force=True)
    assert out.read_text(encoding="utf-8") == "keep"
    with pytest.raises(ConfigError):
        export_records(_records(1), "openai", out)


def test_export_result_and_mixed_kinds(tmp_path: Path) -> None:
    chat = Example(
        messages=[Message(role="user", content="q"), Message(role="assistant", content="a")]
    )
    result = export_records([chat, chat], "vertex", tmp_path / "v.jsonl")
    assert result.examples == 2 and result.format == "vertex" and len(result.sha256) == 64
    pref = PreferenceExample(
        prompt=[Message(role="user", content="q")],
        chosen=Message(role="assistant", content="a"),
        rejected=Message(role="assistant", content="b"),
    )
    with pytest.raises(InputError, match="record 2 mixes chat and preference"):
        export_records([chat, pref], "openai", tmp_path / "m.jsonl")
    assert not (tmp_path / "m.jsonl").exists()


def test_local_export_is_a_datasets_folder(tmp_path: Path) -> None:
    import datasets

    chat = Example(
        messages=[Message(role="user", content="q"), Message(role="assistant", content="a")]
    )
    result = export_records([chat] * 3, "local", tmp_path / "d.hf")
    ds = datasets.load_from_disk(str(result.path))
    assert ds.column_names == ["messages", "prompt", "completion", "tools"] and len(ds) == 3
    assert ds[0]["completion"] == [
        {
            "role": "assistant",
            "content": "a",
            "weight": None,
            "tool_calls": None,
            "tool_call_id": None,
            "name": None,
        }
    ]
    assert ds[0]["tools"] is None and result.dropped == {}
    for target in EXPORTERS:
        with pytest.raises(InputError, match="no examples"):
            export_records([], target, tmp_path / f"e.{target}")
        assert not (tmp_path / f"e.{target}").exists()


# --- round-trip properties -------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20)
_json_obj = st.dictionaries(
    st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.booleans()), max_size=3
)


@st.composite
def _conversation(draw: st.DrawFn, *, openai_fields: bool) -> Example:
    counter = iter(range(10_000))
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(Message(role="system", content=draw(_text)))
    for _ in range(draw(st.integers(1, 4))):
        name = (
            draw(st.one_of(st.none(), st.text(min_size=1, max_size=5))) if openai_fields else None
        )
        messages.append(Message(role="user", content=draw(_text), name=name))
        if draw(st.booleans()):
            calls = [
                ToolCall(
                    id=f"id{next(counter)}",
                    function=FunctionCall(
                        name=draw(st.sampled_from(["f", "g"])),
                        arguments=json.dumps(draw(_json_obj)),
                    ),
                )
                for _ in range(draw(st.integers(1, 3)))
            ]
            content = draw(st.one_of(st.none(), _text))
            messages.append(Message(role="assistant", content=content, tool_calls=calls))
            messages += [
                Message(role="tool", tool_call_id=c.id, content=draw(st.text(max_size=10)))
                for c in calls
            ]
        weight = draw(st.sampled_from([None, 0, 1])) if openai_fields else None
        messages.append(Message(role="assistant", content=draw(_text), weight=weight))
    tools = draw(
        st.one_of(
            st.none(),
            st.lists(
                st.builds(
                    lambda n, d: ToolSpec(
                        function=FunctionSpec(name=n, description=d, parameters={"type": "object"})
                    ),
                    st.sampled_from(["f", "g"]),
                    st.one_of(st.none(), _text),
                ),
                min_size=1,
                max_size=2,
            ),
        )
    )
    parallel = draw(st.sampled_from([None, True, False])) if openai_fields else None
    return Example(messages=messages, tools=tools, parallel_tool_calls=parallel)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_conversation(openai_fields=True))
def test_openai_round_trip_is_lossless(record: Example) -> None:
    dropped: Counter[str] = Counter()
    assert from_openai(json.loads(json.dumps(to_openai(record, dropped)))) == record
    assert not dropped


def _gemini_view(record: Example) -> list[Any]:
    """What Gemini can carry: ids renumbered in order, arguments compared as JSON."""
    ids: dict[str, str] = {}
    view: list[Any] = []
    for m in record.messages:
        calls = []
        for c in m.tool_calls or []:
            ids[c.id] = f"call_{len(ids)}"
            calls.append((ids[c.id], c.function.name, json.loads(c.function.arguments)))
        content = None if m.tool_calls and not m.content else m.content
        view.append((m.role, content, calls, ids.get(m.tool_call_id or "")))
    return [view, record.tools]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_conversation(openai_fields=False))
def test_gemini_round_trip_is_lossless(record: Example) -> None:
    dropped: Counter[str] = Counter()
    back = from_vertex(json.loads(json.dumps(to_vertex(record, dropped))))
    assert _gemini_view(back) == _gemini_view(record)
    assert [c.id for m in back.messages for c in m.tool_calls or []] == [
        f"call_{i}" for i in range(sum(len(m.tool_calls or []) for m in record.messages))
    ]
    assert not dropped


@settings(max_examples=80, deadline=None)
@given(_conversation(openai_fields=False), _text, _text)
def test_preference_round_trips(chat: Example, good: str, bad: str) -> None:
    prompt = [m for m in chat.messages if m.role in ("system", "user")]
    prompt = [m for i, m in enumerate(prompt) if m.role == "user" or i == 0]
    record = PreferenceExample(
        prompt=prompt,
        chosen=Message(role="assistant", content=good),
        rejected=Message(role="assistant", content=bad),
    )
    assert from_openai_dpo(json.loads(json.dumps(to_openai_dpo(record)))) == record
    assert from_vertex_preference(json.loads(json.dumps(to_vertex_preference(record)))) == record


@settings(max_examples=100, deadline=None)
@given(
    _conversation(openai_fields=True),
    st.one_of(st.none(), st.text(max_size=5)),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
def test_canonical_round_trip_property(
    record: Example, ident: str | None, meta: dict[str, int]
) -> None:
    from tuneport.data import from_canonical, to_canonical

    full = record.model_copy(update={"id": ident, "metadata": meta})
    assert from_canonical(json.loads(json.dumps(to_canonical(full)))) == full


@settings(max_examples=60, deadline=None)
@given(_conversation(openai_fields=True))
def test_every_exporter_accepts_any_record(record: Example) -> None:
    """No exporter raises on a valid record; what it cannot carry is counted instead."""
    for target in EXPORTERS.values():
        dropped: Counter[str] = Counter()
        row = target.exporters["chat"](record, dropped)
        assert isinstance(row, dict) and all(n > 0 for n in dropped.values())


@pytest.mark.parametrize(
    ("target", "ext", "names"),
    [
        ("openai", None, ("train.openai.jsonl", "validation.openai.jsonl")),
        ("openai", "fireworks.jsonl", ("train.fireworks.jsonl", "validation.fireworks.jsonl")),
        ("canonical", "jsonl", ("train.jsonl", "validation.jsonl")),
    ],
)
def test_export_prepared_names_the_files_in_out_dir(
    tmp_path: Path, target: str, ext: str | None, names: tuple[str, str]
) -> None:
    from tuneport.progress import NullProgress
    from tuneport.providers import export_prepared
    from tuneport.schemas import JobConfig

    def records(n: int) -> list[Example]:
        return [
            Example(
                messages=[Message(role="user", content="q"), Message(role="assistant", content="a")]
            )
            for _ in range(n)
        ]

    valid = tmp_path / "valid.jsonl"
    export_records(records(2), "canonical", valid)
    cfg = JobConfig(provider="openai", model="m", data=valid, validation=valid)
    out = tmp_path / "out" / "run"  # made as needed
    prepared = export_prepared(
        records(3), cfg, NullProgress(), out, target=target, title="t", ext=ext
    )
    assert (prepared.training, prepared.validation) == (out / names[0], out / names[1])
    assert prepared.examples == 3 and prepared.training.is_file() and prepared.validation.is_file()
