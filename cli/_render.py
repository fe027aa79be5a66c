"""Rich renderers on stderr (a Progress implementation, the job watch view, the outcome of a
job) and the helpers every table uses to fit the terminal."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.measure import Measurement
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
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tuneport.cli._console import err, notice_once
from tuneport.jobs.cost import JobCost
from tuneport.jobs.tracking import RunProgress
from tuneport.jobs.watch import WatchUpdate
from tuneport.schemas import Estimate, JobRecord, JobState, JobStatus

STATE_STYLE = {
    JobState.QUEUED: "yellow",
    JobState.VALIDATING: "yellow",
    JobState.RUNNING: "cyan",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
}
# leading words of providers' raw state names that say nothing (JOB_STATE_RUNNING -> running)
_NOISE_WORDS = frozenset({"job", "state", "tuning"})


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
        notice_once(text, prefix="")  # a notice shown by an earlier step is not repeated

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._bar = None
        self._task = None


# --- words and numbers ---------------------------------------------------------------------


def money(value: float | None) -> str:
    """``$1.23``; small amounts keep four decimals (``$0.0083``)."""
    if value is None:
        return "—"
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``3 epochs``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m07s`` or ``12s``."""
    if seconds is None:
        return "—"
    total = max(0, round(seconds))
    minutes, sec = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{sec:02d}s" if minutes else f"{sec}s"


def raw_words(raw: str | None, state: JobState) -> str | None:
    """A provider's raw state as words (``JOB_STATE_PENDING`` -> ``pending``), or ``None`` when
    it says no more than the normalized state."""
    if not raw:
        return None
    words = raw.lower().replace("-", "_").split("_")
    while words and words[0] in _NOISE_WORDS:
        words = words[1:]
    text = " ".join(w for w in words if w)
    if not text or text.startswith(state.value) or text in ("done", "created"):
        return None
    return text


def state_text(record: JobRecord, status: JobStatus | None = None) -> str:
    """``running — training`` / ``queued — pending`` / ``succeeded``: tuneport's state word and
    the backend's own phase (never an enum name)."""
    phase = status.phase if status is not None and status.phase else None
    phase = phase or raw_words(record.raw_state, record.state)
    return record.state.value + (f" — {phase}" if phase and phase != record.state.value else "")


def progress_text(progress: RunProgress) -> str:
    """``step 5/9 · loss 1.2345 · 812 tok/s · ETA 12s`` with what is known."""
    parts = []
    if progress.step is not None:
        parts.append(
            f"step {progress.step:,}"
            + (f"/{progress.total_steps:,}" if progress.total_steps else "")
        )
    elif progress.fraction is not None:
        parts.append(f"{progress.fraction:.0%}")
    if progress.loss is not None:
        # the loss is logged every few steps: name its own step when it is not the current one
        at = progress.loss_step
        of_step = f" (step {at:,})" if at is not None and at != progress.step else ""
        parts.append(f"loss {progress.loss:.4f}{of_step}")
    if progress.tokens_per_second is not None:
        parts.append(f"{progress.tokens_per_second:,.0f} tok/s")
    fraction = progress.fraction
    if progress.eta_seconds is not None and fraction is not None and fraction < 1.0:
        parts.append(f"ETA {duration(progress.eta_seconds)}")
    return " · ".join(parts)


