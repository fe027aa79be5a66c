"""The entry point: --version, -h, shell completion, and bare help without an empty error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tuneport import __version__
from tuneport.cli.main import run


def test_version_flag_and_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--version"], ["-V"], ["version"]):
        assert run(argv) == 0
        assert capsys.readouterr().out == f"tuneport {__version__}\n"


@pytest.mark.parametrize("argv", [["-h"], ["--help"], ["jobs", "-h"], ["estimate", "-h"]])
def test_short_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 0
    out, err = capsys.readouterr()
    assert "Usage: tuneport" in out and not err


@pytest.mark.parametrize("argv", [[], ["jobs"]])
def test_bare_command_prints_help_without_an_error_line(argv: list[str]) -> None:
    """In a fresh process: typer prints the help itself, then used to add 'error: ' with an
    empty message."""
    code = "from tuneport.cli.main import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "Usage: tuneport" in done.stdout + done.stderr
    assert "error" not in done.stderr


def test_shell_completion_is_offered(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shellingham

    assert run(["--help"]) == 0
    assert "--install-completion" in capsys.readouterr().out
    # typer finds the shell from the process tree (shellingham), which depends on what started the
    # tests (a CI runner without a shell parent says "Shell  not supported"): run as from bash.
    monkeypatch.setattr(shellingham, "detect_shell", lambda: ("bash", "/bin/bash"))
    assert run(["--show-completion"]) == 0
    assert "complete" in capsys.readouterr().out
