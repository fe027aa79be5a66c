"""Watch a job on any provider until it ends, keeping the job store current on every poll.

Polling backs off (2 s doubling to a 30 s cap) while nothing changes and drops back to the
base interval when the state changes, the run moves or new events arrive. While a job runs the
wait is capped lower (:data:`RUNNING_CAP`, and a quarter of the estimated time left), so a short
phase is not slept through; backends record their phases as events as well, so the view lists
every phase even when a poll came late. Each update carries the run's progress
(:class:`~tuneport.jobs.tracking.RunProgress`: step N/total, loss, tokens/s, ETA). Time is
injected (``sleep``, ``clock``) so tests never wait; ``TUNEPORT_POLL_INTERVAL`` sets the base
interval (``0`` = do not sleep, for tests and fake servers). Ctrl-C stops watching only: the job
keeps running and ``tuneport jobs watch ID`` resumes from what the store holds (state and the
last event seen). A paused job stops the watch (it never moves until ``tuneport jobs resume ID``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tuneport.errors import JobFailedError, JobPausedError, ProviderError
from tuneport.jobs.launch import finish_launch, reconcile
from tuneport.jobs.resolve import provider_for_record, ref_of
from tuneport.jobs.store import StoreVanishedError
from tuneport.jobs.tracking import ProgressTracker, RunProgress
from tuneport.providers.base import Pausable
from tuneport.retry import DEFAULT_INTERVAL, default_interval
from tuneport.schemas import JobEvent, JobRecord, JobState, JobStatus

if TYPE_CHECKING:
    from tuneport.jobs.store import JobStore
    from tuneport.providers.base import Provider

MAX_INTERVAL = 30.0
RUNNING_CAP = 10.0  # longest wait between polls while a job runs


@dataclass
class Backoff:
    """Poll delays: ``base`` after a change, doubling up to ``cap`` while nothing changes."""

    base: float = DEFAULT_INTERVAL
    cap: float = MAX_INTERVAL
    factor: float = 2.0
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.base

    def next(self, changed: bool, limit: float | None = None) -> float:
        """The next delay; ``limit`` (never below ``base``) caps it, e.g. while a job runs."""
        if changed:
            self.current = self.base
        else:
            self.current = min(max(self.cap, self.base), self.current * self.factor)
        if limit is not None:
            self.current = min(self.current, max(limit, self.base))
        return self.current


def poll_limit(state: JobState, progress: RunProgress) -> float | None:
    """The longest sensible wait in ``state``: capped while running (a quarter of the time left
    when it is known), free to back off while queued."""
    if state is not JobState.RUNNING:
        return None
    if progress.eta_seconds is not None:
        return min(RUNNING_CAP, progress.eta_seconds / 4)
    return RUNNING_CAP


@dataclass
class WatchUpdate:
    """What one poll found."""

    record: JobRecord
    status: JobStatus
    events: list[JobEvent]
    changed: bool
    polls: int
    next_poll: float | None  # seconds until the next poll; None when the job ended
    progress: RunProgress = field(default_factory=RunProgress)


class WatchRenderer(Protocol):
    """Shows a watched job (the CLI renders with rich; tests record)."""

    def update(self, update: WatchUpdate) -> None: ...

    def close(self) -> None: ...


class NullRenderer:
    def update(self, update: WatchUpdate) -> None:
        pass

    def close(self) -> None:
        pass


def poll_once(store: JobStore, record: JobRecord, provider: Provider) -> WatchUpdate:
    """Poll the provider once and write state, tuned model, billed tokens and events."""
    ref = ref_of(record)
    status = provider.status(ref)
    events = list(provider.events(ref, after=store.last_event_id(record.id)))
    store.add_events(record.id, events)
    changed = bool(events) or (status.state, status.raw_state) != (record.state, record.raw_state)
    updated = store.update(
        record.id,
        state=status.state,
        raw_state=status.raw_state,
        error=status.error,
        tuned_model=status.tuned_model or record.tuned_model,
        billed_tokens=status.trained_tokens
        if status.trained_tokens is not None
        else record.billed_tokens,
        billed_usd=status.billed_usd if status.billed_usd is not None else record.billed_usd,
    )
    return WatchUpdate(updated, status, events, changed, 1, None)


def watch_job(
    job_id: str,
    *,
    store: JobStore,
    provider: Provider | None = None,
    renderer: WatchRenderer | None = None,
    sleep: Callable[[float], None] | None = None,
    interval: float | None = None,
    max_interval: float = MAX_INTERVAL,
    max_polls: int | None = None,
    note: Callable[[str], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> JobRecord:
    """Poll ``job_id`` until it reaches a terminal state; returns the final stored record.

    Resumable after any crash or Ctrl-C: everything needed is in the store. A record whose
    launch stopped before the provider answered is first looked up at the provider and, if the
    provider has no job for it, created (once: the run id makes it idempotent). A store deleted
    or replaced while watching is put back (:meth:`JobStore.recover`) and ``note`` is told.
    ``max_polls`` stops early (the record is then still running). A paused job (a
    :class:`~tuneport.providers.base.Pausable` backend's pause) would never end on its own:
    watching stops with :class:`~tuneport.errors.JobPausedError` (exit 1), the record says
    ``paused``. ``sleep`` defaults to :func:`time.sleep` looked up at call time.
    """
    pause = sleep or time.sleep
    record = store.get(job_id)
    shown = renderer or NullRenderer()
    if record.state.terminal and record.remote_id is None:
        return record
    backend = provider or provider_for_record(record, store)
    if record.remote_id is None:
        record = finish_launch(store, reconcile(store, record, backend), backend)
    base = default_interval() if interval is None else interval
    backoff = Backoff(base=base, cap=max_interval)
    tracker = ProgressTracker(clock or time.monotonic)
    polls = 0
    try:
        while True:
            polls += 1
            try:
                update = poll_once(store, record, backend)
            except StoreVanishedError:
                message = store.recover([record])
                if note is not None:
                    note(message)
                update = poll_once(store, store.get(record.id), backend)
            record = update.record
            update.polls = polls
            before = tracker.current.step
            update.progress = tracker.observe(update.status, update.events)
            moved = update.progress.step != before
            if record.state.terminal or (max_polls is not None and polls >= max_polls):
                shown.update(update)
                return record
            if isinstance(backend, Pausable) and backend.is_paused(update.status):
                shown.update(update)  # it does not move until resumed: polling would never end
                raise JobPausedError(
                    f"job {record.id} is paused at {record.provider}: it does not go on until "
                    "it is resumed",
                    hint=f"continue it with `tuneport jobs resume {record.id}`",
                )
            limit = poll_limit(record.state, update.progress)
            update.next_poll = backoff.next(update.changed or moved, limit)
            shown.update(update)
            pause(update.next_poll)
    finally:
        shown.close()


def raise_for_outcome(record: JobRecord, *, resumable: bool = False) -> None:
    """A failed or cancelled job as the error the CLI reports (exit code 1); ``resumable``
    (the backend can continue from a checkpoint) says how to continue it."""
    resume = f"continue it from its last checkpoint with `tuneport jobs resume {record.id}`"
    # the same `train` command continues this run (one intended run = one paid job): a new
    # launch of the same data and settings needs --new-run
    again = (
        "launch it again with the same `tuneport train` command plus --new-run (without it the "
        "command continues this ended run)"
    )
    if record.state is JobState.FAILED:
        raise JobFailedError(
            f"job {record.id} failed at {record.provider}: "
            f"{record.error or record.raw_state or 'no reason given'}",
            hint="fix the cause, then " + (resume if resumable else again),
        )
    if record.state is JobState.CANCELLED:
        raise JobFailedError(
            f"job {record.id} was cancelled",
            hint=resume if resumable else f"if needed, {again}",
        )
    if not record.state.terminal:  # pragma: no cover - watch_job only returns early on max_polls
        raise ProviderError(f"job {record.id} is still {record.state.value}")
