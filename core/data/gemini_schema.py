"""OpenAI tool parameters (JSON Schema) → the OpenAPI subset Gemini's ``Schema`` accepts.

Gemini function declarations take ``parameters`` as a ``Schema`` (google-genai
``types.Schema``, the Vertex ``Schema`` message), not as JSON Schema. Checked against
google-genai 3.6.1 (2026-11-30): ``Schema`` rejects ``$schema``, ``$ref``/``$defs``, ``oneOf``,
``allOf``, ``const``, ``examples`` and unknown keywords (``extra="forbid"``), raises on a
``type`` list, and takes only strings in ``enum``. It accepts ``anyOf``, ``nullable``,
``additionalProperties``, ``format``, ``title``, ``description``, ``default``, ``example``,
``items``, ``properties``, ``required``, ``propertyOrdering`` and the min/max bounds.

:func:`to_gemini_schema` converts what has a Gemini equivalent and reports the rest:

* ``type: "string"`` → ``"STRING"``; ``type: ["string", "null"]`` → ``STRING`` + ``nullable``;
  several types → ``anyOf`` with one schema per type;
* ``oneOf`` → ``anyOf`` (looser: *at least one* instead of *exactly one*; noted);
* ``allOf`` → its members merged when they do not conflict, else a problem;
* ``const`` (a string) → ``enum: [value]``; a non-string ``const`` or ``enum`` is dropped (noted):
  Gemini enums are strings;
* ``$ref`` → the referenced ``$defs`` / ``definitions`` schema inlined (a recursive reference is
  a problem);
* ``$schema``, ``$id``, ``$comment`` are dropped silently (no meaning for the model); other
  keywords Gemini does not know are dropped and noted.

``notes`` are lossy but usable conversions (validation warns); ``problems`` mean the schema
cannot be expressed for Gemini (validation errors). No I/O and no SDK import here: the contract
tests check every output against ``google.genai.types.Schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# JSON Schema type -> Gemini Type
TYPES: dict[str, str] = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
    "null": "NULL",
}
# keywords kept as they are (Gemini Schema field, JSON Schema spelling)
KEPT = frozenset(
    {  # "type", "properties", "items", "additionalProperties", "anyOf" are converted
        "description",
        "title",
        "default",
        "example",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "nullable",
        "propertyOrdering",
    }
)
# keywords with no meaning for the model: dropped without a note
SILENT = frozenset({"$schema", "$id", "$comment", "strict"})
HANDLED = frozenset(
    {
        "type",
        "properties",
        "items",
        "anyOf",
        "oneOf",
        "allOf",
        "enum",
        "const",
        "$ref",
        "$defs",
        "definitions",
        "additionalProperties",
        "examples",
    }
)
MAX_DEPTH = 64


@dataclass
class Converted:
    """A converted schema, the lossy changes made (``notes``) and what could not be converted
    (``problems``)."""

    schema: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Converter:
    def __init__(self, root: Mapping[str, Any]) -> None:
        defs: dict[str, Any] = {}
        for key in ("definitions", "$defs"):
            if isinstance(root.get(key), Mapping):
                defs.update({f"#/{key}/{k}": v for k, v in root[key].items()})
        self.defs = defs
        self.notes: list[str] = []
        self.problems: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def convert(self, schema: Any, where: str, refs: tuple[str, ...] = ()) -> dict[str, Any]:
        if len(refs) > MAX_DEPTH or where.count(".") > MAX_DEPTH:
            self.problem(f"{where}: schema nested too deeply")
            return {}
        if not isinstance(schema, Mapping):
            if schema is True:
                return {}
            self.problem(f"{where}: a schema must be an object, got {schema!r}")
            return {}
        schema = dict(schema)
        ref = schema.pop("$ref", None)
        if ref is not None:
            target = self.defs.get(str(ref))
            if target is None:
                self.problem(f"{where}: $ref {ref!r} does not point into $defs/definitions")
            elif ref in refs:
                self.problem(f"{where}: recursive $ref {ref!r} cannot be inlined for Gemini")
            else:
                merged = {**dict(target), **schema}
                return self.convert(merged, where, (*refs, str(ref)))
        if "allOf" in schema:
            schema = self.merge_all_of(schema, where)
        out: dict[str, Any] = {}
        for key, value in schema.items():  # the input's key order is kept
            if key == "type":
                self.type_of(value, out, where)
            elif key in KEPT:
                out[key] = value
            elif key == "properties":
                if isinstance(value, Mapping):
                    out["properties"] = {
                        str(k): self.convert(v, f"{where}.{k}", refs) for k, v in value.items()
                    }
                else:
                    self.problem(f"{where}: 'properties' must be an object")
            elif key == "items":
                if isinstance(value, list):
                    self.note(f"{where}: tuple 'items' has no Gemini equivalent and was dropped")
                else:
                    out["items"] = self.convert(value, f"{where}[]", refs)
            elif key == "additionalProperties":
                out[key] = (
                    value if isinstance(value, bool) else self.convert(value, f"{where}.*", refs)
                )
            elif key in ("anyOf", "oneOf"):
                if key == "oneOf":
                    self.note(f"{where}: oneOf read as anyOf (Gemini has no oneOf)")
                if not isinstance(value, list):
                    self.problem(f"{where}: '{key}' must be a list")
                    continue
                branches = [
                    self.convert(o, f"{where}.{key}[{i}]", refs) for i, o in enumerate(value)
                ]
                out["anyOf"] = [*out.get("anyOf", []), *branches]
            elif key in ("enum", "const"):
                self.enum_of(key, value, out, where)
            elif key == "examples":
                if isinstance(value, list) and value and "example" not in schema:
                    out["example"] = value[0]
            elif key in SILENT or key in HANDLED:
                continue
            else:
                self.note(f"{where}: '{key}' has no Gemini equivalent and was dropped")
        return out

    def type_of(self, kind: Any, out: dict[str, Any], where: str) -> None:
        names = kind if isinstance(kind, list) else [kind]
        if not names or not all(isinstance(n, str) and n in TYPES for n in names):
            self.problem(f"{where}: unknown type {kind!r}")
            return
        real = [n for n in dict.fromkeys(names) if n != "null"]
        if not real:
            out["type"] = TYPES["null"]
        elif len(real) == 1:
            out["type"] = TYPES[real[0]]
        else:
            out["anyOf"] = [{"type": TYPES[n]} for n in real]
        if len(real) < len(names) and real:
            out["nullable"] = True

    def enum_of(self, key: str, value: Any, out: dict[str, Any], where: str) -> None:
        if key == "const":
            if isinstance(value, str):
                out["enum"] = [value]
                if "type" not in out:
                    out["type"] = TYPES["string"]
            else:
                self.note(f"{where}: const {value!r} dropped (Gemini enums are strings)")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out["enum"] = list(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value if v is not None):
            out["enum"] = [v for v in value if v is not None]
            out["nullable"] = True
        else:
            self.note(f"{where}: enum {value!r} dropped (Gemini enums are strings)")

    def merge_all_of(self, schema: dict[str, Any], where: str) -> dict[str, Any]:
        parts = schema.pop("allOf")
        if not isinstance(parts, list):
            self.problem(f"{where}: 'allOf' must be a list")
            return schema
        merged = dict(schema)
        for i, part in enumerate(parts):
            if not isinstance(part, Mapping):
                self.problem(f"{where}.allOf[{i}]: a schema must be an object")
                continue
            ref = part.get("$ref")
            if ref is not None and ref in self.defs:
                part = {**dict(self.defs[ref]), **{k: v for k, v in part.items() if k != "$ref"}}
            for key, value in part.items():
                if key == "properties" and isinstance(value, Mapping):
                    props = dict(merged.get("properties") or {})
                    for name, sub in value.items():
                        if name in props and props[name] != sub:
                            self.problem(
                                f"{where}: allOf members disagree on property {name!r}; "
                                "write the merged schema"
                            )
                        props[name] = sub
                    merged["properties"] = props
                elif key == "required" and isinstance(value, list):
                    merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
                elif key in merged and merged[key] != value:
                    self.problem(
                        f"{where}: allOf members disagree on '{key}'; write the merged schema"
                    )
                else:
                    merged[key] = value
        return merged


def to_gemini_schema(schema: Any) -> Converted:
    """Convert JSON Schema tool parameters for a Gemini ``functionDeclarations[].parameters``."""
    root = schema if isinstance(schema, Mapping) else {}
    conv = _Converter(root)
    out = conv.convert(schema, "parameters")
    return Converted(out, conv.notes, conv.problems)


_JSON_TYPES = {v: k for k, v in TYPES.items()}


def from_gemini_schema(schema: Any) -> Any:
    """A Gemini ``Schema`` dict back as JSON Schema (lower-case types, ``nullable`` as a
    ``null`` type); the inverse of :func:`to_gemini_schema` on what that produces."""
    if isinstance(schema, list):
        return [from_gemini_schema(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    nullable = schema.get("nullable") is True and isinstance(schema.get("type"), str)
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            name = _JSON_TYPES.get(value.upper(), value.lower())
            out["type"] = [name, "null"] if nullable else name
        elif key == "nullable" and nullable:
            continue
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {k: from_gemini_schema(v) for k, v in value.items()}
        elif key in ("items", "anyOf") or (
            key == "additionalProperties" and not isinstance(value, bool)
        ):
            out[key] = from_gemini_schema(value)
        else:
            out[key] = value
    return out


__all__ = ["Converted", "from_gemini_schema", "to_gemini_schema"]
