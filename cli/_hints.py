"""Error hints name only flags of the command that printed them.

Backends write their hints once for every command (``pass --project PROJECT_ID``); a command that
has no ``--project`` but takes backend settings with ``--set`` gets ``--set project=PROJECT_ID``
instead. Flags of a quoted command (in backticks, or a ``gcloud``/``pip`` command) belong to that
command and are left alone. ``tests/test_cli_hints.py`` runs the error paths of every command
and checks that each flag a hint names exists on that command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# the convenience flags of `train` that stand for a backend setting (`--project P` = `--set
# project=P`); other commands accept the setting through --set
SETTING_FLAGS: tuple[str, ...] = ("project", "location", "bucket")
_FLAG_WITH_VALUE = re.compile(
    r"--(?P<name>" + "|".join(SETTING_FLAGS) + r")(?![\w-])(?P<sep>[ =])?(?P<value>[^\s,;()]*)"
)
# commands quoted in a hint: `tuneport ...` in backticks, or a gcloud / pip command up to the
# end of its clause; their flags belong to that command
_QUOTED = re.compile(r"(`[^`]*`|\b(?:gcloud|pip)\s[^;)]*)")
_REPEATED = re.compile(r"(--set (\w+)=\S+) \(or --set \2=[^)]*\)")
# words after a flag that are prose, not its value ("check --project and --location")
_PROSE = frozenset({"and", "or", "to", "the", "with", "for", "in", "is", "if", "on", "of"})


def command_of(app: Any, args: Sequence[str]) -> Any:
    """The click command ``args`` invoke (the group itself when no subcommand is named)."""
    import typer

    command = typer.main.get_command(app)
    for token in args:
        if token.startswith("-"):
            continue
        commands = getattr(command, "commands", None)
        if not isinstance(commands, dict) or token not in commands:
            break
        command = commands[token]
    return command


def flags_of(app: Any, args: Sequence[str]) -> set[str]:
    """Every option name (``--set``, ``-p``, ...) of the command ``args`` invoke."""
    try:
        command = command_of(app, args)
    except Exception:  # pragma: no cover - a broken argv is reported by click itself
        return set()
    names: set[str] = set()
    for param in getattr(command, "params", []):
        names.update(getattr(param, "opts", []))
        names.update(getattr(param, "secondary_opts", []))
    return names


def _rewrite(text: str, flags: set[str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group("name")
        if f"--{name}" in flags or "--set" not in flags:
            return match.group(0)
        value = match.group("value") if match.group("sep") else ""
        if value.lower() in _PROSE:
            return f"--set {name}=... {value}"
        # "--location (see ...)": the parenthesis is prose, not the value; keep the space
        kept = " " if match.group("sep") == " " and not value else ""
        return f"--set {name}={value or '...'}{kept}"

    return _FLAG_WITH_VALUE.sub(sub, text)


def adapt(line: str, flags: set[str]) -> str:
    """``line`` with setting flags the command lacks written as ``--set key=value``."""
    if not flags:
        return line
    parts = _QUOTED.split(line)
    text = "".join(p if _QUOTED.fullmatch(p) else _rewrite(p, flags) for p in parts)
    # "--set project=P (or --set project=...)" after a rewrite: say it once
    return _REPEATED.sub(r"\1", text)


def unquoted(line: str) -> str:
    """``line`` without the commands it quotes (their flags are not this command's)."""
    return _QUOTED.sub(" ", line)
