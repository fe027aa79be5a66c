"""Rich renderers on stderr: a Progress implementation and the job watch view."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichBar
from rich.table import Table
from rich.text import Text

from tuneport.cli._console import err
from tuneport.jobs.watch import WatchUpdate
from tuneport.schemas import Estimate, JobRecord, JobState

STATE_STYLE = {
    JobState.QUEUED: "yellow",
    JobState.VALIDATING: "yellow",
    JobState.RUNNING: "cyan",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
}


class RichProgress:
    """:class:`tuneport.progress.Progress` drawn with rich bars (byte totals show speed)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or err
        self._bar: RichBar | None = None
        self._task: TaskID | None = None

    def start(self, task: str, total: int | None = None) -> None:
        self.finish()
        if not self.console.is_terminal:
            return  # no bars in logs/pipes: notes and results only
        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
        self._bar = RichBar(*columns, console=self.console, transient=True)
        self._bar.start()
        self._task = self._bar.add_task(task, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, amount)

    def note(self, text: str) -> None:
        self.console.print(Text(text, style="dim"))

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._bar = None
        self._task = None


def estimate_lines(est: Estimate) -> list[str]:
    """The estimate as the confirmation prompt shows it."""
    approx = "" if est.exact else f" (approximate ±{(est.error_band or 0):.0%})"
    billable = est.billable_tokens if est.billable_tokens is not None else est.tokens
    capped = f" ({billable:,} after the per-example limit)" if billable != est.tokens else ""
    lines = [
        f"{est.provider} {est.model} {est.method}: {est.examples:,} examples, "
        f"{est.tokens:,} tokens{capped} × {est.epochs} epochs = {est.billed_tokens:,} billed "
        "tokens" + approx
    ]
    if est.cost_usd is not None:
        price = (
            f" at ${est.price_per_million_usd:g}/1M"
            if est.price_per_million_usd is not None
            else ""
        )
        dated = f" (prices as of {est.price_as_of})" if est.price_as_of else ""
        lines.append(f"estimated cost: ${est.cost_usd:,.2f}{price}{dated}")
    elif est.cost_unknown:
        lines.append("estimated cost: unknown (no price in the price table)")
    else:
        lines.append("estimated cost: no provider charge (local)")
    if est.gpu_memory_gib is not None:
        lines.append(f"estimated GPU memory: {est.gpu_memory_gib:.1f} GiB")
    lines.extend(f"warning: {w}" for w in est.warnings)
    return lines


def _fmt_elapsed(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


class WatchView:
    """The watch renderer: a rich Live panel on a terminal, plain log lines otherwise."""

    def __init__(self, console: Console | None = None, *, show_events: int = 6) -> None:
        self.console = console or err
        self.show_events = show_events
        self._started = time.monotonic()
        self._live: Live | None = None
        self._recent: list[str] = []
        self._last_state: str | None = None
        self._loss: tuple[int | None, float] | None = None

    def _panel(self, update: WatchUpdate) -> Group:
        rec = update.record
        table = Table.grid(padding=(0, 2))
        state = Text(rec.state.value, style=STATE_STYLE.get(rec.state, ""))
        if rec.raw_state and rec.raw_state != rec.state.value:
            state.append(f" ({rec.raw_state})", style="dim")
        table.add_row("job", f"{rec.id}  {rec.provider} {rec.remote_id or ''}")
        table.add_row("state", state)
        table.add_row("elapsed", _fmt_elapsed(time.monotonic() - self._started))
        if self._loss is not None:
            step, loss = self._loss
            table.add_row("train loss", f"{loss:.4f}" + (f" (step {step})" if step else ""))
        if update.next_poll is not None:
            table.add_row("next poll", f"{update.next_poll:.0f}s")
        events = Text("\n".join(self._recent[-self.show_events :]), style="dim")
        return Group(table, events)

    def update(self, update: WatchUpdate) -> None:
        for event in update.events:
            if event.loss is not None:
                self._loss = (event.step, event.loss)
            self._recent.append(event.message)
        if not self.console.is_terminal:
            state = f"{update.record.state.value}/{update.record.raw_state}"
            if state != self._last_state:
                self.console.print(f"{update.record.id}: {state}")
                self._last_state = state
            for event in update.events:
                self.console.print(f"  {event.message}", markup=False, highlight=False)
            return
        if self._live is None:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.start()
        self._live.update(self._panel(update))

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def outcome_lines(record: JobRecord) -> list[str]:
    """What a finished job produced: tuned model and billed tokens next to the estimate."""
    lines = []
    if record.tuned_model:
        lines.append(f"tuned model: {record.tuned_model}")
    if record.billed_tokens is not None:
        vs = ""
        if record.estimate_tokens:
            diff = (record.billed_tokens - record.estimate_tokens) / record.estimate_tokens
            vs = f" (estimated {record.estimate_tokens:,}, {diff:+.1%})"
        lines.append(f"trained tokens: {record.billed_tokens:,}{vs}")
    return lines
