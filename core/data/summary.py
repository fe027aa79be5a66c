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


def percentile_of_counts(counts: Counter[int], pct: int) -> int:
    """:func:`percentile` of the values counted in ``counts`` (value -> how often)."""
    total = counts.total()
    if not total:
        return 0
    rank = max(1, -(-pct * total // 100))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)  # pragma: no cover - rank <= total


def _messages(row: Row) -> list[Message]:
    record = row.record
    if record is None:
        return []
    if isinstance(record, Example):
        return record.messages
    return [*record.prompt, record.chosen, record.rejected]


def summarize(rows: Iterable[Row], *, file: str, fmt: str) -> Summary:
    """One pass over ``rows``. Memory does not grow with the number of examples: lengths are
    kept as a histogram (length -> count, exact percentiles), turns as min / sum / max."""
    kinds: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    lengths: Counter[int] = Counter()
    turns_min = turns_max = turns_sum = 0
    unusable = calls = 0
    for row in rows:
        if row.record is None:
            unusable += any(p.severity == "error" for p in row.problems)
            continue
        kinds[row.record.kind] += 1
        messages = _messages(row)
        roles.update(m.role for m in messages)
        calls += sum(len(m.tool_calls or []) for m in messages)
        lengths[sum(len(m.content or "") for m in messages)] += 1
        n = len(messages)
        turns_min = n if kinds.total() == 1 else min(turns_min, n)
        turns_max = max(turns_max, n)
        turns_sum += n
    records = kinds.total()
    chars: dict[str, int] = {f"p{p}": percentile_of_counts(lengths, p) for p in PERCENTILES}
    chars["max"] = max(lengths) if lengths else 0
    turns: dict[str, Any] = (
        {"min": turns_min, "mean": round(turns_sum / records, 2), "max": turns_max}
        if records
        else {"min": 0, "mean": 0.0, "max": 0}
    )
    return Summary(
        file=file,
        format=fmt,
        records=records,
        chat=kinds["chat"],
        preference=kinds["preference"],
        unusable_rows=unusable,
        roles=dict(sorted(roles.items())),
        tool_calls=calls,
        turns=turns,
        chars=chars,
    )


def inspect_file(path: Path, fmt: str | None = None, **read_kw: Any) -> Summary:
    """Summarize ``path`` (streamed)."""
    name = resolve_format(path, fmt, read_kw.get("column_map"))
    return summarize(read_records(path, name, **read_kw), file=str(path), fmt=name)
