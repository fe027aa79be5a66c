"""``read_records``/``load_records``: any supported file → streamed canonical :class:`Row` s."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tuneport.data.detect import FORMATS, container, detect_format
from tuneport.data.importers import IMPORTERS
from tuneport.data.parsing import Finding, Options
from tuneport.data.reading import NO_VALUE, Advance, RawRow
from tuneport.data.rows import RefusedFile, Row, RowError, SkippedRow, has_errors, problem
from tuneport.errors import InputError
from tuneport.schemas import AnyRecord, Problem


def _noop(_: int) -> None:
    pass


def resolve_format(path: Path, fmt: str | None, column_map: dict[str, str] | None) -> str:
    """``fmt`` checked against the known names, or detected (``table`` when a map is given)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
        return fmt
    if column_map:
        container(path)
        return "table"
    return detect_format(path)


def _findings(findings: list[Finding], *, file: str, line: int) -> list[Problem]:
    return [
        problem(f[0], f[1], fix=f[2] if len(f) > 2 else None, file=file, line=line)
        for f in findings
    ]


def convert_row(raw: RawRow, fmt: str, opts: Options, file: str) -> Row:
    if raw.value is NO_VALUE:
        return Row(raw.line, None, raw.problems)
    notes: list[Finding] = []
    problems = list(raw.problems)
    record: AnyRecord | None = None
    try:
        record = IMPORTERS[fmt](raw.value, opts, notes)
    except RowError as exc:
        problems += _findings(exc.findings, file=file, line=raw.line)
    except RefusedFile as exc:
        raise InputError(exc.message, where=f"{file}:{raw.line}", hint=exc.hint) from None
    except SkippedRow as exc:
        problems.append(problem(exc.kind, exc.message, file=file, line=raw.line))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        problems.append(problem("invalid_record", f"{loc}: {err['msg']}", file=file, line=raw.line))
    problems += _findings(notes, file=file, line=raw.line)
    return Row(raw.line, record, problems)


def read_records(
    path: Path,
    fmt: str | None = None,
    *,
    column_map: dict[str, str] | None = None,
    system: str | None = None,
    desirable_only: bool = False,
    advance: Advance | None = None,
) -> Iterator[Row]:
    """Stream the records of ``path`` as :class:`Row` s (one record in memory at a time).

    Raises :class:`InputError` only when the input is unusable (missing file, unknown format);
    everything wrong with a single row is in its ``problems``. ``advance(n)`` is called with
    the number of bytes (or Arrow bytes) consumed, for progress bars.
    """
    name = resolve_format(path, fmt, column_map)
    reader = container(path)
    opts = Options(column_map=dict(column_map or {}), system=system, desirable_only=desirable_only)
    file = str(path)
    return _rows(reader(path, file=file, advance=advance or _noop), name, opts, file)


def _rows(raws: Iterator[RawRow], fmt: str, opts: Options, file: str) -> Iterator[Row]:
    for raw in raws:
        yield convert_row(raw, fmt, opts, file)


def records_only(rows: Iterator[Row], warnings: Counter[str] | None = None) -> Iterator[AnyRecord]:
    """The records of ``rows``; :class:`InputError` at the first row with an error.

    Warnings (BOM, CRLF, blank lines, ignored keys) are counted by kind in ``warnings``.
    """
    for row in rows:
        errors = [p for p in row.problems if p.severity == "error"]
        if warnings is not None:
            warnings.update(p.kind for p in row.problems if p.severity == "warning")
        if errors:
            first = errors[0]
            raise InputError(
                first.message,
                where=first.where,
                hint=f"{first.fix}; run `tuneport validate` to list every problem",
            )
        if row.record is not None:
            yield row.record


def load_records(path: Path, fmt: str | None = None, **kw: Any) -> list[AnyRecord]:
    """All records of ``path`` in a list; :class:`InputError` naming the first bad row."""
    return list(records_only(read_records(path, fmt, **kw)))


__all__ = ["has_errors", "load_records", "read_records", "records_only", "resolve_format"]
