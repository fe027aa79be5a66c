"""Approximate counters: labelled, with an error band, no provider tokenizer needed."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from tuneport.schemas import AnyRecord, Example, Message, PreferenceExample
from tuneport.tokens.bpe import encoding, is_legacy, legacy_record
from tuneport.tokens.counter import tool_json, tool_json_raw

APPROX_CHARS_PER_TOKEN = 4
PREFERENCE_NOTE = re.compile(r"; preference prompts ×\d+")  # in a weighting counter's label


def label_for(label: str, method: str | None) -> str:
    """A counter's ``label`` as shown for data of ``method``: the preference-prompt weighting
    is said only where it applies (``dpo``), not on chat data."""
    return label if method == "dpo" else PREFERENCE_NOTE.sub("", label)


class ScaledTextCounter:
    """Approximate: the o200k count of every text of a record × ``factor``, plus what a chat
    template adds (``per_message`` tokens around each message, ``per_example`` once, and
    ``no_system`` when the example has no system message: see :mod:`tuneport.tokens.templates`;
    all 0 for providers that bill the texts alone).

    ``prompt_weight`` multiplies the prompt of a preference example (Vertex bills preference
    tuning as 2 × prompt tokens + completion tokens); chat examples are counted once.
    """

    exact = False

    def __init__(
        self,
        factor: float,
        band: float,
        why: str,
        prompt_weight: int = 1,
        template: str = "",
        per_message: int = 0,
        per_example: int = 0,
        no_system: int = 0,
    ) -> None:
        self.factor = factor
        self.error_band: float | None = band
        self.prompt_weight = prompt_weight
        self.per_message = per_message
        self.per_example = per_example
        self.no_system = no_system
        weighted = f"; preference prompts ×{prompt_weight}" if prompt_weight != 1 else ""
        chat = f" + {template} chat template" if template else ""
        self.label = f"approx o200k×{factor:g}{chat}, {why} (±{band:.0%}){weighted}"
        self.spec: tuple[Any, ...] = ("scaled", factor, band, why, prompt_weight)
        # an exact online count of the same file preferred when cached (tokens.cache.Remembered)
        self.remembered: Any = None
        if template:
            self.spec += (template, per_message, per_example, no_system)

    def _overhead(self, messages: int, has_system: bool) -> int:
        """The chat template's tokens for an example of ``messages`` messages."""
        if not (self.per_message or self.per_example or self.no_system):
            return 0
        return (
            self.per_message * messages + self.per_example + (0 if has_system else self.no_system)
        )

    @functools.cached_property
    def _encode(self) -> Callable[[str], list[int]]:
        """The o200k encoder, loaded on first use."""
        encode: Callable[[str], list[int]] = encoding("o200k_base").encode_ordinary
        return encode

    def count_text(self, text: str) -> int:
        return round(len(self._encode(text)) * self.factor)

    def _texts(self, messages: Iterable[Message]) -> Iterator[str]:
        for m in messages:
            if m.content:
                yield m.content
            for call in m.tool_calls or ():
                yield call.function.name
                yield call.function.arguments

    def _sum(self, messages: Iterable[Message]) -> int:
        return sum(len(self._encode(t)) for t in self._texts(messages))

    def count(self, record: Example | PreferenceExample) -> int:
        if isinstance(record, Example):
            n = self._sum(record.messages)
            first = record.messages[:1]
            messages = len(record.messages)
        else:
            n = self._sum(record.prompt) * self.prompt_weight
            n += self._sum([record.chosen, record.rejected])
            first = record.prompt[:1]
            messages = len(record.prompt) + 2
        n += sum(len(self._encode(tool_json(t))) for t in record.tools or ())
        has_system = bool(first) and first[0].role == "system"
        return round(n * self.factor) + self._overhead(messages, has_system)

    def _raw_messages(self, messages: list[dict[str, Any]]) -> int:
        enc = self._encode
        n = 0
        for m in messages:
            content = m.get("content")
            if isinstance(content, list):
                content = "".join(
                    p["text"]
                    for p in content
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
            if isinstance(content, str) and content:
                n += len(enc(content))
            calls = m.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    if isinstance(fn.get("name"), str):
                        n += len(enc(fn["name"]))
                    args = fn.get("arguments")
                    if isinstance(args, str):
                        n += len(enc(args))
                    elif args is not None:
                        n += len(enc(orjson.dumps(args).decode()))
        return n

    def count_raw(self, obj: Any) -> int | None:
        """Like :meth:`count` for one parsed JSONL line (canonical or OpenAI layout)."""
        if isinstance(obj, dict) and is_legacy(obj):
            record = legacy_record(obj)
            return None if record is None else self.count(record)
        parts = _raw_parts(obj)
        if parts is None:
            return None
        prompt, replies, tools = parts
        n = self._raw_messages(prompt) * (self.prompt_weight if replies is not None else 1)
        n += self._raw_messages(replies or [])
        n += sum(len(self._encode(tool_json_raw(t))) for t in tools)
        has_system = bool(prompt) and prompt[0].get("role") in ("system", "developer")
        extra = self._overhead(len(prompt) + len(replies or []), has_system)
        return round(n * self.factor) + extra


def _raw_parts(
    obj: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, list[Any]] | None:
    """(messages or prompt, the two replies of a preference record or ``None``, tool
    definitions) of a raw record line, or ``None``."""
    if not isinstance(obj, dict):
        return None
    tools: Any = obj.get("tools")
    msgs: Any = obj.get("messages")
    replies: list[Any] | None = None
    if isinstance(msgs, list):
        out = list(msgs)
    elif isinstance(obj.get("prompt"), list) and "chosen" in obj:  # canonical preference
        out = list(obj["prompt"])
        replies = [obj.get("chosen"), obj.get("rejected")]
    elif isinstance(obj.get("input"), dict) and isinstance(obj["input"].get("messages"), list):
        tools = obj["input"].get("tools")
        out = list(obj["input"]["messages"])
        replies = []
        for key in ("preferred_output", "non_preferred_output"):
            reply = obj.get(key)
            if isinstance(reply, list) and reply:
                replies.append(reply[0])
    else:
        return None
    keep = [m for m in replies if isinstance(m, dict)] if replies is not None else None
    return (
        [m for m in out if isinstance(m, dict)],
        keep,
        tools if isinstance(tools, list) else [],
    )


def _texts(record: AnyRecord) -> list[str]:
    messages = (
        record.messages
        if isinstance(record, Example)
        else [
            *record.prompt,
            record.chosen,
            record.rejected,
        ]
    )
    out = [m.content or "" for m in messages]
    out += [c.function.name + c.function.arguments for m in messages for c in m.tool_calls or []]
    out += [t.model_dump_json() for t in record.tools or []]
    return out


class CharCounter:
    """Fallback counter: characters / 4, labelled approximate (no tokenizer needed)."""

    exact = False
    error_band: float | None = 0.25
    label = "approx chars/4 (±25%)"

    def count(self, record: Example | PreferenceExample) -> int:
        return sum(self.count_text(t) for t in _texts(record))

    def count_text(self, text: str) -> int:
        return -(-len(text) // APPROX_CHARS_PER_TOKEN)
