"""Rows, problem kinds and the canonical file format.

Canonical JSONL (``*.tuneport.jsonl``, format name ``canonical``)
-----------------------------------------------------------------
One record per line, UTF-8, ``\\n`` line ends, no blank lines. Each line is the JSON object
``record.model_dump(mode="json", exclude_none=True)`` of an :class:`~tuneport.schemas.Example`
(``"kind": "chat"``) or :class:`~tuneport.schemas.PreferenceExample` (``"kind":
"preference"``), plus ``"format": "tuneport/1"``. Reading it back with ``Example.model_validate``
(after removing ``format``) gives an equal record: the format is lossless by construction.

Every importer yields :class:`Row` values: the 1-based source line where the record starts, the
record (``None`` when the row is unusable) and the problems found while reading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from tuneport.schemas import (
    FORMAT_VERSION,
    AnyRecord,
    Example,
    PreferenceExample,
    Problem,
    Severity,
)


class Row(NamedTuple):
    """One input record with its source line and the problems found while reading it."""

    line: int
    record: Example | PreferenceExample | None
    problems: list[Problem]


@dataclass(frozen=True)
class Kind:
    """A problem kind: default severity and the one-line fix shown to the user."""

    severity: Severity
    fix: str


# Every problem kind tuneport reports, with its default severity and fix hint (data, not code).
KINDS: dict[str, Kind] = {
    # --- bytes and syntax
    "json_syntax": Kind("error", "fix the JSON syntax at the given line:column"),
    "non_utf8": Kind("error", "re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"),
    "duplicate_key": Kind(
        "error", "keep one value per key in each JSON object (readers keep only the last one)"
    ),
    "non_finite_number": Kind(
        "error", "replace NaN/Infinity with a number or a string: JSON has no such values"
    ),
    "too_deep": Kind("error", "flatten the record: it is nested deeper than JSON readers allow"),
    "bom": Kind("warning", "remove the UTF-8 byte-order mark at the start of the file"),
    "crlf": Kind("warning", "use \\n line endings (e.g. dos2unix); tuneport's output does"),
    "blank_line": Kind("warning", "remove blank lines; some providers reject them"),
    "data_type": Kind("error", "each line/element must be a JSON object"),
    # --- structure (cookbook format checks)
    "missing_messages": Kind("error", "give each example a non-empty 'messages' list"),
    "message_type": Kind("error", "each message must be a JSON object with role and content"),
    "message_missing_key": Kind("error", "give every message a 'role' (and 'content')"),
    "message_unrecognized_key": Kind(
        "error", "use only role, content, name, tool_calls, tool_call_id, weight"
    ),
    "unrecognized_role": Kind("error", "use one of the roles system, user, assistant, tool"),
    "missing_content": Kind("error", "give the message a string 'content' (or tool_calls)"),
    "content_type": Kind(
        "error", "'content' must be a string or a list of text (user: also image_url) parts"
    ),
    "invalid_weight": Kind("error", "'weight' must be 0 or 1"),
    "tool_call_format": Kind(
        "error", "tool_calls entries need id, type 'function', function{name, arguments}"
    ),
    "tools_format": Kind("error", "'tools' must be a list of {type: function, function: {...}}"),
    "tool_name": Kind(
        "error", "rename the tool (and its calls) to a name the provider takes (see the message)"
    ),
    "tool_schema": Kind(
        "error", "rewrite the tool's parameters with types, properties, anyOf and string enums"
    ),
    "tool_schema_changed": Kind(
        "warning", "check the converted tool schema (`tuneport convert --to vertex`) reads right"
    ),
    "unknown_key": Kind("warning", "remove the key; it is ignored"),
    "legacy_functions": Kind(
        "warning", "use tools / tool_calls / role 'tool' instead of the deprecated functions form"
    ),
    "invalid_record": Kind("error", "fix the record so it matches its format"),
    "missing_field": Kind("error", "add the missing field"),
    "row_width": Kind(
        "error",
        "give the row as many fields as the header (quote a field that holds the delimiter)",
    ),
    "not_text": Kind("error", "write text in the cell (NaN is a missing number, not text)"),
    # --- semantics
    "missing_assistant": Kind("error", "add at least one assistant reply to the example"),
    "missing_user": Kind("warning", "add a user turn; examples without one teach little"),
    "empty_content": Kind("error", "write some text in the message or remove it"),
    "blank_content": Kind(
        "warning", "the message holds only whitespace; write some text or remove it"
    ),
    "image_role": Kind("error", "put images in user messages only (OpenAI vision fine-tuning)"),
    "image_unsupported": Kind("error", "remove the image parts; this target takes text only"),
    "tool_message_id": Kind(
        "error", "set tool_call_id to the id of an earlier assistant tool call"
    ),
    "tool_arguments": Kind("error", "make function.arguments a JSON-encoded object string"),
    "duplicate_tool_call_id": Kind("error", "give every tool call a unique id"),
    "weight_role": Kind("error", "put 'weight' on assistant messages only"),
    "unsupported_field": Kind("warning", "this provider ignores the field; it is dropped"),
    # in the canonical (OpenAI) role names; a backend naming the sides otherwise words its own
    # fix (validation.rules.TurnOrder)
    "role_order": Kind("error", "alternate user and assistant turns, starting with a user turn"),
    "last_turn": Kind("error", "end the conversation with an assistant turn"),
    "system_position": Kind("error", "put system messages only at the start"),
    "empty_parts": Kind("error", "give every turn at least one non-empty part"),
    "tools_unsupported": Kind("error", "remove tool calls; this format is text only"),
    "preference_prompt": Kind("error", "end the prompt with a user turn"),
    "preference_reply": Kind("error", "chosen and rejected must be assistant text replies"),
    "same_preference": Kind("warning", "make the chosen and rejected replies differ"),
    "mixed_kinds": Kind("error", "keep chat and preference examples in separate files"),
    "token_limit": Kind("error", "shorten the example or split it into several"),
    "duplicate": Kind("warning", "remove exact duplicate examples"),
    "too_few_examples": Kind("error", "add more examples"),
    "few_examples": Kind("warning", "add more examples for better results"),
    "empty_file": Kind("error", "the file holds no examples"),
    "kto_undesirable": Kind("warning", "a label: false (undesirable) KTO row is left out"),
}


def problem(
    kind: str,
    message: str,
    *,
    file: str,
    line: int | None,
    column: int | None = None,
    severity: Severity | None = None,
    fix: str | None = None,
) -> Problem:
    """A :class:`Problem` of a known ``kind`` with its default severity and fix."""
    spec = KINDS[kind]
    return Problem(
        kind=kind,
        message=message,
        fix=fix or spec.fix,
        file=file,
        line=line,
        column=column,
        severity=severity or spec.severity,
    )


class RefusedFile(Exception):
    """Raised by an importer for a row showing the whole file is not for tuneport (one line,
    ``file:line`` added by the reader)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class SkippedRow(Exception):
    """Raised by an importer for a row it leaves out on purpose (``kind``: why, a warning)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class RowError(Exception):
    """Raised by an importer for a row it cannot turn into a record."""

    def __init__(self, findings: list[tuple[str, str] | tuple[str, str, str]]) -> None:
        """``findings``: (kind, message), or (kind, message, fix) for a fix of its own."""
        super().__init__("; ".join(f[1] for f in findings))
        self.findings = findings


def canonical_dict(record: AnyRecord) -> dict[str, Any]:
    """The canonical JSON object of a record (see the module docstring)."""
    data = record.model_dump(mode="json", exclude_none=True)
    if not data.get("metadata"):
        data.pop("metadata", None)
    data["format"] = FORMAT_VERSION
    return data


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
