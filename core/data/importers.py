"""Importers: one pure function per input format, raw JSON value → canonical record.

Each raises :class:`~tuneport.data.rows.RowError` with every finding when a row cannot be turned
into a record, and appends non-fatal findings (kind, message) to ``notes``. They are looked up
by format name in :data:`IMPORTERS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tuneport.data.rows import AnyRecord, RowError
from tuneport.schemas import (
    FORMAT_VERSION,
    Example,
    FunctionCall,
    Message,
    PreferenceExample,
    ToolCall,
    ToolSpec,
)

Finding = tuple[str, str]


@dataclass
class Options:
    """Per-file import options."""

    column_map: dict[str, str] = field(default_factory=dict)
    system: str | None = None


Importer = Callable[[Any, Options, list[Finding]], AnyRecord]

MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "weight"})
ROLES = frozenset({"system", "user", "assistant", "tool"})


def _require_dict(value: Any, what: str = "record") -> dict[str, Any]:
    if value is None and what != "record":
        raise RowError([("missing_field", f"{what} is missing")])
    if not isinstance(value, dict):
        raise RowError([("data_type", f"{what} is {type(value).__name__}, not a JSON object")])
    return value


def _text_content(value: Any, where: str, findings: list[Finding]) -> str | None:
    """OpenAI content: a string, null, or a list of text parts (joined)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in value
    ):
        return "".join(p["text"] for p in value)
    findings.append(("content_type", f"{where}: content is {type(value).__name__}, not text"))
    return None


def _tool_calls(value: Any, where: str, findings: list[Finding]) -> list[ToolCall] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        findings.append(("tool_call_format", f"{where}: tool_calls is not a list"))
        return None
    calls: list[ToolCall] = []
    for j, call in enumerate(value):
        fn = call.get("function") if isinstance(call, dict) else None
        args = fn.get("arguments") if isinstance(fn, dict) else None
        if not isinstance(fn, dict) or not isinstance(args, str):
            got = "an object" if isinstance(args, dict) else "missing or not a string"
            findings.append(
                ("tool_call_format", f"{where}.tool_calls[{j}]: function.arguments is {got}")
            )
            continue
        try:
            calls.append(ToolCall.model_validate(call))
        except ValidationError as exc:
            findings.append(("tool_call_format", f"{where}.tool_calls[{j}]: {_first(exc)}"))
    return calls


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def parse_message(raw: Any, where: str, findings: list[Finding]) -> Message | None:
    """One OpenAI-style message; findings for every cookbook format check it fails."""
    if not isinstance(raw, dict):
        findings.append(("message_type", f"{where} is {type(raw).__name__}, not an object"))
        return None
    before = len(findings)
    unknown = sorted(set(raw) - MESSAGE_KEYS)
    if unknown:
        findings.append(("message_unrecognized_key", f"{where}: unrecognized key(s) {unknown}"))
    role = raw.get("role")
    if role is None:
        findings.append(("message_missing_key", f"{where}: no 'role'"))
    elif role not in ROLES:
        findings.append(("unrecognized_role", f"{where}: unrecognized role {role!r}"))
    content = _text_content(raw.get("content"), where, findings)
    calls = _tool_calls(raw.get("tool_calls"), where, findings)
    if content is None and not calls and "content_type" not in {k for k, _ in findings[before:]}:
        findings.append(("missing_content", f"{where}: no content"))
    weight = raw.get("weight")
    if weight is not None and (isinstance(weight, bool) or weight not in (0, 1)):
        findings.append(("invalid_weight", f"{where}: weight {weight!r} is not 0 or 1"))
    if len(findings) > before:
        return None
    try:
        return Message.model_validate({**raw, "content": content, "tool_calls": calls})
    except ValidationError as exc:
        findings.append(("invalid_record", f"{where}: {_first(exc)}"))
        return None


def parse_messages(raw: Any, where: str) -> list[Message]:
    """A non-empty list of messages, or RowError with every finding."""
    if not isinstance(raw, list) or not raw:
        raise RowError([("missing_messages", f"'{where}' is missing, empty or not a list")])
    findings: list[Finding] = []
    parsed = [parse_message(m, f"{where}[{i}]", findings) for i, m in enumerate(raw)]
    if findings:
        raise RowError(findings)
    return [m for m in parsed if m is not None]


