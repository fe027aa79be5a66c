"""Each backend's findings speak its own words; unknown roles read the same from every importer.

Gemini calls the assistant side "model": only the Vertex backend's findings may say so. The
engine's defaults (rows.KINDS) use the canonical user/assistant names; a backend naming the sides
otherwise passes its words in its descriptor (validation.rules.TurnOrder).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tuneport.data import IMPORTERS, Row
from tuneport.data.import_community import SHAREGPT_ROLES
from tuneport.data.import_gemini import GEMINI_ROLES
from tuneport.data.parsing import OPENAI_ROLES, Options, unknown_role
from tuneport.data.reading import RawRow
from tuneport.data.records import convert_row
from tuneport.data.rows import KINDS
from tuneport.providers import registry
from tuneport.schemas import Example, Message, PreferenceExample, Problem
from tuneport.validation import validate_rows
from tuneport.validation.rules import TurnOrder

BACKENDS = [b.name for b in registry.backends()]
# what each backend calls the assistant side (every other backend: "assistant")
ASSISTANT_WORD = {"vertex": "model"}
ROLE_KINDS = {
    "role_order",
    "last_turn",
    "system_position",
    "preference_prompt",
    "missing_assistant",
    "missing_user",
}
MODEL = re.compile(r"\bmodel\b")


def _m(role: str, content: str = "x") -> Message:
    return Message(role=role, content=content)  # type: ignore[arg-type]


CHATS = [
    Example(messages=[_m("user"), _m("user"), _m("assistant")]),  # two user turns in a row
    Example(messages=[_m("assistant"), _m("user"), _m("assistant")]),  # starts with assistant
    Example(messages=[_m("user"), _m("assistant"), _m("user")]),  # ends with a user turn
    Example(messages=[_m("user"), _m("system"), _m("assistant")]),  # system in the wrong place
    Example(messages=[_m("user"), _m("user")]),  # no assistant at all
]
PREFERENCES = [
    PreferenceExample(  # the prompt ends with the assistant
        prompt=[_m("user"), _m("assistant")], chosen=_m("assistant", "a"), rejected=_m("assistant")
    ),
    PreferenceExample(  # two user turns in a row in the prompt
        prompt=[_m("user"), _m("user")], chosen=_m("assistant", "a"), rejected=_m("assistant")
    ),
]


def _role_problems(name: str) -> list[Problem]:
    rules = registry.backend(name).rules
    found: list[Problem] = []
    for records in (CHATS, PREFERENCES):
        rows = [Row(i + 1, r, []) for i, r in enumerate(records)]
        report = validate_rows(rows, file="f.jsonl", rules=rules)  # type: ignore[arg-type]
        found += [p for p in report.problems if p.kind in ROLE_KINDS]
    return found


@pytest.mark.parametrize("name", BACKENDS)
def test_turn_findings_use_the_backends_words(name: str) -> None:
    found = _role_problems(name)
    assert found, f"{name}: no finding about turns or roles"
    word = ASSISTANT_WORD.get(name, "assistant")
    for p in found:
        if p.kind in ("role_order", "last_turn"):
            assert word in p.fix, (name, p.kind, p.fix)
        if word != "model":
            assert not MODEL.search(p.message), (name, p.kind, p.message)
            assert not MODEL.search(p.fix), (name, p.kind, p.fix)


@pytest.mark.parametrize("name", BACKENDS)
def test_role_order_fix_is_worded_by_the_backend(name: str) -> None:
    """Where a backend checks the alternation, its fix names the sides as the backend does."""
    word = ASSISTANT_WORD.get(name, "assistant")
    fixes = {p.fix for p in _role_problems(name) if p.kind == "role_order"}
    assert fixes <= {f"alternate user and {word} turns, starting with a user turn"}, fixes
    if name in ("vertex", "together"):  # the backends that check the alternation
        assert fixes


def test_vertex_keeps_geminis_words() -> None:
    fixes = {p.kind: p.fix for p in _role_problems("vertex")}
    assert fixes["role_order"] == "alternate user and model turns, starting with a user turn"
    assert fixes["last_turn"] == "end the conversation with a model (assistant) turn"
    assert fixes["preference_prompt"] == "end the prompt with a user turn"


def test_engine_defaults_use_the_canonical_role_names() -> None:
    """No default fix speaks Gemini: a backend's own words come from its descriptor."""
    assert not [k for k, spec in KINDS.items() if MODEL.search(spec.fix)]


