"""The plain-row fast path of validation gives exactly the importer path's report."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.validation_helpers import jsonl_fixtures, rules, same_report, serial_report
from tuneport.data.importers import from_openai
from tuneport.providers import registry
from tuneport.validation import validate_file
from tuneport.validation.parallel import validate_parallel
from tuneport.validation.validate import CharCounter, _digest, plain_digest, plain_shape


def _openai_chat_file(path: Path) -> None:
    """Plain rows of many shapes (blank/empty contents, role orders, duplicates, long ones)
    mixed with rows the fast path must leave to the importer."""
    lines: list[bytes] = []
    for i in range(400):
        msgs: list[dict[str, object]] = [
            {"role": "user", "content": f"question {i % 50}"},
            {"role": "assistant", "content": f"answer {i % 50}"},
        ]
        if i % 3 == 0:
            msgs.insert(0, {"role": "system", "content": "be brief"})
        if i % 11 == 1:
            msgs[-1]["content"] = "   "  # blank
        if i % 13 == 2:
            msgs[0]["content"] = ""  # empty
        if i % 7 == 3:
            msgs[-1]["content"] = ""  # empty where other rows are blank (Vertex tells them apart)
        if i % 17 == 3:
            msgs.reverse()  # ends with a user turn; system late
        if i % 19 == 4:
            msgs = [m for m in msgs if m["role"] != "assistant"]  # no assistant
        if i % 23 == 5:
            msgs.append({"role": "user", "content": "word " * 300})  # over the token limit
        if i % 29 == 6:
            msgs.append({"role": "user", "content": "x", "name": "bob"})  # not plain
        if i % 31 == 7:
            msgs.append({"role": "tool", "content": "42"})  # not plain (tool)
        if i % 37 == 8:
            msgs.append({"role": "robot", "content": "beep"})  # not plain (bad role)
        if i % 41 == 9:
            msgs.append({"role": "assistant", "content": 5})  # not plain (content type)
        row: dict[str, object] = {"messages": msgs}
        if i % 43 == 10:
            row["id"] = i  # not plain (extra key)
        if i % 47 == 11:
            row = {"messages": []}
        line = orjson.dumps(row)
        if i in (60, 61):
            line += b"\r"
        if i == 99:
            line = b'{"messages": [oops'
        if i == 150:
            line = b""
        if i == 151:
            line = b'{"messages": [{"role": "user", "content": "caf\xe9"}]}'  # not UTF-8
        lines.append(line)
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")


@pytest.mark.parametrize("path", jsonl_fixtures(), ids=lambda p: p.name)
@pytest.mark.parametrize("provider", ["openai", "vertex", "local"])
def test_every_jsonl_fixture(path: Path, provider: str) -> None:
    try:
        reference = serial_report(path, provider)
    except Exception as exc:  # unusable input: the fast path must refuse it too
        with pytest.raises(type(exc)):
            validate_file(path, rules(provider))
        return
    same_report(validate_file(path, rules(provider)), reference)


@pytest.mark.parametrize("provider", ["openai", "vertex", "local"])
@pytest.mark.parametrize("exact", [True, False])
def test_crafted_openai_file(tmp_path: Path, provider: str, exact: bool) -> None:
    path = tmp_path / "chat.jsonl"
    _openai_chat_file(path)
    counter = registry.counter_for("openai", "gpt-4.1") if exact else CharCounter()
    reference = serial_report(path, provider, counter=counter, token_limit=100)
    kinds = reference.counts()
    assert kinds["duplicate"] > 50 and kinds["token_limit"] > 5 and kinds["empty_content"] > 10
    assert kinds.get("unrecognized_role", 0) + kinds.get("content_type", 0) >= 2
    assert kinds.get("crlf") == 1 and kinds.get("bom") == 1 and kinds.get("non_utf8") == 1
    assert kinds["missing_assistant"] > 5
    kw = {"counter": counter, "token_limit": 100}
    same_report(validate_file(path, rules(provider), **kw), reference)  # type: ignore[arg-type]
    for workers in (2, 3):
        parallel = validate_parallel(
            path,
            rules(provider),
            fmt="openai",
            workers=workers,
            min_bytes=0,
            **kw,  # type: ignore[arg-type]
        )
        assert parallel is not None
        same_report(parallel, reference)


def test_plain_rows_are_recognised_strictly() -> None:
    ok = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]}
    assert plain_shape(ok) is not None
    assert plain_digest(ok["messages"]) == _digest(from_openai(ok))  # type: ignore[arg-type]
    for bad in (
        {
            "messages": [],
        },
        {"messages": [{"role": "user", "content": None}]},
        {"messages": [{"role": "tool", "content": "a"}]},
        {"messages": [{"role": "user", "content": "a", "weight": 1}]},
        {"messages": [{"role": "user", "content": "a"}], "tools": []},
        {"messages": [{"role": "user"}, {"content": "x"}]},
        ["messages"],
    ):
        assert plain_shape(bad) is None