def parse_tools(raw: Any) -> list[ToolSpec] | None:
    """OpenAI ``tools`` (also bare function specs, or a JSON-encoded string of either)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RowError([("tools_format", f"'tools' string is not valid JSON: {exc}")]) from exc
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise RowError([("tools_format", "'tools' is not a list")])
    try:
        return [
            ToolSpec.model_validate(
                t if isinstance(t, dict) and "function" in t else {"function": t}
            )
            for t in raw
        ]
    except ValidationError as exc:
        raise RowError([("tools_format", f"tools: {_first(exc)}")]) from exc


def _build(factory: Callable[[], AnyRecord]) -> AnyRecord:
    try:
        return factory()
    except ValidationError as exc:
        raise RowError([("invalid_record", _first(exc))]) from exc


def _unknown_keys(obj: dict[str, Any], known: set[str], notes: list[Finding]) -> None:
    extra = sorted(set(obj) - known)
    if extra:
        notes.append(("unknown_key", f"unknown top-level key(s) {extra} ignored"))


# --- OpenAI -----------------------------------------------------------------------------------


def from_openai(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> Example:
    """An OpenAI chat fine-tuning row ``{"messages", "tools"?, "parallel_tool_calls"?}``."""
    row = _require_dict(obj)
    _unknown_keys(row, {"messages", "tools", "parallel_tool_calls", "id"}, _n(notes))
    messages = parse_messages(row.get("messages"), "messages")
    tools = parse_tools(row.get("tools"))
    return Example(
        messages=messages,
        tools=tools,
        parallel_tool_calls=row.get("parallel_tool_calls"),
        id=_opt_str(row.get("id")),
    )


def _n(notes: list[Finding] | None) -> list[Finding]:
    return notes if notes is not None else []


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _single_reply(raw: Any, key: str) -> Message:
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    elif isinstance(raw, list):
        raise RowError([("preference_reply", f"'{key}' must hold exactly one message")])
    if raw is None:
        raise RowError([("missing_field", f"'{key}' is missing")])
    findings: list[Finding] = []
    message = parse_message(raw, key, findings)
    if findings or message is None:
        raise RowError(findings)
    return message


def from_openai_dpo(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> PreferenceExample:
    """An OpenAI DPO row ``{"input": {"messages", "tools"?}, "preferred_output",
    "non_preferred_output"}``."""
    row = _require_dict(obj)
    _unknown_keys(row, {"input", "preferred_output", "non_preferred_output", "id"}, _n(notes))
    source = _require_dict(row.get("input"), "'input'")
    prompt = parse_messages(source.get("messages"), "input.messages")
    return PreferenceExample(
        prompt=prompt,
        chosen=_single_reply(row.get("preferred_output"), "preferred_output"),
        rejected=_single_reply(row.get("non_preferred_output"), "non_preferred_output"),
        tools=parse_tools(source.get("tools")),
        id=_opt_str(row.get("id")),
    )


# --- Vertex / Gemini ----------------------------------------------------------------------------


def _parts_text(parts: list[dict[str, Any]]) -> str | None:
    texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
    return "".join(texts) if texts else None


def _gemini_parts(content: Any, where: str) -> tuple[str, list[dict[str, Any]]]:
    content = _require_dict(content, where)
    parts = content.get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise RowError([("missing_field", f"{where}: 'parts' must be a list of objects")])
    for j, part in enumerate(parts):
        if not ({"text", "functionCall", "functionResponse"} & set(part)):
            raise RowError(
                [("content_type", f"{where}.parts[{j}]: only text/function parts are supported")]
            )
    return str(content.get("role", "")), parts


def _model_message(parts: list[dict[str, Any]], where: str, ids: list[str]) -> Message:
    calls: list[ToolCall] = []
    for part in parts:
        call = part.get("functionCall")
        if isinstance(call, dict):
            call_id = str(call.get("id") or f"call_{len(ids)}")
            ids.append(call_id)
            args = call.get("args", {})
            calls.append(
                ToolCall(
                    id=call_id,
                    function=FunctionCall(
                        name=str(call.get("name", "")), arguments=json.dumps(args)
                    ),
                )
            )
    return Message(role="assistant", content=_parts_text(parts), tool_calls=calls or None)


def _user_messages(
    parts: list[dict[str, Any]], ids: list[str], pending: list[str]
) -> list[Message]:
    out: list[Message] = []
    text = _parts_text(parts)
    for part in parts:
        resp = part.get("functionResponse")
        if isinstance(resp, dict):
            body = resp.get("response", {})
            content = (
                body["output"]
                if isinstance(body, dict)
                and set(body) == {"output"}
                and isinstance(body["output"], str)
                else json.dumps(body)
            )
            call_id = str(resp.get("id") or (pending.pop(0) if pending else f"call_{len(ids)}"))
            out.append(Message(role="tool", content=content, tool_call_id=call_id, name=None))
    if text is not None or not out:
        out.insert(0, Message(role="user", content=text or ""))
    return out


def _gemini_contents(raw: Any, where: str = "contents") -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise RowError([("missing_messages", f"'{where}' is missing, empty or not a list")])
    messages: list[Message] = []
    ids: list[str] = []
    pending: list[str] = []
    for i, content in enumerate(raw):
        role, parts = _gemini_parts(content, f"{where}[{i}]")
        if role == "model":
            start = len(ids)
            messages.append(_model_message(parts, f"{where}[{i}]", ids))
            pending = ids[start:]
        elif role in ("user", "function"):
            messages.extend(_user_messages(parts, ids, pending))
        else:
            raise RowError([("unrecognized_role", f"{where}[{i}]: role {role!r} (user/model)")])
    return messages


def _gemini_system(row: dict[str, Any]) -> list[Message]:
    raw = row.get("systemInstruction", row.get("system_instruction"))
    if raw is None:
        return []
    _, parts = _gemini_parts(raw, "systemInstruction")
    return [Message(role="system", content=_parts_text(parts) or "")]


def _gemini_tools(raw: Any) -> list[ToolSpec] | None:
    if not raw:
        return None
    if not isinstance(raw, list):
        raise RowError([("tools_format", "'tools' is not a list")])
    specs: list[dict[str, Any]] = []
    for tool in raw:
        decls = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        if not isinstance(decls, list):
            raise RowError([("tools_format", "tools entries need 'functionDeclarations'")])
        specs.extend(decls)
    return parse_tools(specs)


_VERTEX_KEYS = {"systemInstruction", "system_instruction", "contents", "tools", "id"}


def from_vertex(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> Example:
    """A Vertex Gemini SFT row ``{"systemInstruction"?, "contents", "tools"?}``."""
    row = _require_dict(obj)
    _unknown_keys(row, _VERTEX_KEYS, _n(notes))
    messages = _gemini_system(row) + _gemini_contents(row.get("contents"))
    return Example(
        messages=messages, tools=_gemini_tools(row.get("tools")), id=_opt_str(row.get("id"))
    )


def _completion(raw: Any, where: str) -> tuple[float, Message]:
    entry = _require_dict(raw, where)
    score = entry.get("score")
    if not isinstance(score, int | float):
        raise RowError([("missing_field", f"{where}: 'score' must be a number")])
    _, parts = _gemini_parts(entry.get("completion"), f"{where}.completion")
    return float(score), Message(role="assistant", content=_parts_text(parts) or "")


def from_vertex_preference(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> PreferenceExample:
    """A Vertex preference row: ``contents`` ending with a user turn + two scored completions."""
    row = _require_dict(obj)
    _unknown_keys(row, _VERTEX_KEYS | {"completions"}, _n(notes))
    completions = row.get("completions")
    if not isinstance(completions, list) or len(completions) != 2:
        raise RowError([("preference_reply", "'completions' must hold exactly two entries")])
    scored = sorted(
        (_completion(c, f"completions[{i}]") for i, c in enumerate(completions)),
        key=lambda pair: pair[0],
    )
    if scored[0][0] == scored[1][0]:
        raise RowError([("preference_reply", "the two completions have the same score")])
    return PreferenceExample(
        prompt=_gemini_system(row) + _gemini_contents(row.get("contents")),
        chosen=scored[1][1],
        rejected=scored[0][1],
        tools=_gemini_tools(row.get("tools")),
        id=_opt_str(row.get("id")),
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
    row = _require_dict(obj)
    known = {"instruction", "input", "output", "system", "history", "chosen", "rejected", "id"}
    _unknown_keys(row, known, _n(notes))
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
            id=_opt_str(row.get("id")),
        )
    output = _str_field(row, "output", required=True)
    return Example(
        messages=[*prompt, Message(role="assistant", content=output)], id=_opt_str(row.get("id"))
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
        turn = _require_dict(turn, where)
        role = SHAREGPT_ROLES.get(str(turn.get(role_key)))
        value = turn.get(text_key)
        if role is None:
            raise RowError(
                [("unrecognized_role", f"{where}: unrecognized role {turn.get(role_key)!r}")]
            )
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
    row = _require_dict(obj)
    _unknown_keys(row, _SHAREGPT_KEYS, _n(notes))
    return Example(
        messages=_sharegpt_prompt(row),
        tools=parse_tools(row.get("tools")),
        id=_opt_str(row.get("id")),
    )


def _sharegpt_reply(raw: Any, key: str) -> Message:
    turn = _require_dict(raw, f"'{key}'")
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
    row = _require_dict(obj)
    _unknown_keys(row, _SHAREGPT_KEYS, _n(notes))
    return PreferenceExample(
        prompt=_sharegpt_prompt(row),
        chosen=_sharegpt_reply(row.get("chosen"), "chosen"),
        rejected=_sharegpt_reply(row.get("rejected"), "rejected"),
        tools=parse_tools(row.get("tools")),
        id=_opt_str(row.get("id")),
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
    row = _require_dict(obj)
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
    return Example(messages=messages, id=_opt_str(ident))


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
    row = _require_dict(obj)
    if "chosen" in row and "rejected" in row:
        prompt = _hf_turns(row.get("prompt"), "prompt") if row.get("prompt") is not None else []
        chosen = _hf_turns(row["chosen"], "chosen")
        rejected = _hf_turns(row["rejected"], "rejected")
        if "prompt" not in row or row["prompt"] is None:  # implicit prompt: shared prefix
            prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
        return _build(
            lambda: PreferenceExample(prompt=prompt, chosen=chosen[-1], rejected=rejected[-1])
        )
    if row.get("messages") is not None:
        return Example(messages=parse_messages(_strip_nulls(row["messages"]), "messages"))
    if "prompt" in row and "completion" in row:
        turns = _hf_turns(row["prompt"], "prompt") + _hf_turns(row["completion"], "completion")
        return Example(messages=turns)
    raise RowError([("missing_field", "row has no messages, prompt/completion or chosen/rejected")])


# --- canonical --------------------------------------------------------------------------------


def from_canonical(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> AnyRecord:
    """A canonical ``tuneport/1`` line (see :mod:`tuneport.data.rows`)."""
    row = dict(_require_dict(obj))
    version = row.pop("format", None)
    if version != FORMAT_VERSION:
        raise RowError([("invalid_record", f"format {version!r} is not {FORMAT_VERSION!r}")])
    kind = row.get("kind", "chat")
    if kind == "preference":
        return _build(lambda: PreferenceExample.model_validate(row))
    return _build(lambda: Example.model_validate(row))


IMPORTERS: dict[str, Importer] = {
    "canonical": from_canonical,
    "openai": from_openai,
    "openai-dpo": from_openai_dpo,
    "vertex": from_vertex,
    "vertex-preference": from_vertex_preference,
    "alpaca": from_alpaca,
    "sharegpt": from_sharegpt,
    "sharegpt-preference": from_sharegpt_preference,
    "table": from_table,
    "hf": from_hf,
}
