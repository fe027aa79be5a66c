"""Live progress of a watched job, whatever the backend: step N of total, loss, tokens per second
and an estimated time left, from what each poll returns.

Backends report what they know in :class:`~tuneport.schemas.JobStatus` (``step``,
``total_steps``, ``loss``, ``tokens_per_second``, ``progress``) and in metric events
(``JobEvent.step``/``total_steps``/``loss``); the tracker keeps the latest of each across polls
and derives the ETA from the pace since it first saw the job move. Time is injected (``clock``)
so tests never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tuneport.schemas import JobEvent, JobState, JobStatus


@dataclass(frozen=True)
class RunProgress:
    """What is known about a run's progress after a poll (``None`` = the backend does not say)."""

    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None
    loss_step: int | None = None  # the step ``loss`` was logged at (``None``: not said)
    tokens_per_second: float | None = None
    fraction: float | None = None  # 0..1
    eta_seconds: float | None = None  # time left at the pace seen so far


class ProgressTracker:
    """Folds statuses and events into a :class:`RunProgress`, poll after poll."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._step: int | None = None
        self._total: int | None = None
        self._loss: float | None = None
        self._loss_step: int | None = None
        self._rate: float | None = None
        self._first: tuple[float, float] | None = None  # (time, fraction) when it first moved
        self.current = RunProgress()

    def observe(self, status: JobStatus, events: Sequence[JobEvent] = ()) -> RunProgress:
        for event in events:
            if event.step is not None and event.loss is not None:
                self._step = max(self._step or 0, event.step)
                if self._loss_step is None or event.step >= self._loss_step:
                    self._loss, self._loss_step = event.loss, event.step  # kept as a pair
            if event.total_steps is not None:
                self._total = event.total_steps
        if status.step is not None:
            self._step = status.step
        if status.total_steps is not None:
            self._total = status.total_steps
        if status.loss is not None and self._loss_step is None:
            self._loss = status.loss  # of a step the status does not name (a logged step's)
        if status.tokens_per_second is not None:
            self._rate = status.tokens_per_second
        fraction = status.progress
        if self._step is not None and self._total:
            fraction = min(1.0, self._step / self._total)
        if status.state is JobState.SUCCEEDED:
            fraction = 1.0
        eta = self._eta(fraction, status.state)
        self.current = RunProgress(
            step=self._step,
            total_steps=self._total,
            loss=self._loss,
            loss_step=self._loss_step,
            tokens_per_second=self._rate if status.state is JobState.RUNNING else None,
            fraction=fraction,
            eta_seconds=eta,
        )
        return self.current

    def _eta(self, fraction: float | None, state: JobState) -> float | None:
        if fraction is None or state.terminal:
            return 0.0 if state is JobState.SUCCEEDED else None
        now = self._clock()
        if self._first is None:
            self._first = (now, fraction)
            return None
        started, base = self._first
        done = fraction - base
        if done <= 0 or now <= started:
            return None
        return (now - started) * (1.0 - fraction) / done