def estimate_lines(est: Estimate) -> list[str]:
    """The estimate as the confirmation prompt shows it."""
    approx = "" if est.exact else f" (approximate ±{(est.error_band or 0):.0%})"
    billable = est.billable_tokens if est.billable_tokens is not None else est.tokens
    capped = f" ({billable:,} after the per-example limit)" if billable != est.tokens else ""
    billed = "billed" if est.price_per_million_usd is not None or est.cost_unknown else "trained"
    lines = [
        f"{est.provider} {est.model} {est.method}: {est.examples:,} examples, "
        f"{est.tokens:,} tokens{capped} × {plural(est.epochs, 'epoch')} = "
        f"{est.billed_tokens:,} {billed} tokens" + approx
    ]
    if est.cost_usd is not None:
        price = (
            f" at ${est.price_per_million_usd:g}/1M"
            if est.price_per_million_usd is not None
            else ""
        )
        dated = f" (prices as of {est.price_as_of})" if est.price_as_of else ""
        lines.append(f"estimated cost: {money(est.cost_usd)}{price}{dated}")
    elif est.cost_unknown:
        lines.append("estimated cost: unknown (see the warning below)")
    else:
        lines.append("estimated cost: no provider charge (local)")
    if est.steps is not None:
        lines.append(f"optimizer steps: {est.steps:,}")
    if est.gpu_memory_gib is not None:
        lines.append(f"estimated GPU memory: {est.gpu_memory_gib:.1f} GiB")
    lines.extend(f"note: {n}" for n in est.notes)
    lines.extend(f"warning: {w}" for w in est.warnings)
    return lines


# --- fitting tables to the terminal --------------------------------------------------------


def table_width(console: Console, table: Table) -> int:
    """The width ``table`` takes when nothing is wrapped."""
    return Measurement.get(console, console.options.update(width=10_000), table).maximum


def fit_table(
    console: Console,
    build: Callable[[Sequence[str]], Table],
    columns: Sequence[str],
    optional: Sequence[str],
) -> Table | Stacked:
    """``build(columns)`` with the ``optional`` columns (least important first) dropped until
    the table fits ``console.width``. Columns of ids, model names and URLs are ``no_wrap``
    (never cut or broken); prose columns wrap at spaces. When even that does not fit, each row
    becomes a line of its ids and a line of ``header: value`` pairs (:class:`Stacked`)."""
    shown = list(columns)
    table = build(shown)
    for name in optional:
        if table_width(console, table) <= console.width:
            break
        shown.remove(name)
        table = build(shown)
    if min_width(console, table) > console.width:
        return Stacked(table)
    return table


def min_width(console: Console, table: Table) -> int:
    """The narrowest ``table`` gets: ``no_wrap`` cells whole, others at their longest word."""
    return Measurement.get(console, console.options.update(width=10_000), table).minimum


