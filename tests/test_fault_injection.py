"""One intended run is one paid job and one upload, whatever fails in between.

Against the fake servers of every hosted backend (OpenAI, Azure OpenAI, Together, Fireworks, and
Vertex with its uploads going to the GCS emulator through a fault-injecting proxy): replies that
are lost, truncated, malformed or empty (the server did the work each time), and a real ``tuneport
train`` process killed with SIGKILL after the upload, before, during and after the create, then
run again. Every test counts the server's upload and create requests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.azure_server import FakeAzure
from tests.fakes.faults import Fault, Faults
from tests.fakes.fireworks_server import FakeFireworks
from tests.fakes.gcs_emulator import GcsProxy, gcs_emulator, gcs_proxy  # noqa: F401
from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tests.fakes.together_server import FakeTogether
from tests.fakes.vertex_server import running_fake_vertex
from tuneport.cli.main import run
from tuneport.jobs.store import open_store
from tuneport.paths import home
from tuneport.schemas import JobState

pytestmark = pytest.mark.timeout(180)

KEY = "sk-test-FAULTS123456789"
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
TRAIN = ["train", "--provider", "openai", "--data", str(SAMPLE), "--model", "gpt-4.1-mini"]
TRAIN += ["--yes"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    from tuneport.retry import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, n, rng=None: 0.0)  # no waiting
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


Route = tuple[str, str]  # (method, regex on the fake's request path)


@dataclass
class Backend:
    """One hosted backend behind its fake: how to train, and where its requests land."""

    name: str
    argv: list[str]  # `tuneport train ...` for SAMPLE
    api: Faults  # the tuning service's request log and faults
    files: Faults  # where the file bytes go (the service itself, or Vertex's GCS)
    upload: Route  # the request that stores the bytes (on ``files``)
    lookup: Route  # the run lookup before the create (on ``api``)
    create: Route  # the create (on ``api``)
    watch: Route  # a job's GET while watching (on ``api``)
    watch_skip: int  # ``watch`` requests before the first one made while watching
    jobs: Callable[[], set[str]]  # the remote ids of the jobs the server holds
    stored: Callable[[], int]  # how many files the server holds
    # what counts as one upload when it is not ``upload`` itself: a GCS resumable session
    # (its PUT may be resumed by the library after a lost reply: same session, same upload)
    session: Route | None = None

    def uploads(self) -> int:
        return len(self.files.calls(*(self.session or self.upload)))

    def creates(self) -> int:
        return len(self.api.calls(*self.create))


def _openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    with FakeOpenAI(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield Backend(
            "openai",
            TRAIN,
            server.faults,
            server.faults,
            ("POST", "^/files$"),
            ("GET", "^/fine_tuning/jobs$"),
            ("POST", "^/fine_tuning/jobs$"),
            ("GET", "^/fine_tuning/jobs/[^/]+$"),
            0,
            lambda: set(server.jobs),
            lambda: len(server.files),
        )


def _azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    with FakeAzure(api_key="az-FAULTS-0123456789") as server:
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-FAULTS-0123456789")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.endpoint)
        yield Backend(
            "azure",
            _argv("azure", "gpt-4.1-mini"),
            server.faults,
            server.faults,
            ("POST", "^/files$"),
            ("GET", "^/fine_tuning/jobs$"),
            ("POST", "^/fine_tuning/jobs$"),
            ("GET", "^/fine_tuning/jobs/[^/]+$"),
            0,
            lambda: set(server.jobs),
            lambda: len(server.files),
        )


def _together(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    model = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
    with FakeTogether(api_key="tg-FAULTS-0123456789") as server:
        server.advance_on_get = True
        monkeypatch.setenv("TOGETHER_API_KEY", "tg-FAULTS-0123456789")
        monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
        yield Backend(
            "together",
            [*_argv("together", model), "--set", "processing_timeout=3"],  # fail, not hang
            server.faults,
            server.faults,
            ("PUT", "^/_upload/"),
            ("GET", "^/v1/fine-tunes$"),
            ("POST", "^/v1/fine-tunes$"),
            ("GET", "^/v1/fine-tunes/[^/]+$"),
            0,
            lambda: set(server.jobs),
            lambda: len(server.files),
        )


def _fireworks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    model = "accounts/fireworks/models/llama-v3p1-8b-instruct"
    with FakeFireworks(api_key="fw-FAULTS-0123456789", account_id="acme") as server:
        server.advance_on_get = True
        monkeypatch.setenv("FIREWORKS_API_KEY", "fw-FAULTS-0123456789")
        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
        monkeypatch.setenv("FIREWORKS_BASE_URL", server.base_url)
        yield Backend(
            "fireworks",
            [*_argv("fireworks", model), "--set", "dataset_timeout=3"],
            server.faults,
            server.faults,
            ("POST", ":upload$"),
            ("GET", "/supervisedFineTuningJobs/[^/]+$"),  # launch gets the run's job id first
            ("POST", "/supervisedFineTuningJobs$"),
            ("GET", "/supervisedFineTuningJobs/[^/]+$"),
            1,
            lambda: set(server.jobs),
            lambda: len(server.datasets),
        )


def _vertex(monkeypatch: pytest.MonkeyPatch, gcs: GcsProxy) -> Iterator[Backend]:
    flags = ["--project", "p", "--location", "us-central1", "--bucket", "tp-faults"]
    with running_fake_vertex() as server:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url)
        monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.FAULTS-0123456789")
        yield Backend(
            "vertex",
            [*_argv("vertex", "gemini-2.5-flash"), *flags],
            server.faults,
            gcs.faults,
            ("PUT", "^/upload/"),
            ("GET", "tuningJobs$"),
            ("POST", "tuningJobs$"),
            ("GET", "tuningJobs/[^/:]+$"),
            0,
            lambda: set(server.jobs),
            lambda: _blobs("tp-faults"),
            session=("POST", "^/upload/"),
        )


def _argv(provider: str, model: str) -> list[str]:
    return ["train", "--provider", provider, "--data", str(SAMPLE), "--model", model, "--yes"]


def _blobs(bucket: str) -> int:
    from google.cloud import storage

    return sum(1 for _ in storage.Client(project="p").list_blobs(bucket))


@pytest.fixture(params=["openai", "azure", "together", "fireworks", "vertex"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    from tuneport.retry import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, n, rng=None: 0.0)  # no waiting
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
    if request.param == "vertex":
        yield from _vertex(monkeypatch, request.getfixturevalue("gcs_proxy"))
    else:
        yield from {
            "openai": _openai,
            "azure": _azure,
            "together": _together,
            "fireworks": _fireworks,
        }[request.param](monkeypatch)


def _one_job_one_upload(b: Backend) -> None:
    """Exactly one upload and one create reached the server, and the record has that job."""
    assert b.uploads() == 1 and b.stored() == 1, (b.uploads(), b.stored())
    assert b.creates() == 1 and len(b.jobs()) == 1, (b.creates(), b.jobs())
    (job,) = open_store().list_jobs()
    assert job.state is JobState.SUCCEEDED and job.remote_id in b.jobs()


def _uploads(fake: FakeOpenAI) -> int:
    return len(fake.files)


def _one_line_error(err: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err


KINDS = ["drop", "truncated", "malformed", "empty"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_upload_reply_never_uploads_twice(
    backend: Backend, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fault = backend.files.mangle(*backend.upload, kind)  # stored, then the reply goes wrong
    code = run(backend.argv)
    assert fault.times == 0  # it was injected
    err = capsys.readouterr().err
    if code != 0:  # the run may stop with one line, then the same command finishes it
        _one_line_error(err)
        assert run(backend.argv) == 0, capsys.readouterr().err
    _one_job_one_upload(backend)


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_create_reply_never_creates_twice(
    backend: Backend, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fault = backend.api.mangle(*backend.create, kind)  # created, then the reply goes wrong
    code = run(backend.argv)
    assert fault.times == 0  # it was injected
    err = capsys.readouterr().err
    if code != 0:
        _one_line_error(err)
        assert run(backend.argv) == 0, capsys.readouterr().err
    _one_job_one_upload(backend)


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


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    code = "import sys; from tuneport.cli.main import main; sys.argv[0] = 'tuneport'; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_at(argv: list[str], fault: Fault) -> None:
    proc = _spawn(argv)
    try:
        assert fault.reached.wait(120), proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        fault.release.set()
        if proc.poll() is None:
            proc.kill()


MOMENTS = [
    "upload stored, reply not yet read",
    "after the upload, before the create",
    "create carried out, reply not yet read",
    "after the create, while watching",
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_kill_9_then_the_same_command(
    backend: Backend,
    moment: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    faults, route, before, skip = {
        MOMENTS[0]: (backend.files, backend.upload, False, 0),
        MOMENTS[1]: (backend.api, backend.lookup, True, 0),
        MOMENTS[2]: (backend.api, backend.create, False, 0),
        MOMENTS[3]: (backend.api, backend.watch, True, backend.watch_skip),
    }[moment]
    held = faults.add(Fault(*route, "hold", skip=skip, after=not before))
    _kill_at(backend.argv, held)
    # where it died: the upload done; the create not yet, or carried out
    assert backend.uploads() == 1, moment
    assert backend.creates() == (0 if moment in MOMENTS[:2] else 1), moment
    assert run(backend.argv) == 0, capsys.readouterr().err
    _one_job_one_upload(backend)


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


@pytest.mark.parametrize("kind", ["drop", "truncated", "malformed", "empty"])
def test_job_replies_going_wrong_while_watching_are_one_line_and_watch_resumes(
    backend: Backend, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*backend.argv, "--no-watch"]) == 0, capsys.readouterr().err
    (job,) = open_store().list_jobs()
    fault = backend.api.mangle(*backend.watch, kind, times=50)  # every retry goes wrong too
    capsys.readouterr()
    code = run(["jobs", "watch", job.id])
    err = capsys.readouterr().err
    assert fault.times < 50, err
    if kind == "empty" and backend.name != "openai" and code == 0:
        # Together, Fireworks and Vertex read `{}` as a job in an unknown state ("running —
        # none", "queued — unspecified") and poll on until real replies come back
        assert open_store().get(job.id).state is JobState.SUCCEEDED
    else:
        assert code == 4, err
        _one_line_error(err)
    backend.api.clear()
    assert run(["jobs", "watch", job.id]) == 0, capsys.readouterr().err
    _one_job_one_upload(backend)


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
