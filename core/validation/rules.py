"""Validation checks and the :class:`Rules` value a backend hands to the validator.

Each check is a small pure function ``record → findings``. A backend's descriptor (in its own
module under ``providers/``) lists which checks apply and its numbers (minimum and recommended
examples, per-model token limits), each with its source; nothing here knows a provider. A check
whose wording depends on the backend (:class:`TurnOrder`: its names for the two sides of a
conversation) is a value the descriptor builds with the backend's words; checks only one backend
needs live in that backend's module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuneport.schemas import Example, Message, PreferenceExample, Severity


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    severity: Severity | None = None  # None: the kind's default (rows.KINDS)
    fix: str | None = None  # None: the kind's default fix (rows.KINDS), in user/assistant words


ChatCheck = Callable[[Example], Iterator[Finding]]
PrefCheck = Callable[[PreferenceExample], Iterator[Finding]]


def _label(i: int, m: Message) -> str:
    return f"messages[{i}] ({m.role})"


# --- checks shared by providers -----------------------------------------------------------------


def has_assistant(ex: Example) -> Iterator[Finding]:
    if not any(m.role == "assistant" for m in ex.messages):
        yield Finding("missing_assistant", "example has no assistant message")


def has_user(ex: Example) -> Iterator[Finding]:
    if not any(m.role == "user" for m in ex.messages):
        yield Finding("missing_user", "example has no user message")


def _has_images(m: Message) -> bool:
    return any(p.type == "image_url" for p in m.parts or ())


def content_present(ex: Example) -> Iterator[Finding]:
    """Empty content is an error (the OpenAI cookbook's check); whitespace-only content is a
    warning: no provider documents refusing it."""
    for i, m in enumerate(ex.messages):
        if m.tool_calls and (m.content is None or m.content == ""):
            continue
        if _has_images(m):
            continue
        if not m.content:
            yield Finding("empty_content", f"{_label(i, m)} has empty content")
        elif not m.content.strip():
            yield Finding("blank_content", f"{_label(i, m)} has whitespace-only content")


def images_in_user_turns(ex: Example) -> Iterator[Finding]:
    """OpenAI vision fine-tuning: images only in user messages ("You cannot include images as
    output from messages with the assistant role", vision fine-tuning guide)."""
    for i, m in enumerate(ex.messages):
        if _has_images(m) and m.role != "user":
            yield Finding("image_role", f"{_label(i, m)} holds an image")


def tool_links(ex: Example) -> Iterator[Finding]:
    """Tool results answer an earlier tool call by id; tool-call ids are unique."""
    seen: set[str] = set()
    for i, m in enumerate(ex.messages):
        for call in m.tool_calls or []:
            if call.id in seen:
                yield Finding("duplicate_tool_call_id", f"{_label(i, m)}: id {call.id!r} repeats")
            seen.add(call.id)
        if m.role == "tool":
            if not m.tool_call_id:
                yield Finding("tool_message_id", f"{_label(i, m)} has no tool_call_id")
            elif m.tool_call_id not in seen:
                yield Finding(
                    "tool_message_id",
                    f"{_label(i, m)}: tool_call_id {m.tool_call_id!r} matches no earlier call",
                )
        elif m.tool_call_id is not None:
            yield Finding("tool_message_id", f"{_label(i, m)}: tool_call_id on a non-tool message")
        if m.tool_calls and m.role != "assistant":
            yield Finding("tool_call_format", f"{_label(i, m)}: only assistants call tools")


def _arguments(ex: Example, *, object_only: bool) -> Iterator[Finding]:
    for i, m in enumerate(ex.messages):
        for call in m.tool_calls or []:
            try:
                value: Any = json.loads(call.function.arguments)
            except json.JSONDecodeError as exc:
                yield Finding(
                    "tool_arguments", f"{_label(i, m)}: arguments of {call.id!r} not JSON ({exc})"
                )
                continue
            if object_only and not isinstance(value, dict):
                yield Finding(
                    "tool_arguments", f"{_label(i, m)}: arguments of {call.id!r} not an object"
                )


def arguments_json(ex: Example) -> Iterator[Finding]:
    yield from _arguments(ex, object_only=False)


def arguments_object(ex: Example) -> Iterator[Finding]:
    """For targets whose tool-call arguments are a JSON object, not any JSON value."""
    yield from _arguments(ex, object_only=True)


def weight_on_assistant(ex: Example) -> Iterator[Finding]:
    for i, m in enumerate(ex.messages):
        if m.weight is not None and m.role != "assistant":
            yield Finding("weight_role", f"{_label(i, m)} has a weight")


def _has_weight(ex: Example) -> bool:
    return any(m.weight is not None for m in ex.messages)


def _has_names(ex: Example) -> bool:
    return any(m.name is not None and m.role != "tool" for m in ex.messages)


def _has_parallel(ex: Example) -> bool:
    return ex.parallel_tool_calls is not None


def _has_tool_calls(ex: Example) -> bool:
    return any(m.tool_calls for m in ex.messages) or bool(ex.tools)


def _has_image_parts(ex: Example) -> bool:
    return any(_has_images(m) for m in ex.messages)


@dataclass(frozen=True)
class Unsupported:
    """A check flagging a field the target cannot carry (picklable: rules travel to workers)."""

    field: str
    present: Callable[[Example], bool]

    def __call__(self, ex: Example) -> Iterator[Finding]:
        if self.present(ex):
            yield Finding("unsupported_field", f"'{self.field}' is not carried by this target")


no_weight = Unsupported("weight", _has_weight)
no_names = Unsupported("name", _has_names)
no_parallel = Unsupported("parallel_tool_calls", _has_parallel)
no_tool_calls = Unsupported("tool_calls", _has_tool_calls)
no_images = Unsupported("image_url", _has_image_parts)


@dataclass(frozen=True)
class TurnOrder:
    """A check on the order of turns, worded in the backend's names for the two sides.

    User and assistant turns alternate, starting with a user turn; a chat ends with an assistant
    turn, a preference prompt with a user turn; system messages only before the first turn. A
    run of tool results is one turn of the user side (the side that answers the assistant's
    calls). ``user``/``assistant`` are what the backend calls the two sides: findings and their
    fixes say those words (an ``assistant`` other than ``"assistant"`` is followed by
    "(assistant)" in the fix, the role the data itself holds). Serves as a chat and a
    preference check; picklable (rules travel to workers).
    """

    user: str = "user"
    assistant: str = "assistant"

    def __call__(self, ex: Example | PreferenceExample) -> Iterator[Finding]:
        if isinstance(ex, Example):
            yield from self._order(ex.messages, end=self.assistant)
        else:
            yield from self._order(ex.prompt, end=self.user)

    def _sides(self, messages: list[Message]) -> Iterator[tuple[int, str] | Finding]:
        """The sequence of (index, side), merging consecutive tool results."""
        started = False
        last = ""
        for i, m in enumerate(messages):
            if m.role == "system":
                if started:
                    yield Finding("system_position", f"{_label(i, m)} after the conversation began")
                continue
            started = True
            side = self.assistant if m.role == "assistant" else self.user
            if m.role == "tool" and last == "tool":
                continue
            last = m.role
            yield i, side

    def _order(self, messages: list[Message], end: str) -> Iterator[Finding]:
        user, assistant = self.user, self.assistant
        alternate = f"alternate {user} and {assistant} turns, starting with {_a(user)} turn"
        previous = assistant
        index = -1
        for item in self._sides(messages):
            if isinstance(item, Finding):
                yield item
                continue
            index, side = item
            if side == previous:
                expected = user if previous == assistant else assistant
                yield Finding(
                    "role_order",
                    f"{_label(index, messages[index])}: expected {_a(expected)} turn",
                    fix=alternate,
                )
            previous = side
        if index >= 0 and previous != end:
            if end == assistant:
                shown = assistant if assistant == "assistant" else f"{assistant} (assistant)"
                kind, fix = "last_turn", f"end the conversation with {_a(shown)} turn"
            else:
                kind, fix = "preference_prompt", f"end the prompt with {_a(user)} turn"
            yield Finding(kind, f"conversation ends with {_a(previous)} turn, not {end}", fix=fix)


def _a(word: str) -> str:
    """``word`` with its indefinite article ("an assistant", "a user", "a model")."""
    return f"{'an' if word[:1] in 'aeio' else 'a'} {word}"


@dataclass(frozen=True)
class ToolNames:
    """A check: every tool (function) name, declared or called, matches the provider's rule.

    ``pattern`` must match the whole name; ``allowed`` says the rule in words. Serves as a chat
    and a preference check (both kinds of record carry tools and tool calls).
    """

    pattern: str
    allowed: str

    def __call__(self, ex: Example | PreferenceExample) -> Iterator[Finding]:
        rule = re.compile(self.pattern)
        turns = ex.messages if isinstance(ex, Example) else [*ex.prompt, ex.chosen, ex.rejected]
        named = [(f"tools[{i}]", t.function.name) for i, t in enumerate(ex.tools or ())]
        named += [("a tool call", c.function.name) for m in turns for c in m.tool_calls or ()]
        seen: set[str] = set()
        for where, name in named:
            if name in seen or rule.fullmatch(name):
                continue
            seen.add(name)
            shown = repr(name) if len(name) <= 40 else f"{name[:40]!r}... ({len(name):,} chars)"
            yield Finding("tool_name", f"{where}: tool name {shown} is not allowed: {self.allowed}")


# --- preference checks --------------------------------------------------------------------------


def pref_prompt_ends_user(ex: PreferenceExample) -> Iterator[Finding]:
    last = next((m for m in reversed(ex.prompt) if m.role != "system"), None)
    if last is None or last.role != "user":
        yield Finding("preference_prompt", "the prompt does not end with a user turn")


def pref_replies(ex: PreferenceExample) -> Iterator[Finding]:
    for key, m in (("chosen", ex.chosen), ("rejected", ex.rejected)):
        if m.role != "assistant":
            yield Finding("preference_reply", f"{key} reply has role {m.role!r}")
        elif not m.content and not m.tool_calls:
            yield Finding("empty_content", f"{key} reply is empty")
        elif m.content is not None and not m.content.strip() and not m.tool_calls:
            yield Finding("blank_content", f"{key} reply is whitespace only")
    if ex.chosen.model_dump() == ex.rejected.model_dump():
        yield Finding("same_preference", "chosen and rejected replies are identical")


def pref_prompt_content(ex: PreferenceExample) -> Iterator[Finding]:
    yield from content_present(Example(messages=ex.prompt))
    yield from tool_links(Example(messages=ex.prompt))


def pref_text_inputs(ex: PreferenceExample) -> Iterator[Finding]:
    """Preference data is text only (OpenAI DPO guide: "currently only supported for text
    inputs and outputs"; Vertex preference tuning: text only)."""
    if any(_has_images(m) for m in [*ex.prompt, ex.chosen, ex.rejected]):
        yield Finding("image_unsupported", "preference examples take text only")


def pref_no_parallel(ex: PreferenceExample) -> Iterator[Finding]:
    """``input.parallel_tool_calls`` is OpenAI's; a target without it drops the field."""
    if ex.parallel_tool_calls is not None:
        yield Finding("unsupported_field", "'parallel_tool_calls' is not carried by this target")


# --- the rules value a backend supplies ------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """Everything backend-specific about validation; numbers carry their source.

    ``model_limits`` maps a model-id prefix to its per-example token limit (the longest matching
    prefix wins; ``ft:`` ids use their base model); ``token_limit`` applies to other models.
    ``sources`` names where each number comes from and when it was read (fact → "source
    (date)"; keys ``min_examples``, ``recommended_examples``, ``token_limit``, or
    ``token_limit:<prefix>`` for a model limit); ``tuneport prices`` shows them.
    """

    provider: str
    min_examples: int  # fewer is an error
    recommended_examples: int  # fewer is a warning
    token_limit: int | None  # per-example limit when no model prefix matches
    token_limit_severity: Severity
    chat: tuple[ChatCheck, ...]
    preference: tuple[PrefCheck, ...]
    source: str
    model_limits: Mapping[str, int] = field(default_factory=dict)
    token_limit_note: str = "the provider rejects or truncates them"
    sources: Mapping[str, str] = field(default_factory=dict)

    def source_of(self, fact: str) -> str:
        """Where ``fact`` comes from (its own source, else the rules' ``source``)."""
        return self.sources.get(fact, self.source)

    def limit_for(self, model: str | None) -> int | None:
        """The per-example token limit of ``model`` (``None``: no limit)."""
        if model:
            base = model[3:].split(":", 1)[0] if model.startswith("ft:") else model
            matches = [p for p in self.model_limits if base.startswith(p)]
            if matches:
                return self.model_limits[max(matches, key=len)]
        return self.token_limit


COMMON_CHAT: tuple[ChatCheck, ...] = (
    has_assistant,
    has_user,
    content_present,
    tool_links,
    weight_on_assistant,
)
# OpenAI-format chat where a weight may be on any message (Fireworks, Together): COMMON_CHAT
# less weight_on_assistant, plus tool-call arguments that parse as JSON
ANY_WEIGHT_CHAT: tuple[ChatCheck, ...] = (
    has_assistant,
    has_user,
    content_present,
    tool_links,
    arguments_json,
)
COMMON_PREFERENCE: tuple[PrefCheck, ...] = (
    pref_prompt_ends_user,
    pref_replies,
    pref_prompt_content,
    pref_text_inputs,
)
