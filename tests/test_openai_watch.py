"""Watching OpenAI jobs through the store: kill mid-way and resume, crash during launch.

Runs once with the server from OPENAI_BASE_URL and once with ``base_url`` as a provider option
(stored with the job, so `jobs watch` rebuilds the same backend).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tuneport.cli.main import run
from tuneport.jobs.store import open_store
from tuneport.jobs.watch import watch_job
from tuneport.providers.openai import OpenAIProvider
from tuneport.schemas import JobConfig, JobRecord, JobState

KEY = "sk-test-SECRET123456"


@pytest.fixture(params=["env", "option"])
def setup(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeOpenAI, dict[str, str]]]:
    with FakeOpenAI(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
        if request.param == "env":
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            yield server, {}
        else:
            yield server, {"base_url": server.base_url}


def _record(tmp_path: Path, options: dict[str, str], **extra: object) -> JobRecord:
    data = tmp_path / "train.jsonl"
    data.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    now = datetime.now(UTC)
    cfg = JobConfig(provider="openai", model="gpt-4.1-mini", data=data, options=options)
    fields: dict[str, object] = {
        "id": "tp-0000beef",
        "run_id": "run-beef",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "dataset_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "config": cfg.model_dump(mode="json"),
        "created_at": now,
        "updated_at": now,
    }
    fields.update(extra)
    return open_store().add(JobRecord.model_validate(fields))


def _provider(options: dict[str, str]) -> OpenAIProvider:
    return OpenAIProvider(**options)


def _uploaded_file(fake: FakeOpenAI, options: dict[str, str], tmp_path: Path) -> str:
    path = tmp_path / "up.jsonl"
    path.write_text("{}\n")
    with path.open("rb") as fh:
        return _provider(options).client.files.create(file=fh, purpose="fine-tune").id


def test_watch_killed_mid_way_resumes_from_the_store(
    setup: tuple[FakeOpenAI, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, options = setup
    provider = _provider(options)
    from tuneport.providers.base import UploadedData

    file_id = _uploaded_file(fake, options, tmp_path)
    ref = provider.launch(
        UploadedData(training=file_id),
        JobConfig(provider="openai", model="gpt-4.1-mini", data=tmp_path / "x"),
        "run-beef",
    )
    _record(tmp_path, options, remote_id=ref.remote_id, remote_files={"training": file_id})
    polls = 0

    def dying_sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        watch_job("tp-0000beef", store=open_store(), sleep=dying_sleep)
    mid = open_store().get("tp-0000beef")
    assert mid.state is JobState.RUNNING and mid.raw_state == "running"
    seen = [e.id for e in open_store().events("tp-0000beef")]
    assert seen

    # a fresh process would only have the store: the CLI rebuilds the backend from it
    assert run(["jobs", "watch", "tp-0000beef"]) == 0
    assert "tuned model: ft:gpt-4.1-mini" in capsys.readouterr().out
    final = open_store().get("tp-0000beef")
    assert final.state is JobState.SUCCEEDED and final.billed_tokens
    events = [e.id for e in open_store().events("tp-0000beef")]
    assert events[: len(seen)] == seen and len(events) == len(set(events))
    assert [e["id"] for e in fake.events[ref.remote_id]] == events
    assert len(fake.jobs) == 1


@pytest.mark.parametrize("created_remotely", [False, True])
def test_crash_during_launch_is_completed_exactly_once(
    setup: tuple[FakeOpenAI, dict[str, str]],
    tmp_path: Path,
    created_remotely: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, options = setup
    file_id = _uploaded_file(fake, options, tmp_path)
    if created_remotely:  # the create reached the server, the process died before recording
        from tuneport.providers.base import UploadedData

        _provider(options).launch(
            UploadedData(training=file_id),
            JobConfig(provider="openai", model="gpt-4.1-mini", data=tmp_path / "x"),
            "run-beef",
        )
    _record(tmp_path, options, raw_state="creating", remote_files={"training": file_id})
    assert run(["jobs", "watch", "tp-0000beef"]) == 0
    assert len(fake.jobs) == 1
    (job,) = fake.jobs.values()
    assert job["metadata"] == {"tuneport_run_id": "run-beef"}
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 1
    assert open_store().get("tp-0000beef").remote_id == job["id"]


def test_openai_metric_events_give_step_of_total_and_loss(
    setup: tuple[FakeOpenAI, dict[str, str]], tmp_path: Path
) -> None:
    """OpenAI metric events ("Step 2/3: training loss=1.0") feed the progress bar."""
    from tuneport.providers.base import UploadedData

    fake, options = setup
    provider = _provider(options)
    file_id = _uploaded_file(fake, options, tmp_path)
    ref = provider.launch(
        UploadedData(training=file_id),
        JobConfig(provider="openai", model="gpt-4.1-mini", data=tmp_path / "x"),
        "run-beef",
    )
    _record(tmp_path, options, remote_id=ref.remote_id, remote_files={"training": file_id})
    updates: list[object] = []

    class Seen:
        def update(self, update: object) -> None:
            updates.append(update)

        def close(self) -> None:
            pass

    watch_job("tp-0000beef", store=open_store(), sleep=lambda s: None, renderer=Seen())
    metric = [e for e in open_store().events("tp-0000beef") if e.loss is not None]
    assert [(e.step, e.loss) for e in metric] == [(1, 2.0), (2, 1.0)]
    running = [u for u in updates if u.record.state is JobState.RUNNING]  # type: ignore[attr-defined]
    last = running[-1].progress  # type: ignore[attr-defined]
    assert (last.step, last.total_steps, last.loss) == (2, 3, 1.0)
