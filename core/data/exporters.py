"""Exporters: pure functions record → provider dict, and the file writer around them.

What a target cannot carry is counted: the pure ``to_*`` functions add one per occurrence to an
optional ``dropped`` counter; :class:`ExportResult` ``.dropped`` counts the examples affected per
kind. Nothing is dropped silently. Targets and record kinds are looked up in
:data:`EXPORTERS` (data, not if-chains).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from tuneport.data.gemini_schema import to_gemini_schema
from tuneport.data.rows import canonical_dict
from tuneport.errors import InputError
from tuneport.files import atomic_path, sha256_file
from tuneport.schemas import AnyRecord, Example, Message, PreferenceExample, ToolSpec

Dropped = Counter[str]
Kind = Literal["chat", "preference"]


class ExportResult(BaseModel):
    """What an export wrote: the path, how many examples, what was dropped, the output hash."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    target: str
    format: str
    examples: int
    dropped: dict[str, int]
    sha256: str


def _drop(dropped: Dropped | None, *kinds: str) -> None:
    if dropped is not None:
        for kind in set(kinds):
            dropped[kind] += 1


def _common_drops(record: AnyRecord, dropped: Dropped | None) -> None:
    if record.id is not None:
        _drop(dropped, "id")
    if record.metadata:
        _drop(dropped, "metadata")


# --- OpenAI -----------------------------------------------------------------------------------


def openai_message(message: Message, dropped: Dropped | None = None) -> dict[str, Any]:
    """One message as OpenAI's request types have it: content parts (images) as ``content``;
    no ``name`` on a tool message (``ChatCompletionRequestToolMessage`` has role, content and
    tool_call_id only)."""
    data = message.model_dump(mode="json", exclude_none=True, exclude={"parts"})
    if message.parts is not None:
        data["content"] = [p.model_dump(mode="json", exclude_none=True) for p in message.parts]
    if message.role == "tool" and data.pop("name", None) is not None:
        _drop(dropped, "name")
    return data


def to_openai(record: Example, dropped: Dropped | None = None) -> dict[str, Any]:
    """OpenAI chat fine-tuning row: ``{"messages", "tools"?, "parallel_tool_calls"?}``."""
    _common_drops(record, dropped)
    row: dict[str, Any] = {"messages": [openai_message(m, dropped) for m in record.messages]}
    if record.tools:
        row["tools"] = [t.model_dump(mode="json", exclude_none=True) for t in record.tools]
    if record.parallel_tool_calls is not None:
        row["parallel_tool_calls"] = record.parallel_tool_calls
    return row


def to_openai_dpo(record: PreferenceExample, dropped: Dropped | None = None) -> dict[str, Any]:
    """OpenAI DPO row: ``{"input": {"messages", "tools"?, "parallel_tool_calls"?},
    "preferred_output": [msg], "non_preferred_output": [msg]}``."""
    _common_drops(record, dropped)
    source: dict[str, Any] = {"messages": [openai_message(m, dropped) for m in record.prompt]}
    if record.tools:
        source["tools"] = [t.model_dump(mode="json", exclude_none=True) for t in record.tools]
    if record.parallel_tool_calls is not None:
        source["parallel_tool_calls"] = record.parallel_tool_calls
    return {
        "input": source,
        "preferred_output": [openai_message(record.chosen, dropped)],
        "non_preferred_output": [openai_message(record.rejected, dropped)],
    }


# --- Together ---------------------------------------------------------------------------------
# docs.together.ai/docs/fine-tuning/data-preparation and /fine-tuning/function-calling: a
# conversational row has ``messages`` and ``tools`` only (SDK together/lib/constants.py:
# JSONL_REQUIRED_COLUMNS_MAP / JSONL_EXTRA_COLUMNS_MAP); a preference row nests ``tools`` in
# ``input``. OpenAI's ``parallel_tool_calls`` is not among them: it is left out and reported.


def to_together(record: Example, dropped: Dropped | None = None) -> dict[str, Any]:
    """Together conversational row: ``{"messages", "tools"?}``."""
    row = to_openai(record, dropped)
    if row.pop("parallel_tool_calls", None) is not None:
        _drop(dropped, "parallel_tool_calls")
    return row


def to_together_dpo(record: PreferenceExample, dropped: Dropped | None = None) -> dict[str, Any]:
    """Together preference row: ``{"input": {"messages", "tools"?}, "preferred_output",
    "non_preferred_output"}``."""
    row = to_openai_dpo(record, dropped)
    if row["input"].pop("parallel_tool_calls", None) is not None:
        _drop(dropped, "parallel_tool_calls")
    return row


