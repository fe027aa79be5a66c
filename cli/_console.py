"""The two rich consoles (results on stdout, progress and messages on stderr) and the one way
every command prints JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
