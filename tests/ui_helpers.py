"""Shared by the dashboard's HTTP and browser tests: a store seeded with jobs of three providers
(one with a loss curve and a validation curve), and the dashboard served on a free loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tuneport.cli.ui import _bind
from tuneport.cli.ui.app import UISettings, create_app
from tuneport.jobs.store import JobStore
from tuneport.schemas import JobEvent, JobRecord, JobState

LOSS_STEPS = 37  # points on the seeded loss curve
VALID_EVERY = 6  # a validation loss every 6th step
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def record(
    job_id: str, provider: str, model: str, state: JobState, minutes: int, **fields: object
) -> JobRecord:
    created = START + timedelta(minutes=minutes)
    values: dict[str, object] = {
        "id": job_id,
        "run_id": f"run-{job_id}",
        "provider": provider,
        "model": model,
        "dataset_sha256": "ab" * 32,
        "config": {"provider": provider, "model": model, "data": "fixtures/sample/chat.jsonl"},
        "state": state,
        "created_at": created,
        "updated_at": created,
        "estimate_tokens": 12_000,
        "estimate_cost_usd": 0.06,
    }
    values.update(fields)
    return JobRecord.model_validate(values)


def seed(store: JobStore, extra: int = 0) -> dict[str, JobRecord]:
    """Three providers' jobs; ``tp-openai01`` has the loss curve. ``extra`` more OpenAI jobs."""
    jobs = {
        "tp-openai01": record(
            "tp-openai01",
            "openai",
            "gpt-4.1-mini",
            JobState.SUCCEEDED,
            3,
            remote_id="ftjob-abc123",
            tuned_model="ft:gpt-4.1-mini:org-fake::abc123",
            billed_tokens=36_000,
        ),
        "tp-vertex01": record(
            "tp-vertex01",
            "vertex",
            "gemini-2.5-flash",
            JobState.RUNNING,
            2,
            remote_id="projects/p/locations/us-central1/tuningJobs/42",
        ),
        "tp-local001": record(
            "tp-local001",
            "local",
            "tiny-llama",
            JobState.FAILED,
            1,
            error="out of memory",
            estimate_cost_usd=None,
        ),
    }
    for i in range(extra):
        jobs[f"tp-bulk{i:04d}"] = record(
            f"tp-bulk{i:04d}", "openai", "gpt-4o-mini", JobState.QUEUED, -i
        )
    for job in jobs.values():
        store.add(job)
    events = []
    for step in range(1, LOSS_STEPS + 1):
        data = {"valid_loss": 2.5 / step + 0.1} if step % VALID_EVERY == 0 else {}
        events.append(
            JobEvent(
                id=f"ev-{step}",
                created_at=START + timedelta(seconds=step),
                message=f"Step {step}/{LOSS_STEPS}: training loss={3.0 / step:.4f}",
                step=step,
                total_steps=LOSS_STEPS,
                loss=3.0 / step,
                data=data,
            )
        )
    events.append(
        JobEvent(
            id="ev-ckpt",
            message="checkpoint saved",
            step=LOSS_STEPS,
            data={"fine_tuned_model_checkpoint": "ft:gpt-4.1-mini:org-fake::abc123:ckpt-step-37"},
        )
    )
    store.add_events("tp-openai01", events)
    return jobs


@contextmanager
def serving(settings: UISettings) -> Iterator[str]:
    """The dashboard on a free loopback port, in a thread; yields its root URL."""
    import uvicorn

    sock = _bind(settings.host, 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the dashboard did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def seeded_store(tmp_path: Path, extra: int = 0) -> JobStore:
    store = JobStore(tmp_path / "jobs.sqlite3")
    seed(store, extra)
    return store
