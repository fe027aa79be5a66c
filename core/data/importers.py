"""Importers: one pure function per input format, raw JSON value → canonical record.

Each raises :class:`~tuneport.data.rows.RowError` with every finding when a row cannot be turned
into a record, and appends non-fatal findings (kind, message) to ``notes``. They are looked up
by format name in :data:`IMPORTERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneport.data.import_community import from_alpaca, from_sharegpt, from_sharegpt_preference
from tuneport.data.import_gemini import from_vertex, from_vertex_preference
from tuneport.data.import_tables import from_hf, from_table
from tuneport.data.parsing import (
    Finding,
    Options,
    build,
    legacy_messages,
    legacy_tools,
    notes_of,
    opt_str,
    parse_message,
    parse_messages,
    parse_tools,
    require_dict,
    unknown_keys,
)
from tuneport.data.rows import RefusedFile, RowError, SkippedRow
from tuneport.schemas import (
    FORMAT_VERSION,
    AnyRecord,
    Example,
    Message,
    PreferenceExample,
)

Importer = Callable[[Any, Options, list[Finding]], AnyRecord]

# --- OpenAI -----------------------------------------------------------------------------------


def from_openai(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> Example:
    """An OpenAI chat fine-tuning row ``{"messages", "tools"?, "parallel_tool_calls"?}``."""
    row = require_dict(obj)
    notes = notes_of(notes)
    kto = kto_label(row, opts)
    known = {"messages", "tools", "functions", "parallel_tool_calls", "id"} | kto
    unknown_keys(row, known, notes)
    messages = parse_messages(row.get("messages"), "messages", notes)
    tools = parse_tools(legacy_tools(row, notes))
    return Example(
        messages=messages,
        tools=tools,
        parallel_tool_calls=row.get("parallel_tool_calls"),
        id=opt_str(row.get("id")),
    )


def kto_label(row: dict[str, Any], opts: Options | None) -> set[str]:
    """``{"label"}`` for a KTO row (LLaMA-Factory's ``kto`` data: ``{"messages", "label":
    true|false}``, the label saying whether the reply is desirable), else an empty set.

    Read as SFT, a ``label: false`` reply would be trained as a target: the row is refused
    unless ``opts.desirable_only``, which keeps ``label: true`` rows and leaves out the others
    (a warning each)."""
    if not isinstance(row.get("label"), bool):
        return set()
    if opts is None or not opts.desirable_only:
        raise RefusedFile(
            "KTO data (a true/false 'label' per row, as LLaMA-Factory's kto data): read as SFT, "
            "its label: false replies would be trained as targets",
            hint="tuneport trains SFT and DPO, not KTO: keep the label: true rows with "
            "`tuneport convert FILE --to PROVIDER --desirable-only` and train that file",
        )
    if not row["label"]:
        raise SkippedRow("kto_undesirable", "label: false (an undesirable reply) left out")
    return {"label"}


def _single_reply(raw: Any, key: str, notes: list[Finding]) -> Message:
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    elif isinstance(raw, list):
        raise RowError([("preference_reply", f"'{key}' must hold exactly one message")])
    if raw is None:
        raise RowError([("missing_field", f"'{key}' is missing")])
    findings: list[Finding] = []
    message = parse_message(legacy_messages([raw], notes, key)[0], key, findings)
    if findings or message is None:
        raise RowError(findings)
    return message


def from_openai_dpo(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> PreferenceExample:
    """An OpenAI DPO row ``{"input": {"messages", "tools"?, "parallel_tool_calls"?},
    "preferred_output", "non_preferred_output"}``."""
    row = require_dict(obj)
    notes = notes_of(notes)
    unknown_keys(row, {"input", "preferred_output", "non_preferred_output", "id"}, notes)
    source = require_dict(row.get("input"), "'input'")
    extra = sorted(set(source) - {"messages", "tools", "functions", "parallel_tool_calls"})
    if extra:
        notes.append(("unknown_key", f"unknown key(s) {extra} in 'input' ignored"))
    prompt = parse_messages(source.get("messages"), "input.messages", notes)
    chosen = _single_reply(row.get("preferred_output"), "preferred_output", notes)
    rejected = _single_reply(row.get("non_preferred_output"), "non_preferred_output", notes)
    tools = parse_tools(legacy_tools(source, notes))
    return PreferenceExample(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        tools=tools,
        parallel_tool_calls=source.get("parallel_tool_calls"),
        id=opt_str(row.get("id")),
    )


# --- canonical --------------------------------------------------------------------------------


def from_canonical(
    obj: Any, opts: Options | None = None, notes: list[Finding] | None = None
) -> AnyRecord:
    """A canonical ``tuneport/1`` line (see :mod:`tuneport.data.rows`)."""
    row = dict(require_dict(obj))
    version = row.pop("format", None)
    if version != FORMAT_VERSION:
        raise RowError([("invalid_record", f"format {version!r} is not {FORMAT_VERSION!r}")])
    kind = row.get("kind", "chat")
    if kind == "preference":
        return build(lambda: PreferenceExample.model_validate(row))
    return build(lambda: Example.model_validate(row))


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


__all__ = [
    "IMPORTERS",
    "Importer",
    "from_alpaca",
    "from_canonical",
    "from_hf",
    "from_openai",
    "from_openai_dpo",
    "from_sharegpt",
    "from_sharegpt_preference",
    "from_table",
    "from_vertex",
    "from_vertex_preference",
]
