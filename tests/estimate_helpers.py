"""Estimating a data file directly (the product estimates through ``quote.estimate``)."""

from __future__ import annotations

from pathlib import Path

from tuneport.jobs.quote import estimate
from tuneport.schemas import Estimate, JobConfig


def estimate_file(path: Path, cfg: JobConfig, *, validation: Path | None = None) -> Estimate:
    """:func:`~tuneport.jobs.quote.estimate` of ``cfg`` with its data (and validation file) set
    to ``path`` (``validation``)."""
    updates: dict[str, object] = {"data": path}
    if validation is not None:
        updates["validation"] = validation
    return estimate(cfg.model_copy(update=updates))
