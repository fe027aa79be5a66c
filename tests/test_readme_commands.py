"""Every `tuneport ...` command line in the README's shell blocks names a real command and only
flags that command has, and `-m`/`-p` keep their one meaning (model/provider): a README that
drifts from the CLI fails here, not in a user's terminal."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tuneport.cli._hints import command_of, flags_of
from tuneport.cli.app import app

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```(?:bash|sh|console)\n(.*?)^```", re.S | re.M)
STOP = {"|", "&&", "||", ";", ">", ">>", "2>", "<"}


def _command_lines() -> list[str]:
    lines: list[str] = []
    for block in BLOCK.findall(README.read_text(encoding="utf-8")):
        joined = block.replace("\\\n", " ")
        for raw in joined.splitlines():
            line = raw.strip()
            if line.startswith("$ "):
                line = line[2:]
            for part in re.split(r"&&|\|\||;|\|", line):
                part = part.strip()
                if part.startswith("tuneport ") or part == "tuneport":
                    lines.append(part)
    return lines


def _argv(line: str) -> list[str]:
    words = shlex.split(line, comments=True)[1:]
    for i, word in enumerate(words):
        if word in STOP or word.startswith((">", "2>")):
            return words[:i]
    return words


LINES = _command_lines()


def test_the_readme_has_commands_to_check() -> None:
    assert len(LINES) > 40


@pytest.mark.parametrize("line", LINES)
def test_readme_command_uses_only_flags_its_command_has(line: str) -> None:
    argv = _argv(line)
    command = command_of(app, argv)
    words = [w for w in argv if not w.startswith("-")]
    assert not (hasattr(command, "commands") and words), f"{line!r}: no such command"
    if argv[:1] == ["chat"]:  # the CLI refuses a TARGET and --model both
        params = command.make_context("chat", argv[1:], resilient_parsing=True).params
        both = params.get("target") and params.get("model")
        assert not both, f"{line!r}: -m is the model; use --message"
    known = flags_of(app, argv) | {"-h", "--help"}
    for word in argv:
        if word.startswith("-") and word != "-" and not re.fullmatch(r"-\d[\d.]*", word):
            flag = word.split("=", 1)[0]
            assert flag in known, f"{line!r}: {flag} is not an option of this command"


def test_the_checker_catches_a_flag_the_command_lacks() -> None:
    with pytest.raises(AssertionError, match="--message"):
        test_readme_command_uses_only_flags_its_command_has("tuneport train --message hi")
    with pytest.raises(AssertionError, match="no such command"):
        test_readme_command_uses_only_flags_its_command_has("tuneport jobz list")
    with pytest.raises(AssertionError, match="use --message"):
        test_readme_command_uses_only_flags_its_command_has('tuneport chat tp-1 -m "hi"')
