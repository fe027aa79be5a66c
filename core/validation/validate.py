"""Validation: every problem of a dataset for one provider (and model), each with file:line.

``validate_rows`` consumes :class:`Row` s once (streaming); memory grows only by a 16-byte digest
per example for duplicate detection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from tuneport.data.detect import container
from tuneport.data.importers import from_openai
from tuneport.data.parsing import Options
from tuneport.data.reading import NO_VALUE, RawRow, iter_jsonl
from tuneport.data.records import convert_row, read_records
from tuneport.data.rows import Row, canonical_dict, problem
from tuneport.schemas import FORMAT_VERSION, AnyRecord, Example, Problem, Report
from tuneport.tokens.approx import APPROX_CHARS_PER_TOKEN, CharCounter
from tuneport.tokens.bpe import TiktokenChatCounter
from tuneport.tokens.counter import TokenCounter
from tuneport.validation.rules import Finding, Rules


def _findings(record: AnyRecord, rules: Rules) -> list[Finding]:
    if isinstance(record, Example):
        return [f for check in rules.chat for f in check(record)]
    return [f for check in rules.preference for f in check(record)]


def _hash16(data: bytes) -> bytes:
    """16 bytes of SHA-256: the duplicate key of one example (in memory only, never stored).
    SHA-256 rather than BLAKE2b: with the CPU's SHA instructions it costs about half as much
    per example, and it runs on every row."""
    return hashlib.sha256(data).digest()[:16]


def _digest(record: AnyRecord) -> bytes:
    data: dict[str, Any] = canonical_dict(record)
    data.pop("id", None)
    return _hash16(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


# --- the fast path for plain OpenAI chat rows ---------------------------------------------------
#
# Most rows of a big OpenAI chat file are ``{"messages": [{"role": ..., "content": "..."}, ...]}``
# with nothing else. For such a row the importer can find nothing wrong and the record it builds
# is fully determined by the (role, content) pairs, so the validator skips the importer and
# pydantic: the provider's rules run once per *shape* (roles + whether each content is empty or
# blank — all that the rules read of a plain message) on a real record and their findings are
# reused, the digest is taken from the same canonical JSON object, the tokens from the raw dict.
# Every other row takes the importer path. tests/test_fastpath_validate.py checks the reports
# stay identical to ``validate_rows(read_records(...))``.

_PLAIN_ROLES = frozenset({"system", "user", "assistant"})
_SHAPES_MAX = 4096


Shape = tuple[tuple[str, int], ...]


def plain_shape(value: Any) -> Shape | None:
    """What the rules can see of a plain OpenAI chat row (see above): each message's role and
    whether its content is text (0), blank (1) or empty (2); ``None`` if the row is not plain."""
    if value.__class__ is not dict or len(value) != 1:
        return None
    msgs = value.get("messages")
    if msgs.__class__ is not list or not msgs:
        return None
    roles = _PLAIN_ROLES
    shape = []
    for m in msgs:
        if m.__class__ is not dict or len(m) != 2:
            return None
        content = m.get("content")
        role = m.get("role")
        if content.__class__ is not str or role not in roles:
            return None
        shape.append((role, 0 if content.strip() else 1 if content else 2))
    return tuple(shape)


def plain_digest(msgs: list[dict[str, str]]) -> bytes:
    """:func:`_digest` of the record a plain row becomes (its canonical JSON object)."""
    data = {"kind": "chat", "messages": msgs, "format": FORMAT_VERSION}
    return _hash16(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def _char_count_raw(value: Any) -> int:
    """:meth:`CharCounter.count` of a plain row."""
    return sum(-(-len(m["content"]) // APPROX_CHARS_PER_TOKEN) for m in value["messages"])


def _raw_counter(counter: TokenCounter) -> Callable[[Any], int | None] | None:
    """A function counting a plain row's raw dict as ``counter.count`` counts its record."""
    if isinstance(counter, CharCounter):
        return _char_count_raw
    if type(counter) is TiktokenChatCounter:
        plain = counter.count_plain
        return lambda value: plain(value["messages"])
    return None