class Stacked:
    """``table`` as two lines a row: its key (the first two columns' ids and names) whole, then
    the other cells as ``header: value`` pairs, indented. Lines wrap at spaces only, so an
    id is never broken (one longer than the terminal is left to the terminal)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.columns = table.columns

    def __rich_console__(self, console: Console, options: Any) -> Any:
        columns = list(self.columns)
        # the row's key (provider + model, id + provider, model): its first named columns
        heads = [c for c in columns[:2] if c.no_wrap and c.justify == "left"]
        cells = {id(c): list(c.cells) for c in columns}

        def text(column: Any, row: int) -> Text:
            cell = cells[id(column)][row]
            return Text.from_markup(cell) if isinstance(cell, str) else Text(str(cell))

        lines: list[Text] = []
        if self.table.title:
            lines.append(Text.from_markup(str(self.table.title), style="italic"))
        for row in range(self.table.row_count):
            head = Text("  ").join(text(c, row) for c in heads)
            head.stylize("bold")
            pairs = [
                Text.assemble(Text(f"{c.header}: ", style="dim"), text(c, row))
                for c in columns
                if c not in heads and text(c, row).plain
            ]
            lines.append(head)
            if pairs:
                lines.append(Text("  ") + Text(" · ").join(pairs))
        wrapped = options.update(no_wrap=False, overflow="fold")  # at spaces, also in soft wrap
        for line in lines:
            yield from console.render(line, wrapped)


# --- the watch view ------------------------------------------------------------------------


class WatchView:
    """The watch renderer: a live panel on a terminal (the elapsed time and the countdown to
    the next poll keep ticking between polls), plain log lines otherwise."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        show_events: int = 6,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console or err
        self.show_events = show_events
        self._now = now or (lambda: datetime.now(UTC))
        self._clock = clock
        self._live: Live | None = None
        self._recent: list[str] = []
        self._last_line: str | None = None
        self._update: WatchUpdate | None = None
        self._polled_at = 0.0
        self.last_status: JobStatus | None = None

    def _elapsed(self, record: JobRecord) -> float:
        created = record.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return (self._now() - created).total_seconds()

    def render(self) -> RenderableType:
        """The panel as of now (Live calls it on every refresh)."""
        update = self._update
        if update is None:
            return Text("")
        rec = update.record
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        state = Text(state_text(rec, update.status), style=STATE_STYLE.get(rec.state, ""))
        table.add_row("job", Text(f"{rec.id}  {rec.provider} {rec.remote_id or ''}"))
        table.add_row("state", state)
        table.add_row("elapsed", duration(self._elapsed(rec)))
        progress = update.progress
        if progress.fraction is not None or progress.step is not None:
            bar = ProgressBar(total=1.0, completed=progress.fraction or 0.0, width=30)
            line = Table.grid(padding=(0, 1))
            line.add_row(bar, Text(progress_text(progress)))
            table.add_row("progress", line)
        if update.next_poll is not None:
            left = update.next_poll - (self._clock() - self._polled_at)
            table.add_row("next poll", f"in {max(0, round(left))}s")
        events = Text("\n".join(self._recent[-self.show_events :]), style="dim")
        return Group(table, events)

    def update(self, update: WatchUpdate) -> None:
        self._update = update
        self._polled_at = self._clock()
        self.last_status = update.status
        self._recent.extend(event.message for event in update.events)
        if not self.console.is_terminal:
            line = f"{update.record.id}: {state_text(update.record, update.status)}"
            if line != self._last_line:
                self.console.print(line, markup=False, highlight=False)
                self._last_line = line
            for event in update.events:
                self.console.print(f"  {event.message}", markup=False, highlight=False)
            return
        if self._live is None:
            self._live = Live(
                console=self.console,
                refresh_per_second=4,
                transient=False,
                get_renderable=self.render,
            )
            self._live.start()
        self._live.refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def outcome_lines(
    record: JobRecord, cost: JobCost | None = None, status: JobStatus | None = None
) -> list[str]:
    """What a finished job produced: the tuned model, the trained tokens and what they cost next
    to the estimate; for own hardware the time it ran instead of money."""
    lines = []
    if record.tuned_model:
        lines.append(f"tuned model: {record.tuned_model}")
    if record.billed_tokens is not None:
        vs = ""
        if record.estimate_tokens:
            diff = (record.billed_tokens - record.estimate_tokens) / record.estimate_tokens
            vs = f" (estimated {record.estimate_tokens:,}, {diff:+.1%})"
        lines.append(f"trained tokens: {record.billed_tokens:,}{vs}")
    if cost is not None and cost.cost_usd is not None:
        vs = f" (estimated {money(cost.estimate_usd)})" if cost.estimate_usd is not None else ""
        rate = f" at ${cost.price_per_million_usd:g}/1M" if cost.price_per_million_usd else ""
        lines.append(f"cost: {money(cost.cost_usd)}{rate}{vs}")
    if cost is not None and cost.own_hardware:
        lines.append(compute_line(status))
    elif cost is not None and cost.cost_usd is None and cost.cost_unknown:
        lines.append(f"cost: {unknown_cost_text(record.billed_tokens, cost.cost_unknown)}")
    return lines


def unknown_cost_text(tokens: int | None, why: str) -> str:
    """``unknown (N billed tokens; why; ...)`` for a charged job without a price."""
    billed = f"{tokens:,} billed tokens" if tokens is not None else "billed tokens not reported yet"
    return f"unknown ({billed}; {why}; add its price with --prices FILE)"


def compute_line(status: JobStatus | None) -> str:
    """``GPU time: 3m07s (cuda; no provider charge)`` for a run on own hardware."""
    seconds = status.compute_seconds if status is not None else None
    device = status.device if status is not None else None
    label = "GPU time" if device in (None, "cuda") else f"compute time ({device})"
    where = f"{device}; " if device == "cuda" else ""
    return f"{label}: {duration(seconds)} ({where}no provider charge)"
