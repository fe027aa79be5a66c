"""Tool names each provider refuses are found by ``validate`` (issue 20 #8).

The rules are the providers' own published types: the openai SDK's ``FunctionDefinition.name``
(letters, digits, ``_`` and ``-``, at most 64) and google-genai's ``FunctionDeclaration.name``
(a letter or ``_`` first; letters, digits, ``_ . : -``; at most 128).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneport.cli.main import run


def _rows(name: str) -> str:
    row = {
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": name, "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "assistant", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": name, "parameters": {
            "type": "object", "properties": {}}}}],
    }  # fmt: skip
    return (json.dumps(row) + "\n") * 12


BAD_EVERYWHERE = ["", " ", "a b", "$", "\n", "x" * 10_000]


@pytest.mark.parametrize("provider", ["openai", "vertex"])
@pytest.mark.parametrize("name", BAD_EVERYWHERE, ids=["empty", "space", "a b", "$", "nl", "10k"])
def test_an_invalid_tool_name_fails_validate(
    provider: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "tools.jsonl"
    data.write_text(_rows(name))
    code = run(["validate", str(data), "-p", provider])
    said = capsys.readouterr()
    assert code == 1, said.out + said.err
    assert "tool_name" in said.out + said.err and "Traceback" not in said.err


@pytest.mark.parametrize(
    ("provider", "name", "ok"),
    [
        ("openai", "get_weather", True),
        ("openai", "get-weather-2", True),
        ("openai", "x" * 64, True),
        ("openai", "x" * 65, False),
        ("openai", "ns.get", False),  # dots: Gemini only
        ("vertex", "ns.get:v1", True),
        ("vertex", "_private", True),
        ("vertex", "x" * 128, True),
        ("vertex", "x" * 129, False),
        ("vertex", "1st", False),  # must start with a letter or _
    ],
)
def test_each_provider_applies_its_own_rule(provider: str, name: str, ok: bool) -> None:
    from importlib import import_module

    from tuneport.schemas import Example

    rules = import_module(f"tuneport.providers.{provider}").RULES
    example = Example.model_validate(json.loads(_rows(name).splitlines()[0]))
    kinds = [f.kind for check in rules.chat for f in check(example)]
    assert ("tool_name" not in kinds) == ok, kinds
