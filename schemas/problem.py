"""Validation problems and reports."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["error", "warning"]


class Problem(BaseModel):
    """One thing wrong with the data, located to ``file:line`` (and ``column`` for JSON syntax)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str  # stable machine-readable kind, e.g. "missing_assistant", "json_syntax"
    message: str
    fix: str  # one-line hint saying what to do
    file: str
    line: int | None = None
    column: int | None = None
    severity: Severity = "error"

    @property
    def where(self) -> str:
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc


class Report(BaseModel):
    """All problems found in one file for one provider/model."""

    model_config = ConfigDict(extra="forbid")

    file: str
    provider: str | None = None
    model: str | None = None
    format: str | None = None
    records: int = 0
    problems: list[Problem] = Field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))