# --- Vertex Gemini ------------------------------------------------------------------------------


def _args_object(arguments: str) -> dict[str, Any] | None:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _model_parts(
    message: Message, names: dict[str, str], dropped: Dropped | None
) -> list[dict[str, Any]]:
    """Text and ``functionCall`` parts; records each kept call's name in ``names`` by id."""
    parts: list[dict[str, Any]] = []
    if message.content is not None and (message.content or not message.tool_calls):
        parts.append({"text": message.content})
    for call in message.tool_calls or []:
        args = _args_object(call.function.arguments)
        if args is None:  # Gemini needs an object: drop the call (and, below, its result)
            _drop(dropped, "tool_call_arguments_not_object")
            continue
        names[call.id] = call.function.name
        parts.append({"functionCall": {"name": call.function.name, "args": args}})
    return parts


def _response_part(message: Message, names: dict[str, str]) -> dict[str, Any]:
    name = names.get(message.tool_call_id or "", message.name or "")
    return {"functionResponse": {"name": name, "response": {"output": message.content or ""}}}


def _field_drops(messages: list[Message], dropped: Dropped | None) -> None:
    for message in messages:
        if message.weight is not None:
            _drop(dropped, "weight")
        if message.name is not None and message.role != "tool":
            _drop(dropped, "name")
        _image_drops(message, dropped)


def _image_drops(message: Message, dropped: Dropped | None) -> None:
    if any(p.type == "image_url" for p in message.parts or ()):
        _drop(dropped, "image_url")


def _gemini_contents(
    messages: list[Message], dropped: Dropped | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system parts, contents) for Gemini; tool results are ``functionResponse`` user parts."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    _field_drops(messages, dropped)
    for i, message in enumerate(messages):
        if message.role == "system":
            if contents or any(m.role != "system" for m in messages[:i]):
                _drop(dropped, "system_mid_conversation")
            else:
                system.append({"text": message.content or ""})
        elif message.role == "assistant":
            contents.append({"role": "model", "parts": _model_parts(message, names, dropped)})
        elif message.role == "tool":
            if message.tool_call_id is not None and message.tool_call_id not in names:
                _drop(dropped, "tool_result_of_dropped_call")
                continue
            part = _response_part(message, names)
            if (
                contents
                and contents[-1]["role"] == "user"
                and "functionResponse" in (contents[-1]["parts"][-1])
            ):
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            contents.append({"role": "user", "parts": [{"text": message.content or ""}]})
    return system, contents


def gemini_tools(
    tools: list[ToolSpec] | None, dropped: Dropped | None = None
) -> list[dict[str, Any]] | None:
    """Gemini ``tools``: one ``functionDeclarations`` entry, each function's JSON Schema
    ``parameters`` converted to the OpenAPI subset Gemini's ``Schema`` takes
    (:func:`tuneport.data.gemini_schema.to_gemini_schema`); OpenAI's ``strict`` flag has no
    Gemini field and is dropped (counted)."""
    if not tools:
        return None
    decls = []
    for tool in tools:
        fn = tool.function
        decl: dict[str, Any] = {"name": fn.name}
        if fn.description is not None:
            decl["description"] = fn.description
        if fn.parameters is not None:
            decl["parameters"] = to_gemini_schema(fn.parameters).schema
        if fn.strict is not None:
            _drop(dropped, "strict")
        decls.append(decl)
    return [{"functionDeclarations": decls}]


def to_vertex(record: Example, dropped: Dropped | None = None) -> dict[str, Any]:
    """Vertex Gemini SFT row: ``{"systemInstruction"?, "contents", "tools"?}``."""
    _common_drops(record, dropped)
    if record.parallel_tool_calls is not None:
        _drop(dropped, "parallel_tool_calls")
    system, contents = _gemini_contents(record.messages, dropped)
    row: dict[str, Any] = {}
    if system:
        row["systemInstruction"] = {"role": "system", "parts": system}
    row["contents"] = contents
    tools = gemini_tools(record.tools, dropped)
    if tools:
        row["tools"] = tools
    return row


def _reply(message: Message, score: int, dropped: Dropped | None) -> dict[str, Any]:
    if message.tool_calls:
        _drop(dropped, "tool_calls")
    return {
        "score": score,
        "completion": {"role": "model", "parts": [{"text": message.content or ""}]},
    }


