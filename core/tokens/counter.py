"""The token-counter interface shared by validation, estimates, stats and curation, and the
per-example counts it produces.

Implementations: :mod:`tuneport.tokens.bpe` (tiktoken), :mod:`tuneport.tokens.approx`
(labelled approximations), :mod:`tuneport.tokens.hf` (a model's own tokenizer). Which counter a
provider and model use is the backend descriptor's choice
(:func:`tuneport.providers.registry.counter_for`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from tuneport.schemas import AnyRecord, Example, PreferenceExample, ToolSpec


class TokenCounter(Protocol):
    """Counts the tokens one record costs for one provider/model.

    ``exact`` is false for approximations; ``error_band`` is then the relative uncertainty
    (0.15 = ±15%) that every output must show next to the figure.
    """

    exact: bool
    error_band: float | None
    label: str  # e.g. "tiktoken o200k_base", "approx chars/4 (±25%)"

    def count(self, record: Example | PreferenceExample) -> int:
        """Tokens of the whole record as billed for training (prompt + completions + tools)."""
        ...

    def count_text(self, text: str) -> int:
        """Tokens of a bare text (for per-role statistics)."""
        ...


@runtime_checkable
class FileCounter(Protocol):
    """A counter that counts a whole data file at once (an online counter that sends the file
    to the provider, e.g. Together's ``estimate-price``): :func:`tuneport.tokens.measure.
    count_path` hands it the file instead of its records one by one."""

    def count_file(self, path: Path, fmt: str | None) -> Counts:
        """Per-example counts of the data file ``path`` (record format ``fmt`` or detected)."""
        ...


# --- counters --------------------------------------------------------------------------------


def tool_json(tool: ToolSpec) -> str:
    return orjson.dumps(tool.model_dump(mode="json", exclude_none=True)).decode()


def tool_json_raw(tool: Any) -> str:
    """Like :func:`tool_json` for a plain dict: the ToolSpec's key order, ``null`` fields of
    the spec dropped (values inside ``parameters`` are kept as they are, as pydantic does)."""
    if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
        fn = tool["function"]
        known = ("name", "description", "parameters")
        ordered = {k: fn[k] for k in known if fn.get(k) is not None}
        ordered.update((k, v) for k, v in fn.items() if k not in known and v is not None)
        tool = {"type": tool.get("type") or "function", "function": ordered}
    return orjson.dumps(tool).decode()


def joined_text(parts: list[Any]) -> str:
    """OpenAI content parts → their text, joined like the importer joins them."""
    return "".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


class _Memo:
    """Wraps a counter and remembers ``count`` per record object (records must stay alive)."""

    def __init__(self, inner: TokenCounter) -> None:
        self.inner = inner
        self.exact = inner.exact
        self.error_band = inner.error_band
        self.label = inner.label
        self._seen: dict[int, int] = {}

    def count(self, record: Example | PreferenceExample) -> int:
        key = id(record)
        n = self._seen.get(key)
        if n is None:
            n = self._seen[key] = self.inner.count(record)
        return n

    def count_text(self, text: str) -> int:
        return self.inner.count_text(text)


def memoized(counter: TokenCounter) -> TokenCounter:
    """A counter that counts each record object once (for plan, which prices one list often)."""
    return _Memo(counter)


def describe(n: int, counter: TokenCounter | None = None, *, band: float | None = None) -> str:
    """``12,345 tokens`` or ``≈12,345 tokens (±25%, approximate)``."""
    if counter is not None:
        band = None if counter.exact else (counter.error_band or 0.0)
    if band is None:
        return f"{n:,} tokens"
    return f"≈{n:,} tokens (±{band:.0%}, approximate)"


# --- counting many records ---------------------------------------------------------------------


@dataclass
class Counts:
    """Per-example token counts of a dataset, in file order.

    ``lines`` holds each counted example's 1-based source line; ``skipped`` the lines that were
    not counted (unreadable or not a record).
    """

    tokens: array[int] = field(default_factory=lambda: array("q"))
    lines: array[int] = field(default_factory=lambda: array("q"))
    skipped: list[int] = field(default_factory=list)
    tool_examples: int = 0  # examples with tool definitions or tool calls
    # the counter these counts really come from when it is not the one asked for: an exact
    # count of the same file remembered from `estimate --online` (see tokens.cache.Remembered)
    counted_by: Any = None

    @property
    def examples(self) -> int:
        return len(self.tokens)

    @property
    def total(self) -> int:
        return sum(self.tokens)

    @property
    def largest(self) -> int:
        return max(self.tokens, default=0)

    def over(self, limit: int) -> list[tuple[int, int]]:
        """``(line, tokens)`` of the examples longer than ``limit``."""
        return [(ln, n) for ln, n in zip(self.lines, self.tokens, strict=True) if n > limit]


def uses_tools(record: AnyRecord) -> bool:
    """Whether a record has tool definitions or tool calls."""
    if record.tools:
        return True
    msgs = record.messages if isinstance(record, Example) else [*record.prompt, record.chosen]
    return any(m.tool_calls for m in msgs)