class Validator:
    """Validates rows one by one; :meth:`finish` adds the whole-file problems."""

    def __init__(self, file: str, rules: Rules, counter: TokenCounter, limit: int | None) -> None:
        self.file = file
        self.rules = rules
        self.counter = counter
        self.limit = limit
        self.problems: list[Problem] = []
        self.seen: dict[bytes, int] = {}
        self.kinds: dict[str, int] = {}
        self.records = 0
        self.shapes: dict[Shape, list[Finding]] = {}
        self.count_raw = _raw_counter(counter)

    def add(self, kind: str, message: str, line: int | None, **kw: Any) -> None:
        self.problems.append(problem(kind, message, file=self.file, line=line, **kw))

    def row(self, row: Row) -> None:
        self.problems.extend(row.problems)
        record = row.record
        if record is None:
            return
        self.records += 1
        for f in _findings(record, self.rules):
            self.add(f.kind, f.message, row.line, severity=f.severity, fix=f.fix)
        self._kind(record.kind, row.line)
        if self.limit is not None:
            self._tokens(self.counter.count(record), row.line)
        self._duplicate(_digest(record), row.line)

    def raw(self, raw: RawRow, fmt: str, opts: Options) -> None:
        """Validate one raw JSONL row: the plain-row fast path, else :meth:`row`."""
        value = raw.value
        shape = plain_shape(value) if fmt == "openai" and value is not NO_VALUE else None
        self.shaped(raw, fmt, opts, shape)

    def shaped(self, raw: RawRow, fmt: str, opts: Options, shape: Shape | None) -> None:
        """:meth:`raw` for a caller that took the row's :func:`plain_shape` already (``None``
        when not plain or ``fmt`` is not ``openai``)."""
        value = raw.value
        if shape is None or (self.limit is not None and self.count_raw is None):
            self.row(convert_row(raw, fmt, opts, self.file))
            return
        line = raw.line
        self.problems.extend(raw.problems)
        tokens = None
        if self.limit is not None and self.count_raw is not None:
            tokens = self.line_tokens(line, value, self.count_raw)
        self.plain(line, value, shape, tokens)

    def plain(self, line: int, value: Any, shape: Shape, tokens: int | None) -> None:
        """A plain row (its line's own problems already added) with its shape and, when the
        limit applies, its token count: the rules once per shape, kinds, limit, duplicate."""
        self.records += 1
        for f in self._plain_findings(value, shape):
            self.add(f.kind, f.message, line, severity=f.severity, fix=f.fix)
        self._kind("chat", line)
        if tokens is not None:
            self._tokens(tokens, line)
        self._duplicate(plain_digest(value["messages"]), line)

    def line_tokens(self, line: int, value: Any, count_raw: Callable[[Any], int | None]) -> int:
        """Tokens of the plain row at ``line`` (a hook for callers that counted already)."""
        return count_raw(value) or 0

    def _plain_findings(self, value: Any, key: Shape) -> list[Finding]:
        found = self.shapes.get(key)
        if found is None:
            found = _findings(from_openai(value), self.rules)
            if len(self.shapes) < _SHAPES_MAX:
                self.shapes[key] = found
        return found

    def _kind(self, kind: str, line: int) -> None:
        first = next(iter(self.kinds), None)
        self.kinds.setdefault(kind, line)
        if first is not None and first != kind and self.kinds[kind] == line:
            self.add("mixed_kinds", f"{kind} example in a file of {first} examples", line)

    def _tokens(self, tokens: int, line: int) -> None:
        if self.limit is None:
            return
        if tokens > self.limit:
            approx = "" if self.counter.exact else "~"
            self.add(
                "token_limit",
                f"example has {approx}{tokens:,} tokens ({self.counter.label}), over the "
                f"{self.limit:,} limit: {self.rules.token_limit_note}",
                line,
                severity=self.rules.token_limit_severity,
            )

    def _duplicate(self, key: bytes, line: int) -> None:
        first = self.seen.setdefault(key, line)
        if first != line:
            self.add("duplicate", f"exact duplicate of the example at line {first}", line)

    def report(self, *, model: str | None, fmt: str | None) -> Report:
        """The report of everything seen (call :meth:`finish` first)."""
        return Report(
            file=self.file,
            provider=self.rules.provider,
            model=model,
            format=fmt,
            records=self.records,
            problems=self.problems,
        )

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
    rules: Rules,
    model: str | None = None,
    counter: TokenCounter | None = None,
    token_limit: int | None = None,
    fmt: str | None = None,
) -> Report:
    """All problems of ``rows`` under ``rules``; token limit from ``token_limit`` or
    ``rules.limit_for(model)``, counted with ``counter`` or approximately (characters / 4)."""
    limit = token_limit if token_limit is not None else rules.limit_for(model)
    state = Validator(file, rules, counter or CharCounter(), limit)
    for row in rows:
        state.row(row)
    state.finish()
    return state.report(model=model, fmt=fmt)


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


def validate_serial(
    path: Path,
    rules: Rules,
    *,
    fmt: str,
    model: str | None = None,
    counter: TokenCounter | None = None,
    token_limit: int | None = None,
    **read_kw: Any,
) -> Report:
    """Read and validate ``path`` in this process (the parallel form is
    :func:`tuneport.validation.parallel.validate_file`)."""
    if container(path) is not iter_jsonl:
        return validate_rows(
            read_records(path, fmt, **read_kw),
            file=str(path),
            rules=rules,
            model=model,
            counter=counter,
            token_limit=token_limit,
            fmt=fmt,
        )
    # raw rows: plain OpenAI rows take the fast path
    limit = token_limit if token_limit is not None else rules.limit_for(model)
    state = Validator(str(path), rules, counter or CharCounter(), limit)
    opts = Options(
        column_map=dict(read_kw.get("column_map") or {}),
        system=read_kw.get("system"),
        desirable_only=bool(read_kw.get("desirable_only")),
    )
    advance = read_kw.get("advance")
    raws = iter_jsonl(path, file=str(path), **({"advance": advance} if advance else {}))
    for raw in raws:
        state.raw(raw, fmt, opts)
    state.finish()
    return state.report(model=model, fmt=fmt)
