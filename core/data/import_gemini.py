"""Importers for Vertex AI Gemini rows: SFT ``contents`` and preference ``completions``."""

from __future__ import annotations

import json
from typing import Any

from tuneport.data.gemini_schema import from_gemini_schema
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
    Example,
    FunctionCall,
    Message,
    PreferenceExample,
    ToolCall,
    ToolSpec,
)

# --- Vertex / Gemini ----------------------------------------------------------------------------

# Gemini content roles (the legacy "function" role is read as a user-side turn too)
GEMINI_ROLES: dict[str, str] = {"user": "user", "model": "assistant"}


def _parts_text(parts: list[dict[str, Any]]) -> str | None:
    texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
    return "".join(texts) if texts else None


def _gemini_parts(content: Any, where: str) -> tuple[Any, list[dict[str, Any]]]:
    content = require_dict(content, where)
    parts = content.get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise RowError([("missing_field", f"{where}: 'parts' must be a list of objects")])
    for j, part in enumerate(parts):
        if not ({"text", "functionCall", "functionResponse"} & set(part)):
            raise RowError(
                [("content_type", f"{where}.parts[{j}]: only text/function parts are supported")]
            )
    return content.get("role"), parts


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
            raise RowError([unknown_role(f"{where}[{i}]", role, GEMINI_ROLES)])
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
        for decl in decls:
            if isinstance(decl, dict):
                decl = dict(decl)
                if "parametersJsonSchema" in decl and "parameters" not in decl:
                    decl["parameters"] = decl.pop("parametersJsonSchema")
                elif "parameters" in decl:
                    decl["parameters"] = from_gemini_schema(decl["parameters"])
            specs.append(decl)
    return parse_tools(specs)


_VERTEX_KEYS = {"systemInstruction", "system_instruction", "contents", "tools", "id"}


def from_vertex(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> Example:
    """A Vertex Gemini SFT row ``{"systemInstruction"?, "contents", "tools"?}``."""
    row = require_dict(obj)
    unknown_keys(row, _VERTEX_KEYS, notes_of(notes))
    messages = _gemini_system(row) + _gemini_contents(row.get("contents"))
    return Example(
        messages=messages, tools=_gemini_tools(row.get("tools")), id=opt_str(row.get("id"))
    )


def _completion(raw: Any, where: str) -> tuple[float, Message]:
    entry = require_dict(raw, where)
    score = entry.get("score")
    if not isinstance(score, int | float):
        raise RowError([("missing_field", f"{where}: 'score' must be a number")])
    _, parts = _gemini_parts(entry.get("completion"), f"{where}.completion")
    return float(score), Message(role="assistant", content=_parts_text(parts) or "")


def from_vertex_preference(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> PreferenceExample:
    """A Vertex preference row: ``contents`` ending with a user turn + two scored completions."""
    row = require_dict(obj)
    unknown_keys(row, _VERTEX_KEYS | {"completions"}, notes_of(notes))
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
        id=opt_str(row.get("id")),
    )
