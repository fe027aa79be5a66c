"""Which tuned models exist and when they stop working (``jobs list --remote``, ``doctor``).

A date comes from the provider's own model list where it gives one
(:class:`~tuneport.providers.base.KnowsShutdowns`), else from the dated calendar
(:mod:`tuneport.pricing.calendar`, ``shutdowns.toml``, with its source).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from tuneport.errors import TuneportError
from tuneport.jobs.store import JobStore
from tuneport.pricing.calendar import dates_for
from tuneport.providers.base import KnowsShutdowns, Provider
from tuneport.schemas import JobStatus

WARN_WITHIN_DAYS = 60


@dataclass(frozen=True)
class StopDate:
    day: str  # YYYY-MM-DD
    source: str  # "provider" (its model object) or the calendar's source


def stop_dates(name: str, provider: Provider, statuses: Sequence[JobStatus]) -> dict[str, StopDate]:
    """Remote job id -> the day its tuned model stops working, where known."""
    announced: dict[str, str] = {}
    if isinstance(provider, KnowsShutdowns):
        with contextlib.suppress(TuneportError):  # the job list is still worth showing
            announced = provider.shutdown_dates()
    found: dict[str, StopDate] = {}
    for status in statuses:
        tuned = status.tuned_model
        if tuned and tuned in announced:
            found[status.remote_id] = StopDate(announced[tuned], f"{name} model object")
            continue
        dates = dates_for(name, status.model or tuned or "")
        if dates is not None and dates.shutdown is not None:
            found[status.remote_id] = StopDate(dates.shutdown.isoformat(), dates.source)
    return found


@dataclass(frozen=True)
class Stopping:
    job_id: str
    provider: str
    tuned_model: str
    day: date
    source: str


def stopping_soon(
    store: JobStore, today: date, *, within_days: int = WARN_WITHIN_DAYS
) -> list[Stopping]:
    """Tuned models in the job store whose base model's calendar date is at most
    ``within_days`` away (or past), soonest first. Needs no network."""
    found: list[Stopping] = []
    for record in store.list_jobs(10_000):
        if not record.tuned_model:
            continue
        dates = dates_for(record.provider, record.model)
        if dates is None or dates.shutdown is None:
            continue
        if (dates.shutdown - today).days <= within_days:
            found.append(
                Stopping(
                    record.id, record.provider, record.tuned_model, dates.shutdown, dates.source
                )
            )
    return sorted(found, key=lambda s: s.day)