def test_turn_order_words_its_findings_with_the_given_names() -> None:
    ex = Example(messages=[_m("user"), _m("user"), _m("assistant"), _m("user")])
    plain = [(f.kind, f.message, f.fix) for f in TurnOrder()(ex)]
    assert plain == [
        (
            "role_order",
            "messages[1] (user): expected an assistant turn",
            "alternate user and assistant turns, starting with a user turn",
        ),
        (
            "last_turn",
            "conversation ends with a user turn, not assistant",
            "end the conversation with an assistant turn",
        ),
    ]
    bot = [(f.message, f.fix) for f in TurnOrder(user="human", assistant="bot")(ex)]
    assert bot == [
        (
            "messages[1] (user): expected a bot turn",
            "alternate human and bot turns, starting with a human turn",
        ),
        (
            "conversation ends with a human turn, not bot",
            "end the conversation with a bot (assistant) turn",
        ),
    ]


# --- unknown roles: one helper, every importer ---------------------------------------------------

ROBOT = "robot"
# format -> (a row holding the role 'robot', where the importer reports it, the format's roles);
# alpaca and table rows hold no roles (their turns come from fixed keys or --map)
UNKNOWN_ROLE_ROWS: dict[str, tuple[dict[str, Any], str, dict[str, str]]] = {
    "openai": (
        {"messages": [{"role": "user", "content": "a"}, {"role": ROBOT, "content": "b"}]},
        "messages[1]",
        OPENAI_ROLES,
    ),
    "hf": (
        {"messages": [{"role": "user", "content": "a"}, {"role": ROBOT, "content": "b"}]},
        "messages[1]",
        OPENAI_ROLES,
    ),
    "openai-dpo": (
        {
            "input": {"messages": [{"role": ROBOT, "content": "a"}]},
            "preferred_output": [{"role": "assistant", "content": "x"}],
            "non_preferred_output": [{"role": "assistant", "content": "y"}],
        },
        "input.messages[0]",
        OPENAI_ROLES,
    ),
    "canonical": (
        {
            "format": "tuneport/1",
            "kind": "chat",
            "messages": [{"role": "user", "content": "a"}, {"role": ROBOT, "content": "b"}],
        },
        "messages[1]",
        OPENAI_ROLES,
    ),
    "vertex": (
        {
            "contents": [
                {"role": "user", "parts": [{"text": "a"}]},
                {"role": ROBOT, "parts": [{"text": "b"}]},
            ]
        },
        "contents[1]",
        GEMINI_ROLES,
    ),
    "vertex-preference": (
        {
            "contents": [{"role": ROBOT, "parts": [{"text": "a"}]}],
            "completions": [
                {"score": 1, "completion": {"role": "model", "parts": [{"text": "x"}]}},
                {"score": 0, "completion": {"role": "model", "parts": [{"text": "y"}]}},
            ],
        },
        "contents[0]",
        GEMINI_ROLES,
    ),
    "sharegpt": (
        {"conversations": [{"from": "human", "value": "a"}, {"from": ROBOT, "value": "b"}]},
        "conversations[1]",
        SHAREGPT_ROLES,
    ),
    "sharegpt-preference": (
        {
            "conversations": [{"from": ROBOT, "value": "a"}],
            "chosen": {"from": "gpt", "value": "x"},
            "rejected": {"from": "gpt", "value": "y"},
        },
        "conversations[0]",
        SHAREGPT_ROLES,
    ),
}


def test_every_importer_with_roles_is_covered() -> None:
    assert set(UNKNOWN_ROLE_ROWS) == set(IMPORTERS) - {"alpaca", "table"}


@pytest.mark.parametrize("fmt", sorted(UNKNOWN_ROLE_ROWS))
def test_unknown_role_is_reported_by_the_one_helper(fmt: str) -> None:
    value, where, roles = UNKNOWN_ROLE_ROWS[fmt]
    row = convert_row(RawRow(7, value, []), fmt, Options(), "data.jsonl")
    assert row.record is None
    got = [(p.where, p.kind, p.message, p.fix) for p in row.problems]
    kind, message, *fix = unknown_role(where, ROBOT, roles)
    assert got == [("data.jsonl:7", kind, message, fix[0])]
    # the wording: where, the role found, the roles allowed; the fix names them too
    allowed = ", ".join(roles)
    assert message == f"{where}: unrecognized role 'robot', not one of {allowed}"
    assert fix == [f"use one of the roles {allowed}"]


@pytest.mark.parametrize(
    ("role", "roles", "hint"),
    [
        ("bot", OPENAI_ROLES, " (did you mean 'assistant'?)"),
        ("User", OPENAI_ROLES, " (did you mean 'user'?)"),
        ("assistant", GEMINI_ROLES, " (did you mean 'model'?)"),
        ("bot", SHAREGPT_ROLES, " (did you mean 'gpt'?)"),
        (
            "human",
            OPENAI_ROLES,
            " (did you mean 'user'?; if the whole file is ShareGPT, pass --from sharegpt)",
        ),
        ("robot", OPENAI_ROLES, ""),
    ],
)
def test_unknown_role_guesses_in_the_formats_own_names(
    role: str, roles: dict[str, str], hint: str
) -> None:
    assert unknown_role("m[0]", role, roles)[1].endswith(f"{', '.join(roles)}{hint}")
