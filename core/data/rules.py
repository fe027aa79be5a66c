"""Validation rules per provider, as data: a :class:`ProviderRules` object per provider name.

Each rule is a small pure check ``record → findings``; providers differ only by which checks
they list and by their numbers (minimum examples, token limit), each with its source.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tuneport.schemas import Example, Message, PreferenceExample, Severity


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    severity: Severity | None = None  # None: the kind's default (rows.KINDS)


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


def content_present(ex: Example) -> Iterator[Finding]:
    for i, m in enumerate(ex.messages):
        if m.tool_calls and (m.content is None or m.content == ""):
            continue
        if m.content is None or not m.content.strip():
            yield Finding("empty_content", f"{_label(i, m)} has empty or whitespace-only content")


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
    """Gemini ``functionCall.args`` is a JSON object."""
    yield from _arguments(ex, object_only=True)


def weight_on_assistant(ex: Example) -> Iterator[Finding]:
    for i, m in enumerate(ex.messages):
        if m.weight is not None and m.role != "assistant":
            yield Finding("weight_role", f"{_label(i, m)} has a weight")


def _unsupported(field: str, present: Callable[[Example], bool]) -> ChatCheck:
    def check(ex: Example) -> Iterator[Finding]:
        if present(ex):
            yield Finding("unsupported_field", f"'{field}' is not carried by this target")

    check.__name__ = f"unsupported_{field}"
    return check


no_weight = _unsupported("weight", lambda ex: any(m.weight is not None for m in ex.messages))
no_names = _unsupported(
    "name", lambda ex: any(m.name is not None and m.role != "tool" for m in ex.messages)
)
no_parallel = _unsupported("parallel_tool_calls", lambda ex: ex.parallel_tool_calls is not None)
no_tool_calls = _unsupported(
    "tool_calls", lambda ex: any(m.tool_calls for m in ex.messages) or bool(ex.tools)
)


def _gemini_roles(messages: list[Message]) -> Iterator[tuple[int, str] | Finding]:
    """The Gemini role sequence (index, user|model), merging consecutive tool results."""
    started = False
    last = ""
    for i, m in enumerate(messages):
        if m.role == "system":
            if started:
                yield Finding("system_position", f"{_label(i, m)} after the conversation began")
            continue
        started = True
        role = "model" if m.role == "assistant" else "user"
        if m.role == "tool" and last == "tool":
            continue
        last = m.role
        yield i, role


def _alternation(messages: list[Message], end: str) -> Iterator[Finding]:
    previous = "model"
    index = -1
    for item in _gemini_roles(messages):
        if isinstance(item, Finding):
            yield item
            continue
        index, role = item
        if role == previous:
            expected = "user" if previous == "model" else "model"
            yield Finding(
                "role_order", f"{_label(index, messages[index])}: expected a {expected} turn"
            )
        previous = role
    if index >= 0 and previous != end:
        kind = "last_turn" if end == "model" else "preference_prompt"
        yield Finding(kind, f"conversation ends with a {previous} turn, not {end}")


def gemini_roles(ex: Example) -> Iterator[Finding]:
    """User/model alternation starting with user, ending with model; system only first."""
    yield from _alternation(ex.messages, "model")


def gemini_parts(ex: Example) -> Iterator[Finding]:
    for i, m in enumerate(ex.messages):
        if m.role != "system" and not m.tool_calls and not m.content:
            yield Finding("empty_parts", f"{_label(i, m)} would become an empty part")


# --- preference checks --------------------------------------------------------------------------


def pref_prompt_ends_user(ex: PreferenceExample) -> Iterator[Finding]:
    last = next((m for m in reversed(ex.prompt) if m.role != "system"), None)
    if last is None or last.role != "user":
        yield Finding("preference_prompt", "the prompt does not end with a user turn")


def pref_replies(ex: PreferenceExample) -> Iterator[Finding]:
    for key, m in (("chosen", ex.chosen), ("rejected", ex.rejected)):
        if m.role != "assistant":
            yield Finding("preference_reply", f"{key} reply has role {m.role!r}")
        elif not (m.content or "").strip() and not m.tool_calls:
            yield Finding("empty_content", f"{key} reply is empty")
    if ex.chosen.model_dump() == ex.rejected.model_dump():
        yield Finding("same_preference", "chosen and rejected replies are identical")


def pref_prompt_content(ex: PreferenceExample) -> Iterator[Finding]:
    yield from content_present(Example(messages=ex.prompt))
    yield from tool_links(Example(messages=ex.prompt))


def pref_text_only(ex: PreferenceExample) -> Iterator[Finding]:
    if ex.tools or any(m.tool_calls for m in [*ex.prompt, ex.chosen, ex.rejected]):
        yield Finding("tools_unsupported", "Vertex preference data is text only")


def pref_gemini_roles(ex: PreferenceExample) -> Iterator[Finding]:
    yield from _alternation(ex.prompt, "user")


# --- the per-provider rule sets -------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderRules:
    """Everything provider-specific about validation; numbers carry their source."""

    provider: str
    min_examples: int  # fewer is an error
    recommended_examples: int  # fewer is a warning
    token_limit: int | None  # default per-example limit when the model's is unknown
    token_limit_severity: Severity
    chat: tuple[ChatCheck, ...]
    preference: tuple[PrefCheck, ...]
    source: str


_COMMON: tuple[ChatCheck, ...] = (
    has_assistant,
    has_user,
    content_present,
    tool_links,
    weight_on_assistant,
)
_PREF_COMMON: tuple[PrefCheck, ...] = (pref_prompt_ends_user, pref_replies, pref_prompt_content)

RULES: dict[str, ProviderRules] = {
    # OpenAI fine-tuning guide + cookbook "Data preparation and analysis for chat model
    # fine-tuning": minimum 10 examples, 50–100 recommended; 65,536 tokens per example for the
    # gpt-4o/4.1 families (PROVIDERS.md, 2026-11-23).
    "openai": ProviderRules(
        provider="openai",
        min_examples=10,
        recommended_examples=50,
        token_limit=65_536,
        token_limit_severity="error",
        chat=(*_COMMON, arguments_json),
        preference=_PREF_COMMON,
        source="platform.openai.com/docs/guides/fine-tuning; openai-cookbook chat_finetuning_"
        "data_prep (checked 2026-11-23)",
    ),
    # Vertex AI Gemini supervised tuning docs: ≥ 100 examples recommended (older docs: minimum
    # 16); 131,072 tokens per example for 2.5 Flash / Flash-Lite (PROVIDERS.md, 2026-11-23).
    "vertex": ProviderRules(
        provider="vertex",
        min_examples=16,
        recommended_examples=100,
        token_limit=131_072,
        token_limit_severity="error",
        chat=(
            *_COMMON,
            arguments_object,
            gemini_roles,
            gemini_parts,
            no_weight,
            no_names,
            no_parallel,
        ),
        preference=(*_PREF_COMMON, pref_text_only, pref_gemini_roles),
        source="cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-supervised-tuning-"
        "prepare (checked 2026-11-23)",
    ),
    # Local QLoRA (TRL): no provider minimum or limit; the HF export carries role/content only.
    "local": ProviderRules(
        provider="local",
        min_examples=1,
        recommended_examples=1,
        token_limit=None,
        token_limit_severity="warning",  # the trainer truncates to max_seq_len
        chat=(*_COMMON, arguments_json, no_weight, no_names, no_tool_calls),
        preference=_PREF_COMMON,
        source="tuneport local backend (TRL SFTTrainer/DPOTrainer)",
    ),
}
