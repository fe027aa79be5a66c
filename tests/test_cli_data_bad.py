"""The bad-input corpus: every broken file gets the right exit code and a file:line message,
no traceback, and the input bytes are never changed (validate and convert)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tuneport.cli.main import run

BAD = Path(__file__).resolve().parent.parent / "fixtures" / "bad"

# file -> (provider, validate exit, problem kind, line, convert exit)
CASES: dict[str, tuple[str, int, str, int, int]] = {
    "truncated.jsonl": ("local", 1, "json_syntax", 3, 2),
    "wrong_role.jsonl": ("local", 1, "unrecognized_role", 2, 2),
    "missing_assistant.jsonl": ("local", 1, "missing_assistant", 1, 0),
    "empty_content.jsonl": ("local", 1, "empty_content", 3, 0),
    "blank_content.jsonl": ("local", 0, "blank_content", 2, 0),  # accepted upstream: a warning
    "role_typo.jsonl": ("openai", 1, "unrecognized_role", 3, 2),  # not read as ShareGPT
    "missing_messages.jsonl": ("local", 1, "missing_messages", 2, 2),
    "not_object_line.jsonl": ("local", 1, "data_type", 2, 2),
    "unknown_message_key.jsonl": ("local", 1, "message_unrecognized_key", 1, 2),
    "content_not_string.jsonl": ("local", 1, "content_type", 2, 2),
    "tool_without_id.jsonl": ("openai", 1, "tool_message_id", 1, 0),
    "tool_bad_arguments.jsonl": ("openai", 1, "tool_arguments", 1, 0),
    "duplicate_tool_ids.jsonl": ("openai", 1, "duplicate_tool_call_id", 1, 0),
    "weight_on_user.jsonl": ("openai", 1, "weight_role", 2, 0),
    "weight_not_binary.jsonl": ("local", 1, "invalid_weight", 1, 2),
    "latin1.jsonl": ("local", 1, "non_utf8", 2, 2),
    "bom.jsonl": ("local", 0, "bom", 1, 0),
    "crlf.jsonl": ("local", 0, "crlf", 1, 0),
    "blank_lines.jsonl": ("local", 0, "blank_line", 2, 0),
    "wrong_top_level.json": ("local", 2, "", 1, 2),
    "empty.jsonl": ("local", 2, "", 1, 2),
    "array_truncated.json": ("local", 1, "json_syntax", 4, 2),
    "array_missing_comma.json": ("local", 1, "json_syntax", 3, 2),
    "vertex_roles.jsonl": ("vertex", 1, "role_order", 1, 0),
    "dpo_two_outputs.jsonl": ("openai", 1, "preference_reply", 1, 2),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_corpus_is_complete() -> None:
    assert sorted(CASES) == sorted(p.name for p in BAD.iterdir())
    assert len(CASES) >= 15


@pytest.mark.parametrize("name", sorted(CASES))
def test_validate_bad_file(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    provider, code, kind, line, _ = CASES[name]
    path = BAD / name
    before = _digest(path)
    assert run(["validate", str(path), "--provider", provider]) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert f"{path}:{line}" in out + err
    if kind:
        assert kind in out
    else:
        assert err.startswith("error: ") and "unknown format" in err
    assert _digest(path) == before


@pytest.mark.parametrize("name", sorted(CASES))
def test_validate_bad_file_json(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    provider, code, kind, line, _ = CASES[name]
    assert run(["validate", str(BAD / name), "--provider", provider, "--json"]) == code
    out, _ = capsys.readouterr()
    if not kind:
        return
    report = json.loads(out)
    assert report["ok"] is (code == 0)
    hits = [p for p in report["problems"] if p["kind"] == kind]
    assert hits and hits[0]["line"] == line and hits[0]["fix"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_convert_bad_file(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    *_, line, code = CASES[name]
    path = BAD / name
    before = _digest(path)
    out_path = tmp_path / "out.jsonl"
    assert run(["convert", str(path), "--to", "openai", "-o", str(out_path)]) == code
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert _digest(path) == before
    if code:
        assert err.startswith("error: ") and f"{path}:{line}" in err
        assert not out_path.exists()
        assert list(tmp_path.iterdir()) == []  # no temp leftovers
    else:
        assert out_path.exists()


def test_five_megabyte_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One 5 MB line is read fine and reported over the per-example token limit."""
    path = tmp_path / "huge.jsonl"
    small = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    }
    huge = {"messages": [{"role": "user", "content": "x" * 5_000_000}, small["messages"][1]]}
    path.write_text(json.dumps(small) + "\n" + json.dumps(huge) + "\n", encoding="utf-8")
    before = _digest(path)
    assert run(["validate", str(path), "--provider", "openai"]) == 1
    out, err = capsys.readouterr()
    assert f"{path}:2" in out and "token_limit" in out and "Traceback" not in err
    assert run(["convert", str(path), "--to", "vertex", "-o", str(tmp_path / "o.jsonl")]) == 0
    assert _digest(path) == before
    assert (tmp_path / "o.jsonl").stat().st_size > 5_000_000


def test_five_megabyte_array_element(tmp_path: Path) -> None:
    """A JSON-array element far bigger than the read buffer decodes, with correct lines."""
    from tuneport.data import read_records

    rows = [{"instruction": "a", "output": "b"}, {"instruction": "y" * 5_000_000, "output": "z"}]
    path = tmp_path / "big.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows * 2) + "\n]\n", encoding="utf-8")
    got = list(read_records(path))
    assert [r.line for r in got] == [2, 3, 4, 5]
    assert all(not r.problems for r in got)
