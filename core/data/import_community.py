"""Importers for community formats: Alpaca and ShareGPT (as LLaMA-Factory uses them)."""

from __future__ import annotations

import json
from typing import Any

from tuneport.data.parsing import (
    Finding,
    Options,
    notes_of,
    opt_str,
    parse_tools,
    require_dict,
    unknown_keys,
    unknown_role,
)
from tuneport.data.rows import RowError
from tuneport.schemas import (
    AnyRecord,
    Example,
    FunctionCall,
    Message,
    PreferenceExample,
    ToolCall,
)

# --- Alpaca -----------------------------------------------------------------------------------


def _str_field(row: dict[str, Any], key: str, *, required: bool) -> str:
    value = row.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise RowError([("missing_field", f"'{key}' must be a string")])
    return value


def from_alpaca(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> AnyRecord:
    """Alpaca ``{instruction, input?, output, system?, history?}`` (``chosen``/``rejected``
    instead of ``output`` makes a preference pair, as LLaMA-Factory does)."""
    row = require_dict(obj)
    known = {"instruction", "input", "output", "system", "history", "chosen", "rejected", "id"}
    unknown_keys(row, known, notes_of(notes))
    instruction = _str_field(row, "instruction", required=True)
    extra = _str_field(row, "input", required=False)
    system = _str_field(row, "system", required=False)
    prompt: list[Message] = [Message(role="system", content=system)] if system else []
    for turn in row.get("history") or []:
        if not (
            isinstance(turn, list) and len(turn) == 2 and all(isinstance(t, str) for t in turn)
        ):
            raise RowError(
                [("missing_field", "'history' must be a list of [user, assistant] pairs")]
            )
        prompt += [
            Message(role="user", content=turn[0]),
            Message(role="assistant", content=turn[1]),
        ]
    prompt.append(Message(role="user", content="\n".join(t for t in (instruction, extra) if t)))
    if "chosen" in row or "rejected" in row:
        return PreferenceExample(
            prompt=prompt,
            chosen=Message(role="assistant", content=_str_field(row, "chosen", required=True)),
            rejected=Message(role="assistant", content=_str_field(row, "rejected", required=True)),
            id=opt_str(row.get("id")),
        )
    output = _str_field(row, "output", required=True)
    return Example(
        messages=[*prompt, Message(role="assistant", content=output)], id=opt_str(row.get("id"))
    )


# --- ShareGPT ---------------------------------------------------------------------------------

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "function_call": "function_call",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}


def _call_list(value: str, where: str, ids: list[str]) -> list[ToolCall]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise RowError(
            [("tool_call_format", f"{where}: function_call is not JSON ({exc})")]
        ) from exc
    calls: list[ToolCall] = []
    for item in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RowError([("tool_call_format", f"{where}: function_call needs a 'name'")])
        args = item.get("arguments", {})
        ids.append(f"call_{len(ids)}")
        calls.append(
            ToolCall(
                id=ids[-1],
                function=FunctionCall(
                    name=item["name"], arguments=args if isinstance(args, str) else json.dumps(args)
                ),
            )
        )
    return calls


def _sharegpt_turns(raw: Any, key: str, role_key: str, text_key: str) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise RowError([("missing_messages", f"'{key}' is missing, empty or not a list")])
    messages: list[Message] = []
    ids: list[str] = []
    pending: list[str] = []
    for i, turn in enumerate(raw):
        where = f"{key}[{i}]"
        turn = require_dict(turn, where)
        role = SHAREGPT_ROLES.get(str(turn.get(role_key)))
        value = turn.get(text_key)
        if role is None:
            raise RowError([unknown_role(where, turn.get(role_key), SHAREGPT_ROLES)])
        if not isinstance(value, str):
            raise RowError([("missing_content", f"{where}: '{text_key}' is missing or not text")])
        if role == "function_call":
            start = len(ids)
            messages.append(Message(role="assistant", tool_calls=_call_list(value, where, ids)))
            pending = ids[start:]
        elif role == "tool":
            call_id = pending.pop(0) if pending else None
            messages.append(Message(role="tool", content=value, tool_call_id=call_id))
        else:
            messages.append(Message(role=role, content=value))
    return messages


def _sharegpt_prompt(row: dict[str, Any]) -> list[Message]:
    if "conversations" in row:
        turns = _sharegpt_turns(row["conversations"], "conversations", "from", "value")
    else:
        turns = _sharegpt_turns(row.get("messages"), "messages", "role", "content")
    system = row.get("system")
    if isinstance(system, str) and system:
        turns.insert(0, Message(role="system", content=system))
    return turns


_SHAREGPT_KEYS = {"conversations", "messages", "system", "tools", "id", "chosen", "rejected"}


def from_sharegpt(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> Example:
    """ShareGPT ``{conversations: [{from, value}], system?, tools?}`` (or ``messages`` with
    ``role``/``content``); function_call/observation turns become tool calls/results."""
    row = require_dict(obj)
    unknown_keys(row, _SHAREGPT_KEYS, notes_of(notes))
    return Example(
        messages=_sharegpt_prompt(row),
        tools=parse_tools(row.get("tools")),
        id=opt_str(row.get("id")),
    )


def _sharegpt_reply(raw: Any, key: str) -> Message:
    turn = require_dict(raw, f"'{key}'")
    role_key, text_key = ("from", "value") if "from" in turn else ("role", "content")
    role = SHAREGPT_ROLES.get(str(turn.get(role_key)))
    value = turn.get(text_key)
    if role != "assistant" or not isinstance(value, str):
        raise RowError([("preference_reply", f"'{key}' must be an assistant (gpt) text turn")])
    return Message(role="assistant", content=value)


def from_sharegpt_preference(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> PreferenceExample:
    """LLaMA-Factory preference rows: ``conversations`` + ``chosen``/``rejected`` turns."""
    row = require_dict(obj)
    unknown_keys(row, _SHAREGPT_KEYS, notes_of(notes))
    return PreferenceExample(
        prompt=_sharegpt_prompt(row),
        chosen=_sharegpt_reply(row.get("chosen"), "chosen"),
        rejected=_sharegpt_reply(row.get("rejected"), "rejected"),
        tools=parse_tools(row.get("tools")),
        id=opt_str(row.get("id")),
    )
