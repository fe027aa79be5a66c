"""tuneport.jobs.watch: backoff, store updated on every poll, Ctrl-C and crash resume."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tuneport.errors import ConfigError, JobFailedError, NotFoundError
from tuneport.jobs.store import JobStore
from tuneport.jobs.watch import Backoff, WatchUpdate, default_interval, raise_for_outcome, watch_job
from tuneport.schemas import JobEvent, JobRecord, JobRef, JobState, JobStatus


class ScriptedProvider:
    """Returns the next scripted status on each poll; events appear with their statuses."""

    name = "scripted"

    def __init__(self, script: Sequence[tuple[str, JobState, list[str]]]) -> None:
        self.script = list(script)
        self.polls = 0
        self.events_seen: list[str] = []
        self.afters: list[str | None] = []

    def status(self, job: JobRef) -> JobStatus:
        raw, state, new = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        self.events_seen.extend(new)
        done = state is JobState.SUCCEEDED
        return JobStatus(
            remote_id=job.remote_id,
            state=state,
            raw_state=raw,
            error="bad data (code)" if state is JobState.FAILED else None,
            tuned_model="scripted:tuned" if done else None,
            trained_tokens=900 if done else None,
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        self.afters.append(after)
        ids = self.events_seen
        start = ids.index(after) + 1 if after in ids else 0
        for i, event_id in enumerate(ids[start:], start):
            yield JobEvent(id=event_id, message=f"event {event_id}", step=i, loss=1.0 / (i + 1))


class Recorder:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.updates: list[WatchUpdate] = []
        self.stored_states: list[JobState] = []
        self.closed = 0

    def update(self, update: WatchUpdate) -> None:
        self.updates.append(update)
        self.stored_states.append(self.store.get(update.record.id).state)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs.db")


def _job(store: JobStore, **extra: object) -> JobRecord:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "id": "tp-0000000a",
        "run_id": "run-a",
        "provider": "scripted",
        "model": "m",
        "dataset_sha256": "x",
        "remote_id": "remote-1",
        "estimate_tokens": 1000,
        "created_at": now,
        "updated_at": now,
    }
    fields.update(extra)
    return store.add(JobRecord.model_validate(fields))


SCRIPT = [
    ("validating_files", JobState.VALIDATING, ["e1"]),
    ("queued", JobState.QUEUED, []),
    ("queued", JobState.QUEUED, []),
    ("queued", JobState.QUEUED, []),
    ("running", JobState.RUNNING, ["e2", "e3"]),
    ("running", JobState.RUNNING, []),
    ("succeeded", JobState.SUCCEEDED, ["e4"]),
]


def test_backoff_doubles_to_the_cap_and_resets_on_change() -> None:
    b = Backoff(base=2, cap=30)
    assert [b.next(False) for _ in range(6)] == [4, 8, 16, 30, 30, 30]
    assert b.next(True) == 2
    assert Backoff(base=0, cap=30).next(False) == 0


def test_watch_to_success_updates_the_store_every_poll(store: JobStore) -> None:
    _job(store)
    provider = ScriptedProvider(SCRIPT)
    seen = Recorder(store)
    slept: list[float] = []
    final = watch_job(
        "tp-0000000a",
        store=store,
        provider=provider,
        renderer=seen,
        sleep=slept.append,
        interval=2,
    )
    assert final.state is JobState.SUCCEEDED and final.tuned_model == "scripted:tuned"
    assert final.billed_tokens == 900 and final.estimate_tokens == 1000
    assert provider.polls == 7
    assert seen.stored_states == [u.record.state for u in seen.updates]  # store == view
    assert [u.record.raw_state for u in seen.updates][:2] == ["validating_files", "queued"]
    # change → 2 s; quiet polls back off 4, 8; change resets; then 4 again
    assert slept == [2, 2, 4, 8, 2, 4]
    assert seen.updates[-1].next_poll is None and seen.closed == 1
    assert [e.id for e in store.events("tp-0000000a")] == ["e1", "e2", "e3", "e4"]
    raise_for_outcome(final)  # succeeded: no error


def test_ctrl_c_then_resume_from_the_store(store: JobStore) -> None:
    _job(store)
    provider = ScriptedProvider(SCRIPT)
    polls = 0

    def interrupting_sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 5:
            raise KeyboardInterrupt

    seen = Recorder(store)
    with pytest.raises(KeyboardInterrupt):
        watch_job(
            "tp-0000000a", store=store, provider=provider, renderer=seen, sleep=interrupting_sleep
        )
    assert seen.closed == 1  # the live view is closed on the way out
    mid = store.get("tp-0000000a")
    assert mid.state is JobState.RUNNING
    assert store.last_event_id("tp-0000000a") == "e3"

    final = watch_job("tp-0000000a", store=store, provider=provider, sleep=lambda s: None)
    assert final.state is JobState.SUCCEEDED
    assert provider.afters[5] == "e3"  # the resumed watch asked only for newer events
    assert [e.id for e in store.events("tp-0000000a")] == ["e1", "e2", "e3", "e4"]


def test_failed_job_reports_the_provider_message(store: JobStore) -> None:
    _job(store)
    provider = ScriptedProvider(
        [("running", JobState.RUNNING, []), ("failed", JobState.FAILED, [])]
    )
    final = watch_job("tp-0000000a", store=store, provider=provider, sleep=lambda s: None)
    assert final.state is JobState.FAILED and final.error == "bad data (code)"
    with pytest.raises(JobFailedError) as info:
        raise_for_outcome(final)
    assert info.value.exit_code == 1 and "bad data (code)" in info.value.one_line()
    with pytest.raises(JobFailedError, match="cancelled"):
        raise_for_outcome(final.model_copy(update={"state": JobState.CANCELLED}))


def test_max_polls_stops_early(store: JobStore) -> None:
    _job(store)
    record = watch_job(
        "tp-0000000a",
        store=store,
        provider=ScriptedProvider(SCRIPT),
        sleep=lambda s: None,
        max_polls=2,
    )
    assert record.state is JobState.QUEUED


def test_job_never_created_is_a_clear_error(store: JobStore) -> None:
    _job(store, remote_id=None, raw_state="not created", error="quota", state=JobState.QUEUED)
    with pytest.raises(NotFoundError, match="never created"):
        watch_job(
            "tp-0000000a", store=store, provider=ScriptedProvider(SCRIPT), sleep=lambda s: None
        )


def test_poll_interval_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_interval() == 2.0
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
    assert default_interval() == 0.0
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "soon")
    with pytest.raises(ConfigError, match="TUNEPORT_POLL_INTERVAL"):
        default_interval()
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "-1")
    with pytest.raises(ConfigError):
        default_interval()


def test_watch_view_renders_live_on_a_terminal_and_lines_otherwise(store: JobStore) -> None:
    from datetime import timedelta
    from io import StringIO

    from rich.console import Console

    from tuneport.cli._render import WatchView
    from tuneport.jobs.tracking import RunProgress

    record = _job(store, estimate_tokens=1000)
    status = JobStatus(
        remote_id="remote-1", state=JobState.RUNNING, raw_state="training", phase="training"
    )
    event = JobEvent(id="e1", message="Step 1: loss [0.5]", step=1, loss=0.5)
    running = record.model_copy(update={"state": JobState.RUNNING, "raw_state": "training"})
    progress = RunProgress(
        step=5, total_steps=9, loss=0.5, tokens_per_second=812.4, fraction=5 / 9, eta_seconds=12
    )

    clock = [record.created_at + timedelta(seconds=65)]
    term = Console(file=StringIO(), force_terminal=True, width=100)
    live = WatchView(term, now=lambda: clock[0])
    live.update(WatchUpdate(running, status, [event], True, 1, 2.0, progress))
    panel = Console(file=StringIO(), width=100)
    panel.print(live.render())
    first = panel.file.getvalue()  # type: ignore[attr-defined]
    assert "step 5/9 · loss 0.5000 · 812 tok/s · ETA 12s" in first
    assert "running — training" in first and "1m05s" in first and "Step 1: loss [0.5]" in first
    clock[0] += timedelta(seconds=3)  # no new poll: the elapsed time still moves
    panel.print(live.render())
    assert "1m08s" in panel.file.getvalue()  # type: ignore[attr-defined]
    live.close()
    assert "step 5/9" in term.file.getvalue()  # type: ignore[attr-defined]

    log = Console(file=StringIO(), force_terminal=False, width=100)
    plain = WatchView(log)
    plain.update(WatchUpdate(running, status, [event], True, 1, 2.0))
    plain.update(WatchUpdate(running, status, [], False, 2, 4.0))
    done = running.model_copy(
        update={"state": JobState.SUCCEEDED, "raw_state": "JOB_STATE_SUCCEEDED"}
    )
    final = status.model_copy(update={"state": JobState.SUCCEEDED, "phase": None})
    plain.update(WatchUpdate(done, final, [], True, 3, None))
    assert log.file.getvalue().splitlines() == [  # type: ignore[attr-defined]
        "tp-0000000a: running — training",
        "  Step 1: loss [0.5]",
        "tp-0000000a: succeeded",  # tuneport's word, not succeeded/succeeded or an enum name
    ]


def test_state_words_never_show_enum_names() -> None:
    from tuneport.cli._render import raw_words

    assert raw_words("JOB_STATE_SUCCEEDED", JobState.SUCCEEDED) is None
    assert raw_words("JOB_STATE_PENDING", JobState.QUEUED) == "pending"
    assert raw_words("validating_files", JobState.VALIDATING) is None
    assert raw_words("succeeded", JobState.SUCCEEDED) is None
    assert raw_words("paused", JobState.QUEUED) == "paused"


def test_outcome_shows_cost_next_to_the_estimate_or_gpu_time(store: JobStore) -> None:
    from tuneport.cli._render import outcome_lines
    from tuneport.jobs.cost import job_cost

    record = _job(
        store,
        provider="openai",
        model="gpt-4.1-mini",
        estimate_tokens=1000,
        estimate_cost_usd=0.005,
        tuned_model="ft:x",
        billed_tokens=1100,
        state=JobState.SUCCEEDED,
    )
    assert outcome_lines(record, job_cost(record)) == [
        "tuned model: ft:x",
        "trained tokens: 1,100 (estimated 1,000, +10.0%)",
        "cost: $0.0055 at $5/1M (estimated $0.0050)",
    ]
    local = record.model_copy(update={"provider": "local", "model": "./m"})
    status = JobStatus(
        remote_id="r",
        state=JobState.SUCCEEDED,
        raw_state="succeeded",
        compute_seconds=187,
        device="cuda",
    )
    assert outcome_lines(local, job_cost(local), status)[-1] == (
        "GPU time: 3m07s (cuda; no provider charge)"
    )
    cpu = status.model_copy(update={"device": "cpu"})
    assert outcome_lines(local, job_cost(local), cpu)[-1] == (
        "compute time (cpu): 3m07s (no provider charge)"
    )


class PhasedProvider:
    """A local-like run: a long quiet load, then a short training phase (steps every poll),
    then done. ``clock`` advances by what the watch sleeps."""

    name = "phased"

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.seen: list[tuple[float, str]] = []

    def _phase(self) -> tuple[JobState, str, int | None]:
        t = self.clock[0]
        if t < 60:
            return JobState.QUEUED, "queued", None
        if t < 200:
            return JobState.RUNNING, "loading", None
        if t < 230:
            return JobState.RUNNING, "training", int((t - 200) // 3)  # 10 steps in 30 s
        return JobState.SUCCEEDED, "succeeded", 10

    def status(self, job: JobRef) -> JobStatus:
        state, raw, step = self._phase()
        self.seen.append((self.clock[0], raw))
        return JobStatus(
            remote_id=job.remote_id,
            state=state,
            raw_state=raw,
            phase=raw,
            step=step,
            total_steps=10 if step is not None else None,
            loss=1.0 / (1 + step) if step is not None else None,
            tokens_per_second=500.0 if raw == "training" else None,
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        return iter(())


def test_running_jobs_are_polled_often_enough_to_see_every_phase(store: JobStore) -> None:
    """Backing off to 30 s while a run loads would sleep through a 30 s training phase: while
    a job runs the wait is capped, and progress (step/total, loss, tok/s, ETA) rides along."""
    _job(store)
    clock = [0.0]
    provider = PhasedProvider(clock)
    seen = Recorder(store)

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    final = watch_job(
        "tp-0000000a",
        store=store,
        provider=provider,
        renderer=seen,
        sleep=sleep,
        interval=2,
        clock=lambda: clock[0],
    )
    assert final.state is JobState.SUCCEEDED
    phases = [raw for _, raw in provider.seen]
    assert "training" in phases and "loading" in phases
    waits = [u.next_poll for u in seen.updates if u.record.state is JobState.RUNNING]
    assert waits and max(w for w in waits if w is not None) <= 10
    queued = [u.next_poll for u in seen.updates if u.record.state is JobState.QUEUED]
    assert max(w for w in queued if w is not None) > 10  # waiting phases still back off
    training = [u.progress for u in seen.updates if u.record.raw_state == "training"]
    assert training[-1].total_steps == 10 and training[-1].loss is not None
    assert training[-1].tokens_per_second == 500.0
    assert any(p.eta_seconds is not None for p in training)
    assert seen.updates[-1].progress.fraction == 1.0


def test_backoff_limit_and_poll_limit() -> None:
    from tuneport.jobs.tracking import RunProgress
    from tuneport.jobs.watch import RUNNING_CAP, poll_limit

    b = Backoff(base=2, cap=30)
    assert [b.next(False, limit=10) for _ in range(4)] == [4, 8, 10, 10]
    assert b.next(False, limit=0.5) == 2  # never below the base interval
    assert poll_limit(JobState.QUEUED, RunProgress()) is None
    assert poll_limit(JobState.RUNNING, RunProgress()) == RUNNING_CAP
    assert poll_limit(JobState.RUNNING, RunProgress(eta_seconds=8)) == 2


def test_progress_tracker_uses_events_and_estimates_the_time_left() -> None:
    from tuneport.jobs.tracking import ProgressTracker

    now = [0.0]
    tracker = ProgressTracker(lambda: now[0])
    running = JobStatus(remote_id="r", state=JobState.RUNNING, raw_state="running")
    first = tracker.observe(
        running, [JobEvent(id="a", message="Step 1/10", step=1, total_steps=10, loss=2.0)]
    )
    assert (first.step, first.total_steps, first.loss, first.fraction) == (1, 10, 2.0, 0.1)
    assert first.eta_seconds is None  # one point: no pace yet
    now[0] = 20.0
    later = tracker.observe(running, [JobEvent(id="b", message="s", step=3, loss=1.5)])
    assert later.step == 3 and later.total_steps == 10 and later.loss == 1.5
    assert later.eta_seconds == pytest.approx(20 * 0.7 / 0.2)  # 2 steps per 20 s, 7 to go
    done = tracker.observe(running.model_copy(update={"state": JobState.SUCCEEDED}))
    assert done.fraction == 1.0 and done.eta_seconds == 0.0


def test_the_header_pairs_each_loss_with_its_own_step() -> None:
    """The local status file holds the step just ended next to the loss last logged (an
    earlier step's); events carry both. The header shows the step's own loss, or names the step
    a shown loss belongs to - never the previous step's loss as the current one's."""
    from tuneport.cli._render import progress_text
    from tuneport.jobs.tracking import ProgressTracker

    tracker = ProgressTracker(lambda: 0.0)
    status = JobStatus(
        remote_id="r", state=JobState.RUNNING, raw_state="training", step=6, total_steps=9
    )
    stale = status.model_copy(update={"loss": 1.5})  # logged at step 5
    losses = [JobEvent(id=str(s), message="m", step=s, loss=2.0 - s / 10) for s in (4, 5, 6)]
    now = tracker.observe(stale, losses)
    assert progress_text(now) == "step 6/9 · loss 1.4000"  # was step 5's 1.5
    assert (now.step, now.loss, now.loss_step) == (6, pytest.approx(1.4), 6)
    later = tracker.observe(stale.model_copy(update={"step": 7}))  # step 7 not logged yet
    assert progress_text(later) == "step 7/9 · loss 1.4000 (step 6)"
    newest_first = ProgressTracker(lambda: 0.0).observe(status, list(reversed(losses)))
    assert (newest_first.loss, newest_first.loss_step) == (pytest.approx(1.4), 6)
    no_events = ProgressTracker(lambda: 0.0).observe(stale)
    assert progress_text(no_events) == "step 6/9 · loss 1.5000"  # the status names no step