def to_vertex_preference(
    record: PreferenceExample, dropped: Dropped | None = None
) -> dict[str, Any]:
    """Vertex preference row: ``contents`` (ending with a user turn) + two scored completions."""
    _common_drops(record, dropped)
    if record.tools:
        _drop(dropped, "tools")
    if record.parallel_tool_calls is not None:
        _drop(dropped, "parallel_tool_calls")
    system, contents = _gemini_contents(record.prompt, dropped)
    row: dict[str, Any] = {}
    if system:
        row["system_instruction"] = {"parts": system}
    row["contents"] = contents
    row["completions"] = [_reply(record.chosen, 1, dropped), _reply(record.rejected, 0, dropped)]
    return row


# --- local (Hugging Face datasets rows) ----------------------------------------------------------


# Every message dict of a local chat row has these keys (``None`` where absent), so that each
# column has one Arrow struct type (see ``tuneport.data.hfwrite``). The local trainer reads them:
# ``weight: 0`` masks the turn from the loss, tool calls/results and ``tools`` go to the chat
# template. ``content`` is a string ("" for an assistant turn that only calls tools).
LOCAL_MESSAGE_KEYS = ("role", "content", "weight", "tool_calls", "tool_call_id", "name")


def _plain(messages: list[Message], dropped: Dropped | None) -> list[dict[str, str]]:
    """Role and content only (what the DPO path uses); everything else is reported dropped."""
    out: list[dict[str, str]] = []
    for m in messages:
        if m.tool_calls:
            _drop(dropped, "tool_calls")
        if m.tool_call_id:
            _drop(dropped, "tool_call_id")
        if m.weight is not None:
            _drop(dropped, "weight")
        if m.name is not None:
            _drop(dropped, "name")
        _image_drops(m, dropped)
        out.append({"role": m.role, "content": m.content or ""})
    return out


def _local_message(message: Message) -> dict[str, Any]:
    calls = message.tool_calls
    return {
        "role": message.role,
        "content": message.content or "",
        "weight": message.weight,
        "tool_calls": [c.model_dump(mode="json") for c in calls] if calls else None,
        "tool_call_id": message.tool_call_id,
        "name": message.name,
    }


def to_local(record: Example, dropped: Dropped | None = None) -> dict[str, Any]:
    """A TRL row: conversational ``messages`` plus ``prompt``/``completion`` (everything up to
    the last assistant turn / that turn) for completion-only training, and ``tools`` (the tool
    list JSON-encoded, or ``None``). Messages keep weights, tool calls, tool results and names."""
    _common_drops(record, dropped)
    if record.parallel_tool_calls is not None:
        _drop(dropped, "parallel_tool_calls")
    for m in record.messages:
        _image_drops(m, dropped)
    messages = [_local_message(m) for m in record.messages]
    last = max(
        (i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages)
    )
    tools = (
        json.dumps(
            [t.model_dump(mode="json", exclude_none=True) for t in record.tools],
            ensure_ascii=False,
        )
        if record.tools
        else None
    )
    return {
        "messages": messages,
        "prompt": messages[:last],
        "completion": messages[last : last + 1],
        "tools": tools,
    }


def to_local_preference(
    record: PreferenceExample, dropped: Dropped | None = None
) -> dict[str, Any]:
    """A TRL preference row in conversational form: ``prompt``, ``chosen``, ``rejected``."""
    _common_drops(record, dropped)
    if record.tools:
        _drop(dropped, "tools")
    if record.parallel_tool_calls is not None:
        _drop(dropped, "parallel_tool_calls")
    return {
        "prompt": _plain(record.prompt, dropped),
        "chosen": _plain([record.chosen], dropped),
        "rejected": _plain([record.rejected], dropped),
    }


def to_canonical(record: AnyRecord, dropped: Dropped | None = None) -> dict[str, Any]:
    """The canonical line (lossless)."""
    return canonical_dict(record)


# --- lookup -----------------------------------------------------------------------------------

RecordExporter = Callable[[Any, Dropped | None], dict[str, Any]]


@dataclass(frozen=True)
class Target:
    """One export target: its exporter per record kind, the format names, how it is written."""

    exporters: dict[Kind, RecordExporter]
    formats: dict[Kind, str]
    writer: Literal["jsonl", "hf"]
    suffix: str


