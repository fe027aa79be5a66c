"""The two rich consoles (results on stdout, progress and messages on stderr), the one way every
command prints JSON, and one-line notices shown at most once per command."""

from __future__ import annotations

from typing import Any

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_shown: set[str] = set()


def reset_notices() -> None:
    """Forget which notices were shown (a new command starts; tests run many in one process)."""
    _shown.clear()


def notice_once(text: str, *, prefix: str = "note: ") -> None:
    """Print ``text`` on stderr unless this command already showed it."""
    if text in _shown:
        return
    _shown.add(text)
    err.print(f"{prefix}{text}", markup=False, style="dim")


def print_json(value: Any) -> None:
    """Print ``value`` (a pydantic model, or plain JSON data) as indented JSON on stdout.

    Plain text, no colour or markup, one document per call, so ``--json`` output pipes into
    ``jq`` or a script unchanged.
    """
    import orjson

    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()
    out.file.write(text + "\n")
    out.file.flush()
