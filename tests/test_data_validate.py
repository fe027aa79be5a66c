"""Validation rules per provider: each check, the numbers, token limits, duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.validation_helpers import rules
from tuneport.data import Row
from tuneport.data.rows import KINDS
from tuneport.errors import ConfigError
from tuneport.providers import registry
from tuneport.schemas import (
    Example,
    FunctionCall,
    Message,
    PreferenceExample,
    Report,
    ToolCall,
)
from tuneport.tokens import CharCounter
from tuneport.validation import validate_file, validate_rows


def _m(role: str, content: str | None = "x", **kw: object) -> Message:
    return Message(role=role, content=content, **kw)  # type: ignore[arg-type]


def _ok(i: int = 0) -> Example:
    return Example(messages=[_m("user", f"q{i}"), _m("assistant", f"a{i}")])


def _report(records: list[Example | PreferenceExample], provider: str, **kw: object) -> Report:
    rows = [Row(i + 1, r, []) for i, r in enumerate(records)]
    return validate_rows(rows, file="f.jsonl", rules=rules(provider), **kw)  # type: ignore[arg-type]


def _kinds(report: Report, line: int | None = 1) -> set[str]:
    return {p.kind for p in report.problems if p.line == line}


def _call(cid: str, args: str = "{}") -> ToolCall:
    return ToolCall(id=cid, function=FunctionCall(name="f", arguments=args))


def test_every_kind_has_a_fix_hint() -> None:
    assert all(k.fix and k.severity in ("error", "warning") for k in KINDS.values())


def test_rules_are_data_with_sources() -> None:
    """Each backend's rules live in its descriptor, each with its source."""
    by_name = {name: registry.backend(name).rules for name in ("openai", "vertex", "local")}
    assert (by_name["openai"].min_examples, by_name["openai"].token_limit) == (10, 65_536)
    # current Vertex docs give no minimum (they recommend 100; 16 was Gemini 1.0/1.5's)
    assert (by_name["vertex"].min_examples, by_name["vertex"].recommended_examples) == (1, 100)
    assert by_name["vertex"].token_limit == 131_072
    # OpenAI truncates and Vertex truncates/drops over-limit examples: warnings, not errors
    assert by_name["openai"].token_limit_severity == by_name["vertex"].token_limit_severity
    assert by_name["openai"].token_limit_severity == "warning"
    for found in (by_name["openai"], by_name["vertex"]):  # each number names its source
        for fact in ("min_examples", "recommended_examples", "token_limit"):
            assert "20" in found.source_of(fact)  # a date
    # local: the trainer's max_length default, as a warning (it truncates)
    assert (by_name["local"].token_limit, by_name["local"].token_limit_severity) == (
        2048,
        "warning",
    )
    assert all(r.source for r in by_name.values())


@pytest.mark.parametrize(
    ("messages", "kind"),
    [
        ([_m("user")], "missing_assistant"),
        ([_m("system"), _m("assistant")], "missing_user"),
        ([_m("user", "  \n"), _m("assistant")], "blank_content"),
        ([_m("user", ""), _m("assistant")], "empty_content"),
        (
            [_m("user"), _m("assistant", None, tool_calls=[_call("a")]), _m("tool")],
            "tool_message_id",
        ),
        (
            [
                _m("user"),
                _m("assistant", None, tool_calls=[_call("a")]),
                _m("tool", tool_call_id="b"),
            ],
            "tool_message_id",
        ),
        (
            [_m("user"), _m("assistant", None, tool_calls=[_call("a"), _call("a")])],
            "duplicate_tool_call_id",
        ),
        ([_m("user"), _m("assistant", None, tool_calls=[_call("a", "{bad")])], "tool_arguments"),
        ([_m("user", weight=1), _m("assistant")], "weight_role"),
    ],
)
@pytest.mark.parametrize("provider", ["openai", "vertex", "local"])
def test_common_checks(messages: list[Message], kind: str, provider: str) -> None:
    assert kind in _kinds(_report([Example(messages=messages)], provider))


def test_valid_tool_conversation_passes_everywhere() -> None:
    ex = Example(
        messages=[
            _m("system"),
            _m("user"),
            _m("assistant", None, tool_calls=[_call("a", '{"x": 1}'), _call("b")]),
            _m("tool", "r1", tool_call_id="a"),
            _m("tool", "r2", tool_call_id="b"),
            _m("assistant", "done"),
        ]
    )
    # the local export carries tool calls and results too (README: "what the local target keeps")
    for provider in ("openai", "vertex", "local"):
        assert _kinds(_report([ex], provider)) == set(), provider


