"""One intended run is one paid job and one upload, whatever fails in between.

Against the fake OpenAI server: replies that are lost, truncated, malformed or empty (the
server did the work each time), and a real ``tuneport train`` process killed with SIGKILL after
the upload, during the create and after the create, then run again. Every test counts the
server's upload and create requests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tuneport.cli.main import run
from tuneport.jobs.store import open_store
from tuneport.paths import home
from tuneport.schemas import JobState

KEY = "sk-test-FAULTS123456789"
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
TRAIN = ["train", "--provider", "openai", "--data", str(SAMPLE), "--model", "gpt-4.1-mini"]
TRAIN += ["--yes"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    from tuneport.retry import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, n, rng=None: 0.0)  # no waiting
    with FakeOpenAI(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
        yield server


def _uploads(fake: FakeOpenAI) -> int:
    return len(fake.files)


def _one_line_error(err: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("kind", ["drop", "truncated", "malformed", "empty"])
def test_a_bad_upload_reply_never_uploads_twice(
    fake: FakeOpenAI, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.mangle("POST", "/files", kind)  # the server stores the file, the reply goes wrong
    assert run(TRAIN) == 0, capsys.readouterr().err
    assert _uploads(fake) == 1 and len(fake.calls("POST", "/files")) == 1
    assert len(fake.jobs) == 1
    (job,) = open_store().list_jobs()
    assert job.state is JobState.SUCCEEDED


@pytest.mark.parametrize("kind", ["drop", "truncated", "malformed", "empty"])
def test_a_bad_create_reply_never_creates_twice(
    fake: FakeOpenAI, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.mangle("POST", "/fine_tuning/jobs", kind)  # the server creates the job, reply goes wrong
    assert run(TRAIN) == 0, capsys.readouterr().err
    assert len(fake.jobs) == 1 and len(fake.calls("POST", "/fine_tuning/jobs")) == 1
    (job,) = open_store().list_jobs()
    assert job.remote_id in fake.jobs and job.state is JobState.SUCCEEDED


def test_every_create_reply_lost_then_the_same_command_completes_it(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server creates the job, every reply is lost and the run-id lookups fail too: the
    record stays `creating` and the same command later finds the job instead of a second."""
    fake.mangle("POST", "/fine_tuning/jobs", "drop", times=1)
    # the lookup before the create works; every lookup after it fails for now
    fake.mangle("GET", "/fine_tuning/jobs", "drop", times=20, skip=1)
    code = run(TRAIN)
    err = capsys.readouterr().err
    assert code == 4 and len(fake.jobs) == 1
    _one_line_error(err)
    assert "not known yet" in err and "run the same command again" in err
    (job,) = open_store().list_jobs()
    assert job.remote_id is None and job.raw_state == "creating"
    fake.faults.clear()
    assert run(TRAIN) == 0, capsys.readouterr().err
    assert len(fake.jobs) == 1 and len(fake.calls("POST", "/fine_tuning/jobs")) == 1
    assert _uploads(fake) == 1
    (again,) = open_store().list_jobs()
    assert again.id == job.id and again.state is JobState.SUCCEEDED