EXPORTERS: dict[str, Target] = {
    "openai": Target(
        {"chat": to_openai, "preference": to_openai_dpo},
        {"chat": "openai", "preference": "openai-dpo"},
        "jsonl",
        ".openai.jsonl",
    ),
    "together": Target(
        {"chat": to_together, "preference": to_together_dpo},
        {"chat": "openai", "preference": "openai-dpo"},
        "jsonl",
        ".together.jsonl",
    ),
    "vertex": Target(
        {"chat": to_vertex, "preference": to_vertex_preference},
        {"chat": "vertex", "preference": "vertex-preference"},
        "jsonl",
        ".vertex.jsonl",
    ),
    "local": Target(
        {"chat": to_local, "preference": to_local_preference},
        {"chat": "hf", "preference": "hf"},
        "hf",
        ".hf",
    ),
    "canonical": Target(
        {"chat": to_canonical, "preference": to_canonical},
        {"chat": "canonical", "preference": "canonical"},
        "jsonl",
        ".canonical.jsonl",
    ),
}

METHOD_KIND: dict[str, Kind] = {"sft": "chat", "dpo": "preference"}


def as_sft(record: PreferenceExample, dropped: Dropped | None) -> Example:
    """A preference pair as an SFT conversation on the chosen reply (the rejected is dropped)."""
    _drop(dropped, "rejected")
    return Example(
        id=record.id,
        messages=[*record.prompt, record.chosen],
        tools=record.tools,
        parallel_tool_calls=record.parallel_tool_calls,
        metadata=record.metadata,
    )


def target_of(name: str) -> Target:
    try:
        return EXPORTERS[name]
    except KeyError:
        raise InputError(
            f"unknown target {name!r}", hint=f"use one of: {', '.join(EXPORTERS)}"
        ) from None


def default_output(source: Path, target: str, name: str | None = None) -> Path:
    """``<stem>.<name>.jsonl`` beside the input (``<stem>.hf/`` for local): ``name`` is what
    ``--to`` named (a backend writing another target's format, e.g. ``fireworks``), else the
    target's own name."""
    spec = target_of(target)
    suffix = spec.suffix if name in (None, target) or spec.writer != "jsonl" else f".{name}.jsonl"
    stem = source.name if source.is_dir() else source.stem
    return source.with_name(stem + suffix)


def export_rows(
    records: Iterable[AnyRecord], target: str, method: str | None = None
) -> tuple[Iterator[dict[str, Any]], Dropped, list[Kind]]:
    """Lazily exported dicts, the shared ``dropped`` counter, and the kind seen (filled lazily)."""
    spec = target_of(target)
    dropped: Dropped = Counter()
    kinds: list[Kind] = [METHOD_KIND[method]] if method else []

    def rows() -> Iterator[dict[str, Any]]:
        for index, record in enumerate(records, start=1):
            if not kinds:
                kinds.append(record.kind)
            kind = kinds[0]
            if kind == "chat" and isinstance(record, PreferenceExample):
                if not method:
                    raise _mixed(index)
                record = as_sft(record, dropped)
            elif kind == "preference" and isinstance(record, Example):
                raise (
                    _mixed(index)
                    if not method
                    else InputError(
                        f"record {index} is a chat example; --method dpo needs preference pairs",
                        hint="use --method sft, or a preference dataset",
                    )
                )
            found: Dropped = Counter()
            row = spec.exporters[kind](record, found)
            dropped.update(found.keys())  # examples affected, not occurrences
            yield row

    return rows(), dropped, kinds


def _mixed(index: int) -> InputError:
    return InputError(
        f"record {index} mixes chat and preference examples in one file",
        hint="keep chat and preference examples in separate files",
    )


def export_records(
    records: Iterable[AnyRecord],
    target: str,
    out: Path,
    *,
    force: bool = False,
    inputs: tuple[Path, ...] = (),
    method: str | None = None,
) -> ExportResult:
    """Write ``records`` for ``target`` to ``out`` atomically (a file, or a folder for local)."""
    spec = target_of(target)
    rows, dropped, kinds = export_rows(records, target, method)
    if spec.writer == "hf":
        from tuneport.data.hfwrite import write_hf

        count = write_hf(rows, out, force=force, inputs=inputs)
        digest = _folder_digest(out)
    else:
        count = _write_jsonl(rows, out, force=force, inputs=inputs)
        digest = sha256_file(out)
    kind: Kind = kinds[0] if kinds else "chat"
    return ExportResult(
        path=out,
        target=target,
        format=spec.formats[kind],
        examples=count,
        dropped=dict(sorted(dropped.items())),
        sha256=digest,
    )


def _write_jsonl(
    rows: Iterator[dict[str, Any]], out: Path, *, force: bool, inputs: tuple[Path, ...]
) -> int:
    count = 0
    with atomic_path(out, force=force, inputs=inputs) as tmp, tmp.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
            count += 1
        if not count:
            raise InputError("no examples to export", hint="check the input file")
    return count


def _folder_digest(folder: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


__all__ = ["EXPORTERS", "ExportResult", "default_output", "export_records"]