def test_gemini_specific_rules() -> None:
    args_list = Example(
        messages=[
            _m("user"),
            _m("assistant", None, tool_calls=[_call("a", "[1]")]),
            _m("tool", tool_call_id="a"),
            _m("assistant"),
        ]
    )
    assert "tool_arguments" in _kinds(_report([args_list], "vertex"))
    assert "tool_arguments" not in _kinds(_report([args_list], "openai"))
    double_user = Example(messages=[_m("user"), _m("user"), _m("assistant")])
    assert "role_order" in _kinds(_report([double_user], "vertex"))
    assert "role_order" not in _kinds(_report([double_user], "openai"))
    starts_model = Example(messages=[_m("assistant"), _m("user"), _m("assistant")])
    assert "role_order" in _kinds(_report([starts_model], "vertex"))
    ends_user = Example(messages=[_m("user"), _m("assistant"), _m("user")])
    assert "last_turn" in _kinds(_report([ends_user], "vertex"))
    late_system = Example(messages=[_m("user"), _m("system"), _m("assistant")])
    assert "system_position" in _kinds(_report([late_system], "vertex"))
    empty = Example(messages=[_m("user", ""), _m("assistant")])
    assert {"empty_parts", "empty_content"} <= _kinds(_report([empty], "vertex"))
    weighted = Example(messages=[_m("user"), _m("assistant", weight=0)])
    vertex = _report([weighted], "vertex")
    assert [(p.kind, p.severity) for p in vertex.problems if p.line == 1] == [
        ("unsupported_field", "warning")
    ]
    assert _kinds(_report([weighted], "openai")) == set()


def _pref(**kw: object) -> PreferenceExample:
    base: dict[str, object] = {
        "prompt": [_m("user", "q")],
        "chosen": _m("assistant", "good"),
        "rejected": _m("assistant", "bad"),
    }
    return PreferenceExample(**{**base, **kw})  # type: ignore[arg-type]


def test_preference_rules() -> None:
    assert _kinds(_report([_pref()], "openai")) == set()
    assert "preference_prompt" in _kinds(
        _report([_pref(prompt=[_m("user"), _m("assistant")])], "openai")
    )
    assert "preference_reply" in _kinds(_report([_pref(chosen=_m("user", "x"))], "openai"))
    assert "empty_content" in _kinds(_report([_pref(rejected=_m("assistant", ""))], "local"))
    assert "blank_content" in _kinds(_report([_pref(rejected=_m("assistant", " "))], "local"))
    assert "same_preference" in _kinds(_report([_pref(rejected=_m("assistant", "good"))], "openai"))
    tooly = _pref(chosen=_m("assistant", None, tool_calls=[_call("a")]))
    assert "tools_unsupported" in _kinds(_report([tooly], "vertex"))
    assert "tools_unsupported" not in _kinds(_report([tooly], "openai"))
    mixed = _report([_pref(), _ok()], "openai")
    assert "mixed_kinds" in _kinds(mixed, 2)


@pytest.mark.parametrize(
    ("provider", "n", "kind"),
    [
        ("openai", 9, "too_few_examples"),
        ("openai", 10, "few_examples"),
        ("openai", 50, None),
        ("vertex", 1, "few_examples"),
        ("vertex", 15, "few_examples"),
        ("vertex", 100, None),
        ("local", 1, None),
    ],
)
def test_minimum_examples(provider: str, n: int, kind: str | None) -> None:
    report = _report([_ok(i) for i in range(n)], provider)
    assert {p.kind for p in report.problems if p.line is None} == ({kind} if kind else set())
    assert report.ok is (kind != "too_few_examples")


def test_empty_input() -> None:
    report = validate_rows([], file="f", rules=rules("local"))
    assert report.counts() == {"empty_file": 1} and not report.ok


class FakeCounter:
    exact = True
    error_band: float | None = None
    label = "fake exact"

    def count(self, record: Example | PreferenceExample) -> int:
        return 100 if isinstance(record, Example) and record.messages[0].content == "long" else 5

    def count_text(self, text: str) -> int:
        return len(text)


def test_token_limit_with_injected_counter() -> None:
    records = [_ok(), Example(messages=[_m("user", "long"), _m("assistant")])]
    report = _report(records, "openai", counter=FakeCounter(), token_limit=50)
    hits = [p for p in report.problems if p.kind == "token_limit"]
    assert [(p.line, p.severity) for p in hits] == [(2, "warning")]
    assert "100 tokens (fake exact)" in hits[0].message and "~" not in hits[0].message
    local = _report(records, "local", counter=FakeCounter(), token_limit=50)
    assert [p.severity for p in local.problems if p.kind == "token_limit"] == ["warning"]


def test_token_limit_fallback_is_approximate() -> None:
    big = Example(messages=[_m("user", "x" * 70_000 * 4), _m("assistant")])
    report = _report([big], "openai")
    hit = next(p for p in report.problems if p.kind == "token_limit")
    assert "~70,001 tokens (approx chars/4" in hit.message and "65,536" in hit.message
    assert not any(p.kind == "token_limit" for p in _report([big], "vertex").problems)
    assert CharCounter().count_text("abcde") == 2


def test_duplicates_point_at_first() -> None:
    dup = Example(id="other-id", messages=_ok(1).messages)
    report = _report([_ok(1), _ok(2), dup], "local")
    hit = next(p for p in report.problems if p.kind == "duplicate")
    assert hit.line == 3 and "line 1" in hit.message and hit.severity == "warning"


def test_row_problems_pass_through_and_count_once(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    good = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}'
    path.write_text(good + "\n{oops\n")
    report = validate_file(path, rules("local"))
    assert report.records == 1 and report.format == "openai"
    (syntax,) = [p for p in report.problems if p.kind == "json_syntax"]
    assert (syntax.line, syntax.column) == (2, 2) and syntax.where == f"{path}:2:2"


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError, match="unknown provider"):
        registry.backend("bedrock")
