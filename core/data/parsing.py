"""Shared parsing for importers: OpenAI-style messages, tools, findings, options."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tuneport.data.rows import RowError
from tuneport.schemas import (
    AnyRecord,
    ContentPart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)

# (kind, message), or (kind, message, fix) where the fix is not the kind's default (rows.KINDS)
Finding = tuple[str, str] | tuple[str, str, str]


@dataclass
class Options:
    """Per-file import options."""

    column_map: dict[str, str] = field(default_factory=dict)
    system: str | None = None
    # KTO data (a boolean ``label`` per row): keep the ``label: true`` rows as SFT examples and
    # leave out the others (counted), instead of refusing the file
    desirable_only: bool = False


MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "weight"})
# the OpenAI (and canonical) roles, in the order a fix lists them; a format's role table maps its
# role names to the canonical role each is read as
OPENAI_ROLES: dict[str, str] = {r: r for r in ("system", "user", "assistant", "tool")}
ROLES = frozenset(OPENAI_ROLES)
_SHAREGPT_ONLY_ROLES = frozenset({"human", "gpt", "observation", "function_call"})
# roles of other formats (ShareGPT, Gemini, chat UIs) -> the OpenAI role a row most likely meant
ROLE_SUGGESTIONS: dict[str, str] = {
    "human": "user",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "ai": "assistant",
    "chatbot": "assistant",
    "observation": "tool",
    "function_call": "assistant",
    "developer": "system",
}
_PARTS: TypeAdapter[list[ContentPart]] = TypeAdapter(list[ContentPart])


def role_hint(role: Any, roles: Mapping[str, str] = OPENAI_ROLES) -> str:
    """`` (did you mean 'user'?)`` for a role another format uses or a near miss of one of
    ``roles`` (a format's role table), else ``""``."""
    if not isinstance(role, str):
        return ""
    key = role.strip().lower()
    meant = ROLE_SUGGESTIONS.get(key, key)  # the canonical role the row most likely meant
    guess = next((name for name, canon in roles.items() if canon == meant), None)
    if guess is None or guess == role:
        close = difflib.get_close_matches(key, sorted(roles), n=1, cutoff=0.6)
        guess = close[0] if close and close[0] != role else None
    if guess is None:
        return ""
    sharegpt = key in _SHAREGPT_ONLY_ROLES and key not in roles
    other = "; if the whole file is ShareGPT, pass --from sharegpt" if sharegpt else ""
    return f" (did you mean {guess!r}?{other})"


def unknown_role(where: str, role: Any, roles: Mapping[str, str] = OPENAI_ROLES) -> Finding:
    """The one finding every importer gives for a role its format does not have: where in the
    row (the reader adds file:line), the role found, the roles allowed (the keys of ``roles``,
    the format's role table) and a guess; the fix names the allowed roles."""
    allowed = ", ".join(roles)
    return (
        "unrecognized_role",
        f"{where}: unrecognized role {role!r}, not one of {allowed}{role_hint(role, roles)}",
        f"use one of the roles {allowed}",
    )


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def require_dict(value: Any, what: str = "record") -> dict[str, Any]:
    if value is None and what != "record":
        raise RowError([("missing_field", f"{what} is missing")])
    if not isinstance(value, dict):
        raise RowError([("data_type", f"{what} is {json_type(value)}, not a JSON object")])
    return value


def _content(
    value: Any, where: str, findings: list[Finding]
) -> tuple[str | None, list[ContentPart] | None]:
    """OpenAI content: a string, null, or a list of parts. Text parts are joined into the text;
    a list holding images (vision fine-tuning) is also kept as ``parts``."""
    if value is None or isinstance(value, str):
        return value, None
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        kinds = {p.get("type") for p in value}
        if kinds <= {"text"} and all(isinstance(p.get("text"), str) for p in value):
            return "".join(p["text"] for p in value), None
        if kinds <= {"text", "image_url"}:
            try:
                parts = _PARTS.validate_python(value)
            except ValidationError as exc:
                findings.append(("content_type", f"{where}: content part {first_error(exc)}"))
                return None, None
            return "".join(p.text for p in parts if isinstance(p, TextPart)), parts
        other = sorted(str(k) for k in kinds - {"text", "image_url"})
        findings.append(
            ("content_type", f"{where}: content part type(s) {other} (text and image_url only)")
        )
        return None, None
    findings.append(("content_type", f"{where}: content is {json_type(value)}, not text"))
    return None, None


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
            findings.append(("tool_call_format", f"{where}.tool_calls[{j}]: {first_error(exc)}"))
    return calls


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def parse_message(raw: Any, where: str, findings: list[Finding]) -> Message | None:
    """One OpenAI-style message; findings for every cookbook format check it fails."""
    if not isinstance(raw, dict):
        findings.append(("message_type", f"{where} is {json_type(raw)}, not an object"))
        return None
    before = len(findings)
    # a null "parts" is what a canonical message dump holds for a text-only turn
    unknown = sorted(k for k in set(raw) - MESSAGE_KEYS if not (k == "parts" and raw[k] is None))
    if unknown:
        findings.append(("message_unrecognized_key", f"{where}: unrecognized key(s) {unknown}"))
    role = raw.get("role")
    if role is None:
        findings.append(("message_missing_key", f"{where}: no 'role'"))
    elif role not in ROLES:
        findings.append(unknown_role(where, role))
    content, parts = _content(raw.get("content"), where, findings)
    calls = _tool_calls(raw.get("tool_calls"), where, findings)
    if content is None and not calls and "content_type" not in {f[0] for f in findings[before:]}:
        findings.append(("missing_content", f"{where}: no content"))
    weight = raw.get("weight")
    if weight is not None and (isinstance(weight, bool) or weight not in (0, 1)):
        findings.append(("invalid_weight", f"{where}: weight {weight!r} is not 0 or 1"))
    if len(findings) > before:
        return None
    try:
        return Message.model_validate(
            {**raw, "content": content, "parts": parts, "tool_calls": calls}
        )
    except ValidationError as exc:
        findings.append(("invalid_record", f"{where}: {first_error(exc)}"))
        return None


# --- legacy function calling (deprecated by OpenAI, still accepted by its fine-tuning API) ---


def legacy_messages(raw: list[Any], notes: list[Finding] | None, where: str) -> list[Any]:
    """Messages with legacy ``function_call`` / role ``function`` turned into ``tool_calls`` /
    role ``tool`` (ids ``call_<n>``); one ``legacy_functions`` note when anything changed."""
    out: list[Any] = []
    pending: dict[str, list[str]] = {}
    changed = False
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            out.append(m)
            continue
        call = m.get("function_call")
        if "function_call" in m and m.get("role") == "assistant":
            m = {k: v for k, v in m.items() if k != "function_call"}
            changed = True
            if isinstance(call, dict):
                call_id = f"call_{i}"
                name = call.get("name")
                pending.setdefault(str(name), []).append(call_id)
                calls = list(m.get("tool_calls") or [])
                calls.append({"id": call_id, "type": "function", "function": call})
                m["tool_calls"] = calls
        elif m.get("role") == "function":
            changed = True
            name = m.get("name")
            queue = pending.get(str(name)) or next((q for q in pending.values() if q), [])
            m = {**m, "role": "tool", "tool_call_id": queue.pop(0) if queue else None}
            if m["tool_call_id"] is None:
                m.pop("tool_call_id")
        out.append(m)
    if changed and notes is not None:
        notes.append(
            (
                "legacy_functions",
                f"{where}: legacy function_call / role 'function' read as tool_calls / role "
                "'tool' (OpenAI deprecated them; tuneport writes the tools form)",
            )
        )
    return out


def legacy_tools(row: dict[str, Any], notes: list[Finding] | None) -> Any:
    """``tools``, or the legacy ``functions`` list as tools (noted)."""
    functions = row.get("functions")
    if functions is None or row.get("tools"):
        return row.get("tools")
    if notes is not None:
        notes.append(
            ("legacy_functions", "legacy 'functions' read as 'tools' (OpenAI deprecated it)")
        )
    if isinstance(functions, list):
        return [{"type": "function", "function": f} for f in functions]
    return functions


def parse_messages(raw: Any, where: str, notes: list[Finding] | None = None) -> list[Message]:
    """A non-empty list of messages, or RowError with every finding."""
    if not isinstance(raw, list) or not raw:
        raise RowError([("missing_messages", f"'{where}' is missing, empty or not a list")])
    raw = legacy_messages(raw, notes, where)
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
        raise RowError([("tools_format", f"tools: {first_error(exc)}")]) from exc


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as importers write places: ``messages[2]``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def build(factory: Callable[[], AnyRecord]) -> AnyRecord:
    try:
        return factory()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        if err["type"] == "literal_error" and loc and loc[-1] == "role":
            raise RowError([unknown_role(_where(loc[:-1]), err["input"])]) from exc
        raise RowError([("invalid_record", first_error(exc))]) from exc


def unknown_keys(obj: dict[str, Any], known: set[str], notes: list[Finding]) -> None:
    extra = sorted(set(obj) - known)
    if extra:
        notes.append(("unknown_key", f"unknown top-level key(s) {extra} ignored"))


def notes_of(notes: list[Finding] | None) -> list[Finding]:
    return notes if notes is not None else []


def opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
