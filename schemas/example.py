"""Canonical training records: a chat conversation or a preference pair.

The canonical JSONL file (``*.tuneport.jsonl``) holds one record per line, each a JSON object
produced by ``Record.model_dump(mode="json", exclude_none=True)`` plus ``"format":
"tuneport/1"``. ``kind`` tells the two record types apart. No I/O lives here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

FORMAT_VERSION = "tuneport/1"

MAX_NESTING = 128
"""The deepest a free-form value (a tool's JSON Schema, metadata) may nest: pydantic cannot
write values much deeper (~250 levels), and no provider takes schemas anywhere near it."""


def _nesting(value: Any) -> int:
    """How many levels of objects and arrays ``value`` nests (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_NESTING:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _shallow(value: Any) -> Any:
    if _nesting(value) > MAX_NESTING:
        raise ValueError(
            f"nested more than {MAX_NESTING} levels deep; flatten it (no provider takes a "
            "schema this deep)"
        )
    return value


Shallow = Annotated[dict[str, Any], AfterValidator(_shallow)]

Role = Literal["system", "user", "assistant", "tool"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class FunctionCall(_Strict):
    """The function an assistant asks to call; ``arguments`` is a JSON-encoded string."""

    name: str
    arguments: str


class ToolCall(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionSpec(_Strict):
    """OpenAI's ``FunctionObject``: name, description, JSON Schema parameters and ``strict``
    (structured outputs for the tool's arguments)."""

    name: str
    description: str | None = None
    parameters: Shallow | None = None
    strict: bool | None = None


class ToolSpec(_Strict):
    """A tool the model may call (OpenAI ``tools`` entry)."""

    type: Literal["function"] = "function"
    function: FunctionSpec


class ImageURL(_Strict):
    url: str  # an https:// URL or a data: URL
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(_Strict):
    type: Literal["text"] = "text"
    text: str


class ImagePart(_Strict):
    """An image in a user turn (OpenAI vision fine-tuning)."""

    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Strict):
    """One turn. ``content`` may be ``None`` only for an assistant turn that calls tools.

    ``weight`` (assistant only) 0 excludes the turn from the loss, 1 includes it; ``None`` means
    the provider's default (trained). ``parts`` keeps the content parts, in order, of a turn that
    holds more than text (images); ``content`` is then the joined text of its text parts, which
    is what validation and token counts read.
    """

    role: Role
    content: str | None = None
    parts: list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    weight: Literal[0, 1] | None = None


class Example(_Strict):
    """A supervised (SFT) conversation."""

    kind: Literal["chat"] = "chat"
    id: str | None = None
    messages: list[Message]
    tools: list[ToolSpec] | None = None
    parallel_tool_calls: bool | None = None
    metadata: Shallow = Field(default_factory=dict)


class PreferenceExample(_Strict):
    """A preference pair for DPO: the prompt turns, then a preferred and a rejected reply."""

    kind: Literal["preference"] = "preference"
    id: str | None = None
    prompt: list[Message]
    chosen: Message
    rejected: Message
    tools: list[ToolSpec] | None = None
    parallel_tool_calls: bool | None = None
    metadata: Shallow = Field(default_factory=dict)


Record = Annotated[Example | PreferenceExample, Field(discriminator="kind")]
# One training record of either kind, as passed between importers, validators and counters.
AnyRecord = Example | PreferenceExample
