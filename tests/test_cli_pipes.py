"""`-` means stdin for convert, validate, inspect and estimate, and stdout for `convert -o -`."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tuneport.cli.main import run

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample" / "chat.jsonl"


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def feed(data: bytes) -> None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))

    return feed


def test_validate_reads_stdin_and_names_it(stdin, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    bad = SAMPLE.read_bytes() + b'{"messages": [{"role": "user", "content": "q"}]}\n'
    stdin(bad)
    assert run(["validate", "-", "-p", "openai"]) == 1
    out = capsys.readouterr().out
    assert "<stdin>: 27 examples" in out and "<stdin>:27" in out
    assert "tuneport-stdin" not in out  # the spool file's path never shows


def test_estimate_and_inspect_read_stdin(stdin, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    stdin(SAMPLE.read_bytes())
    assert run(["estimate", "-", "-p", "openai", "-m", "gpt-4.1-mini", "--json"]) == 0
    piped = json.loads(capsys.readouterr().out)
    assert run(["estimate", str(SAMPLE), "-p", "openai", "-m", "gpt-4.1-mini", "--json"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert (piped["examples"], piped["tokens"], piped["cost_usd"]) == (
        direct["examples"],
        direct["tokens"],
        direct["cost_usd"],
    )
    stdin(SAMPLE.read_bytes())
    assert run(["inspect", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["file"] == "<stdin>"


def test_convert_stdin_to_stdout_writes_no_file(
    stdin, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    stdin(SAMPLE.read_bytes())
    assert run(["convert", "-", "--to", "vertex", "-o", "-"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 26 and "contents" in rows[0]
    assert "wrote 26 examples to <stdout>" in err  # the summary stays off stdout
    assert os.listdir(tmp_path) == []  # no file named "-" (or anything else)
    # a file input works the same way
    assert run(["convert", str(SAMPLE), "--to", "openai", "-o", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 26


def test_stdio_refusals(stdin, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    stdin(SAMPLE.read_bytes())
    assert run(["convert", "-", "--to", "local", "-o", "-"]) == 3
    assert "writes a folder" in capsys.readouterr().err
    stdin(SAMPLE.read_bytes())
    assert run(["convert", "-", "--to", "vertex"]) == 3
    assert "-o PATH" in capsys.readouterr().err
    assert run(["convert", str(SAMPLE), "--to", "vertex", "-o", "-", "--json"]) == 3
    assert "--json would mix" in capsys.readouterr().err
    stdin(b'{"a": 1')
    assert run(["validate", "-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: <stdin>:1: ") and "tuneport-stdin" not in err
