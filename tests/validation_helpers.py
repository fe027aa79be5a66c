"""Shared by the validation-equivalence tests: the reference (importer, serial) report, report
equality, and the JSONL fixtures."""

from __future__ import annotations

from pathlib import Path

from tuneport.data import read_records
from tuneport.providers import registry
from tuneport.schemas import Report
from tuneport.validation import Rules, validate_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def rules(provider: str) -> Rules:
    """The validation rules of a backend, as its descriptor holds them."""
    return registry.backend(provider).rules


def serial_report(path: Path, provider: str, **kw: object) -> Report:
    """The importer path, in one process: every row becomes a pydantic record."""
    return validate_rows(
        read_records(path),
        file=str(path),
        rules=rules(provider),
        fmt=None,
        **kw,  # type: ignore[arg-type]
    )


def same_report(a: Report, b: Report) -> None:
    assert a.records == b.records
    assert [p.model_dump() for p in a.problems] == [p.model_dump() for p in b.problems]


def jsonl_fixtures() -> list[Path]:
    from tuneport.data.detect import container
    from tuneport.data.reading import iter_jsonl

    out = []
    for path in sorted(FIXTURES.rglob("*.jsonl")):
        try:
            if container(path) is iter_jsonl:
                out.append(path)
        except Exception:  # a deliberately unusable file
            continue
    return out