@pytest.mark.parametrize("command", ["list", "show", "cancel", "cleanup", "watch"])
def test_commands_reading_a_creating_record_ask_the_provider_first(
    fake: FakeOpenAI, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.mangle("POST", "/fine_tuning/jobs", "drop", times=1)
    fake.mangle("GET", "/fine_tuning/jobs", "drop", times=20, skip=1)
    assert run([*TRAIN, "--no-watch"]) == 4
    assert len(fake.jobs) == 1
    fake.faults.clear()
    (job,) = open_store().list_jobs()
    assert job.remote_id is None
    argv = {
        "list": ["jobs", "list", "--json"],
        "show": ["jobs", "show", job.id, "--refresh", "--json"],
        "cancel": ["jobs", "cancel", job.id],
        "cleanup": ["jobs", "cleanup", job.id, "--yes"],
        "watch": ["jobs", "watch", job.id],
    }[command]
    capsys.readouterr()
    assert run(argv) == 0, capsys.readouterr().err
    (remote,) = fake.jobs
    assert open_store().get(job.id).remote_id == remote  # found, not created again
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 1


def test_a_definite_refusal_is_not_created_and_a_rerun_retries(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.fail("POST", "/fine_tuning/jobs", 400, message="bad hyperparameters")
    assert run(TRAIN) == 4
    (job,) = open_store().list_jobs()
    assert job.state is JobState.FAILED and job.raw_state == "not created"
    assert run(TRAIN) == 0, capsys.readouterr().err  # same run id, now created once
    (again,) = open_store().list_jobs()
    assert again.id == job.id and len(fake.jobs) == 1 and _uploads(fake) == 1


def test_ctrl_c_during_create_then_the_same_command(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An injected crash hook: the create reaches the server, then Ctrl-C."""
    from tuneport.providers.openai import OpenAIProvider

    real = OpenAIProvider.launch

    def interrupted(self: OpenAIProvider, *args: object, **kw: object) -> object:
        real(self, *args, **kw)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(OpenAIProvider, "launch", interrupted)
    assert run(TRAIN) == 130
    monkeypatch.setattr(OpenAIProvider, "launch", real)
    assert run(TRAIN) == 0, capsys.readouterr().err
    assert len(fake.jobs) == 1 and _uploads(fake) == 1


def test_new_run_is_a_deliberate_second_job(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*TRAIN, "--no-watch"]) == 0
    assert run([*TRAIN, "--no-watch"]) == 0
    assert len(fake.jobs) == 1
    assert run([*TRAIN, "--no-watch", "--new-run"]) == 0
    assert len(fake.jobs) == 2 and _uploads(fake) == 1
    runs = {j["metadata"]["tuneport_run_id"] for j in fake.jobs.values()}
    assert len(runs) == 2
    # after a crash, the plain command continues the newest run
    assert run([*TRAIN, "--no-watch"]) == 0
    assert len(fake.jobs) == 2


def test_another_setting_is_another_run(fake: FakeOpenAI) -> None:
    assert run([*TRAIN, "--no-watch"]) == 0
    assert run([*TRAIN, "--no-watch", "--epochs", "2"]) == 0
    assert run([*TRAIN, "--no-watch", "--max-cost", "50"]) == 0  # a budget changes nothing
    assert len(fake.jobs) == 2


def test_a_lost_store_still_finds_the_job_at_the_provider(fake: FakeOpenAI) -> None:
    assert run([*TRAIN, "--no-watch"]) == 0
    open_store().close()
    from tuneport.jobs import store as store_module

    store_module._default.clear()
    for path in home().glob("jobs.sqlite3*"):
        path.unlink()
    assert run([*TRAIN, "--no-watch"]) == 0  # a new store: the run id finds the job
    assert len(fake.jobs) == 1 and _uploads(fake) == 1


def test_set_api_key_without_the_env_watches_with_that_key(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    assert run([*TRAIN, "--set", f"api_key={KEY}"]) == 0, capsys.readouterr().err
    (job,) = open_store().list_jobs()
    assert job.state is JobState.SUCCEEDED
    assert KEY not in json.dumps(job.config)


# --- a real process killed with SIGKILL ------------------------------------------------------


def _spawn(extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    code = "import sys; from tuneport.cli.main import main; sys.argv[0] = 'tuneport'; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *TRAIN, *extra],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_at(fake: FakeOpenAI, method: str, path: str, *, before: bool, prefix: bool) -> None:
    held = fake.hold(method, path, before=before, prefix=prefix)
    proc = _spawn()
    try:
        assert held.reached.wait(120), proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        held.release.set()
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("moment", "method", "path", "before", "prefix"),
    [
        ("upload stored, reply not yet read", "POST", "/files", False, False),
        ("after the upload, before the create", "GET", "/fine_tuning/jobs", True, False),
        ("create carried out, reply not yet read", "POST", "/fine_tuning/jobs", False, False),
        ("after the create, while watching", "GET", "/fine_tuning/jobs/", True, True),
    ],
)
def test_kill_9_then_the_same_command(
    fake: FakeOpenAI,
    moment: str,
    method: str,
    path: str,
    before: bool,
    prefix: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _kill_at(fake, method, path, before=before, prefix=prefix)
    assert run(TRAIN) == 0, capsys.readouterr().err
    assert _uploads(fake) == 1 and len(fake.calls("POST", "/files")) == 1, moment
    assert len(fake.jobs) == 1 and len(fake.calls("POST", "/fine_tuning/jobs")) == 1, moment
    (job,) = open_store().list_jobs()
    assert job.state is JobState.SUCCEEDED and job.remote_id in fake.jobs


@pytest.mark.parametrize("kind", ["empty", "malformed"])
def test_a_job_reply_of_the_wrong_shape_is_one_line_and_watch_resumes(
    fake: FakeOpenAI, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*TRAIN, "--no-watch"]) == 0
    (job,) = open_store().list_jobs()
    fake.mangle("GET", f"/fine_tuning/jobs/{job.remote_id}", kind)
    capsys.readouterr()
    code = run(["jobs", "watch", job.id])
    err = capsys.readouterr().err
    assert code == 4 and "cannot read" in err
    _one_line_error(err)
    assert run(["jobs", "watch", job.id]) == 0
    assert open_store().get(job.id).state is JobState.SUCCEEDED
    assert len(fake.jobs) == 1


def test_watching_an_old_record_with_an_invalid_setting_is_one_line(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record an older tuneport left `creating` with a setting now refused (a negative batch
    size) is not launched with the setting dropped: one line, exit 3, nothing created."""
    from datetime import UTC, datetime

    from tuneport.schemas import JobRecord

    now = datetime.now(UTC)
    config = {"provider": "openai", "model": "gpt-4.1-mini", "data": str(SAMPLE)}
    open_store().add(
        JobRecord(
            id="tp-old00001",
            run_id="run-old00001",
            provider="openai",
            model="gpt-4.1-mini",
            dataset_sha256="ab" * 32,
            config={**config, "batch_size": -2},
            remote_files={"training": "file-x"},
            raw_state="creating",
            created_at=now,
            updated_at=now,
        )
    )
    code = run(["jobs", "watch", "tp-old00001"])
    err = capsys.readouterr().err
    assert code == 3 and "batch_size" in err
    _one_line_error(err)
    assert fake.calls("POST", "/fine_tuning/jobs") == []
