"""Backend names in the CLI come from the registry: help lists every built-in backend,
`convert --to BACKEND` writes the format that backend uploads, and an unknown target lists
every installed one (plugins included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.plugin_backend import BACKEND as PLUGIN
from tuneport.cli.main import run
from tuneport.providers import registry
from tuneport.providers.builtin import BUILTIN

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"


@pytest.mark.parametrize("command", ["train", "estimate", "validate", "convert", "curate"])
def test_help_names_every_builtin_backend(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # no wrapping inside the names
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert " | ".join(BUILTIN) in out
    assert list(BUILTIN) == registry.names()[: len(BUILTIN)]


@pytest.mark.parametrize("backend", ["together", "fireworks"])
def test_convert_to_a_backend_writes_the_format_it_uploads(backend: str, tmp_path: Path) -> None:
    target = registry.backend(backend).target
    assert run(["convert", str(SAMPLE), "--to", backend, "-o", str(tmp_path / "b.jsonl")]) == 0
    assert run(["convert", str(SAMPLE), "--to", target, "-o", str(tmp_path / "t.jsonl")]) == 0
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "t.jsonl").read_bytes()


def test_curate_to_a_backend(tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    assert run(["curate", str(SAMPLE), "-o", str(out), "--to", "fireworks"]) == 0
    assert out.read_text().startswith('{"messages":')


def test_an_unknown_target_lists_every_backend_plugins_included(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with registry.registered(PLUGIN.name, PLUGIN):
        code = run(["convert", str(SAMPLE), "--to", "bogus", "-o", str(tmp_path / "x.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown target 'bogus'" in err
    assert all(name in err for name in (*BUILTIN, PLUGIN.name, "canonical"))
    assert not (tmp_path / "x.jsonl").exists()
