"""``inspect``: what a dataset holds — format, record counts, roles, turns, lengths."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tuneport.data.records import read_records, resolve_format
from tuneport.data.rows import Row
from tuneport.schemas import Example, Message

PERCENTILES = (50, 90, 99)


class Summary(BaseModel):
    """Counts and length distribution (characters per example) of one dataset."""

    model_config = ConfigDict(extra="forbid")

    file: str
    format: str
    records: int
    chat: int
    preference: int
    unusable_rows: int
    roles: dict[str, int]
    tool_calls: int
    turns: dict[str, float]  # min / mean / max messages per example
    chars: dict[str, int]  # p50 / p90 / p99 / max characters per example


def percentile(sorted_values: array[int], pct: int) -> int:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[rank - 1]


def _messages(row: Row) -> list[Message]:
    record = row.record
    if record is None:
        return []
    if isinstance(record, Example):
        return record.messages
    return [*record.prompt, record.chosen, record.rejected]


def summarize(rows: Iterable[Row], *, file: str, fmt: str) -> Summary:
    """One pass over ``rows``; keeps one integer per pair of example (lengths, turns)."""
    kinds: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    lengths: array[int] = array("q")
    turns: array[int] = array("q")
    unusable = calls = 0
    for row in rows:
        if row.record is None:
            unusable += any(p.severity == "error" for p in row.problems)
            continue
        kinds[row.record.kind] += 1
        messages = _messages(row)
        roles.update(m.role for m in messages)
        calls += sum(len(m.tool_calls or []) for m in messages)
        lengths.append(sum(len(m.content or "") for m in messages))
        turns.append(len(messages))
    return _result(file, fmt, kinds, roles, calls, unusable, sorted(lengths), turns)


def _result(
    file: str,
    fmt: str,
    kinds: Counter[str],
    roles: Counter[str],
    calls: int,
    unusable: int,
    lengths: list[int],
    turns: array[int],
) -> Summary:
    ordered = array("q", lengths)
    chars: dict[str, int] = {f"p{p}": percentile(ordered, p) for p in PERCENTILES}
    chars["max"] = ordered[-1] if ordered else 0
    stats: dict[str, Any] = (
        {"min": min(turns), "mean": round(sum(turns) / len(turns), 2), "max": max(turns)}
        if turns
        else {"min": 0, "mean": 0.0, "max": 0}
    )
    return Summary(
        file=file,
        format=fmt,
        records=kinds.total(),
        chat=kinds["chat"],
        preference=kinds["preference"],
        unusable_rows=unusable,
        roles=dict(sorted(roles.items())),
        tool_calls=calls,
        turns=stats,
        chars=chars,
    )


def inspect_file(path: Path, fmt: str | None = None, **read_kw: Any) -> Summary:
    """Summarize ``path`` (streamed)."""
    name = resolve_format(path, fmt, read_kw.get("column_map"))
    return summarize(read_records(path, name, **read_kw), file=str(path), fmt=name)
