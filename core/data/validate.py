"""Validation: every problem of a dataset for one provider (and model), each with file:line.

``validate_rows`` consumes :class:`Row` s once (streaming); memory grows only by a 16-byte digest
per example for duplicate detection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from tuneport.counting import TokenCounter
from tuneport.data.records import read_records
from tuneport.data.rows import AnyRecord, Row, canonical_dict, problem
from tuneport.data.rules import RULES, Finding, ProviderRules
from tuneport.errors import InputError
from tuneport.schemas import Example, PreferenceExample, Problem, Report

APPROX_CHARS_PER_TOKEN = 4


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


def rules_for(provider: str) -> ProviderRules:
    try:
        return RULES[provider]
    except KeyError:
        raise InputError(
            f"unknown provider {provider!r}", hint=f"use one of: {', '.join(RULES)}"
        ) from None


def _findings(record: AnyRecord, rules: ProviderRules) -> list[Finding]:
    if isinstance(record, Example):
        return [f for check in rules.chat for f in check(record)]
    return [f for check in rules.preference for f in check(record)]


def _digest(record: AnyRecord) -> bytes:
    data: dict[str, Any] = canonical_dict(record)
    data.pop("id", None)
    return hashlib.blake2b(orjson.dumps(data, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


class _Validator:
    def __init__(
        self, file: str, rules: ProviderRules, counter: TokenCounter, limit: int | None
    ) -> None:
        self.file = file
        self.rules = rules
        self.counter = counter
        self.limit = limit
        self.problems: list[Problem] = []
        self.seen: dict[bytes, int] = {}
        self.kinds: dict[str, int] = {}
        self.records = 0

    def add(self, kind: str, message: str, line: int | None, **kw: Any) -> None:
        self.problems.append(problem(kind, message, file=self.file, line=line, **kw))

    def row(self, row: Row) -> None:
        self.problems.extend(row.problems)
        record = row.record
        if record is None:
            return
        self.records += 1
        for f in _findings(record, self.rules):
            self.add(f.kind, f.message, row.line, severity=f.severity)
        self._kind(record, row.line)
        self._tokens(record, row.line)
        self._duplicate(record, row.line)

    def _kind(self, record: AnyRecord, line: int) -> None:
        first = next(iter(self.kinds), None)
        self.kinds.setdefault(record.kind, line)
        if first is not None and first != record.kind and self.kinds[record.kind] == line:
            self.add("mixed_kinds", f"{record.kind} example in a file of {first} examples", line)

    def _tokens(self, record: AnyRecord, line: int) -> None:
        if self.limit is None:
            return
        tokens = self.counter.count(record)
        if tokens > self.limit:
            approx = "" if self.counter.exact else "~"
            self.add(
                "token_limit",
                f"example has {approx}{tokens:,} tokens ({self.counter.label}), over the "
                f"{self.limit:,} limit",
                line,
                severity=self.rules.token_limit_severity,
            )

    def _duplicate(self, record: AnyRecord, line: int) -> None:
        key = _digest(record)
        first = self.seen.setdefault(key, line)
        if first != line:
            self.add("duplicate", f"exact duplicate of the example at line {first}", line)

    def finish(self) -> None:
        n, rules = self.records, self.rules
        if n == 0:
            self.add("empty_file", "no usable examples found", None)
        elif n < rules.min_examples:
            self.add(
                "too_few_examples",
                f"{n} examples; {rules.provider} needs at least {rules.min_examples}",
                None,
            )
        elif n < rules.recommended_examples:
            self.add(
                "few_examples",
                f"{n} examples; {rules.provider} recommends at least {rules.recommended_examples}",
                None,
            )


def validate_rows(
    rows: Iterable[Row],
    *,
    file: str,
    provider: str,
    model: str | None = None,
    counter: TokenCounter | None = None,
    token_limit: int | None = None,
    fmt: str | None = None,
) -> Report:
    """All problems of ``rows`` for ``provider``; token limit from ``token_limit`` or the
    provider's default, counted with ``counter`` or approximately (characters / 4)."""
    rules = rules_for(provider)
    limit = token_limit if token_limit is not None else rules.token_limit
    state = _Validator(file, rules, counter or CharCounter(), limit)
    for row in rows:
        state.row(row)
    state.finish()
    return Report(
        file=file,
        provider=provider,
        model=model,
        format=fmt,
        records=state.records,
        problems=state.problems,
    )


class Group(NamedTuple):
    """Problems of one kind: severity, count, fix hint and the first few."""

    kind: str
    severity: str
    total: int
    fix: str
    first: list[Problem]


def group_problems(report: Report, *, show: int = 5) -> list[Group]:
    """Problems grouped by kind, errors first, then by count (descending)."""
    by_kind: dict[str, list[Problem]] = {}
    for p in report.problems:
        by_kind.setdefault(p.kind, []).append(p)
    groups = [
        Group(kind, items[0].severity, len(items), items[0].fix, items[:show])
        for kind, items in by_kind.items()
    ]
    return sorted(groups, key=lambda g: (g.severity != "error", -g.total, g.kind))


def validate_file(
    path: Path,
    provider: str,
    model: str | None = None,
    fmt: str | None = None,
    counter: TokenCounter | None = None,
    token_limit: int | None = None,
    **read_kw: Any,
) -> Report:
    """Read and validate ``path`` (see :func:`validate_rows`); InputError if unusable."""
    from tuneport.data.records import resolve_format

    rules_for(provider)
    name = resolve_format(path, fmt, read_kw.get("column_map"))
    from tuneport.parallel import validate_parallel  # big JSONL: same report, all CPUs

    report = validate_parallel(
        path, provider, model=model, fmt=name, counter=counter, token_limit=token_limit, **read_kw
    )
    if report is not None:
        return report
    return validate_rows(
        read_records(path, name, **read_kw),
        file=str(path),
        provider=provider,
        model=model,
        counter=counter,
        token_limit=token_limit,
        fmt=name,
    )
