"""Importers for Q&A tables (``--map column=role``) and Hugging Face ``datasets`` rows."""

from __future__ import annotations

import math
from typing import Any

from tuneport.data.parsing import (
    Finding,
    Options,
    build,
    opt_str,
    parse_messages,
    parse_tools,
    require_dict,
)
from tuneport.data.rows import RowError
from tuneport.schemas import (
    AnyRecord,
    Example,
    Message,
    PreferenceExample,
)

# --- Q&A tables and HF rows ---------------------------------------------------------------------

DEFAULT_COLUMNS = {
    "system": "system",
    "question": "user",
    "answer": "assistant",
    "prompt": "user",
    "completion": "assistant",
    "response": "assistant",
}


def from_table(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> Example:
    """A table row mapped by ``--map column=role`` (roles system/user/assistant, or ``id``)."""
    row = require_dict(obj)
    options = opts or Options()
    mapping = options.column_map or {k: v for k, v in DEFAULT_COLUMNS.items() if k in row}
    missing = [col for col in mapping if col not in row]
    if missing:
        raise RowError([("missing_field", f"column(s) {missing} not in the row")])
    messages: list[Message] = []
    if options.system and "system" not in mapping.values():
        messages.append(Message(role="system", content=options.system))
    order = {"system": 0, "user": 1, "assistant": 2}
    for col, role in sorted(mapping.items(), key=lambda kv: order.get(kv[1], 3)):
        if role in order:
            value = row[col]
            if isinstance(value, float) and not math.isfinite(value):
                raise RowError([("not_text", f"column {col!r} holds {value} (not text)")])
            messages.append(Message(role=role, content="" if value is None else str(value)))
    if not any(m.role == "user" for m in messages) or not any(
        m.role == "assistant" for m in messages
    ):
        raise RowError(
            [
                (
                    "missing_field",
                    "no column mapped to user and assistant (use --map q=user,a=assistant)",
                )
            ]
        )
    ident = next((row[c] for c, r in mapping.items() if r == "id"), None)
    return Example(messages=messages, id=opt_str(ident))


def _hf_turns(value: Any, key: str) -> list[Message]:
    if isinstance(value, str):
        return [Message(role="user" if key == "prompt" else "assistant", content=value)]
    return parse_messages(_strip_nulls(value), key)


def _strip_nulls(value: Any) -> Any:
    """Arrow struct columns fill absent fields with None: drop them."""
    if isinstance(value, list):
        return [
            {k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m
            for m in value
        ]
    return value


def from_hf(obj: Any, opts: Options | None = None, notes: list[Finding] | None = None) -> AnyRecord:
    """A ``datasets`` row: ``messages`` | ``prompt``+``completion`` | ``prompt``+``chosen``+
    ``rejected`` (conversational lists or plain strings, as TRL accepts)."""
    row = require_dict(obj)
    if "chosen" in row and "rejected" in row:
        prompt = _hf_turns(row.get("prompt"), "prompt") if row.get("prompt") is not None else []
        chosen = _hf_turns(row["chosen"], "chosen")
        rejected = _hf_turns(row["rejected"], "rejected")
        if "prompt" not in row or row["prompt"] is None:  # implicit prompt: shared prefix
            prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
        return build(
            lambda: PreferenceExample(prompt=prompt, chosen=chosen[-1], rejected=rejected[-1])
        )
    if row.get("messages") is not None:
        return Example(
            messages=parse_messages(_strip_nulls(row["messages"]), "messages"),
            tools=parse_tools(row.get("tools")),
        )
    if "prompt" in row and "completion" in row:
        turns = _hf_turns(row["prompt"], "prompt") + _hf_turns(row["completion"], "completion")
        return Example(messages=turns)
    raise RowError([("missing_field", "row has no messages, prompt/completion or chosen/rejected")])
