"""End to end through the generic CLI: `tuneport train --provider local`, jobs, chat, export."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.tiny_model import build_tiny_model
from tuneport.cli.main import run
from tuneport.jobs.store import open_store
from tuneport.paths import home
from tuneport.providers.local import runfiles
from tuneport.schemas import JobState

pytestmark = pytest.mark.slow

QUICK = [
    "--set",
    "max_steps=4",
    "--set",
    "logging_steps=1",
    "--set",
    "gradient_checkpointing=false",
    "--set",
    "max_length=256",
]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0.3")


@pytest.fixture(autouse=True)
def _stop_leftover_trainers() -> Iterator[None]:
    """A failing test must not leave its trainer process running: kill the run's group."""
    yield
    runs = home() / "runs"
    for pid_file in runs.glob(f"*/{runfiles.PID}") if runs.is_dir() else []:
        pid = runfiles.read_pid(pid_file.parent)
        if pid is not None and runfiles.pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def test_train_watch_chat_export_and_continue(
    tiny_dir: Path,
    fixtures_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = fixtures_dir / "sample" / "chat.jsonl"
    argv = ["train", "--provider", "local", "--model", str(tiny_dir), "--data", str(data)]
    assert run([*argv, *QUICK, "--yes"]) == 0
    out, err = capsys.readouterr()
    assert "no GPU" not in out
    (job,) = open_store().list_jobs()
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.tuned_model == f"local:{job.remote_id}"
    assert f"tuned model: {job.tuned_model}" in out
    assert "steps" in err or "examples" in err  # the estimate was shown
    assert "compute time (cpu): " in out and "(no provider charge)" in out
    events = open_store().events(job.id)
    messages = [e.message for e in events]
    assert messages[0] == "loading the model and data"  # every phase is an event
    assert messages[1].startswith("no CUDA GPU found")
    assert "training (4 steps)" in messages and "saving the adapter" in messages
    assert [e.step for e in events if e.step is not None] == [1, 2, 3, 4]
    assert run(["jobs", "show", job.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["cost_usd"] is None and shown["own_hardware"] is True
    assert shown["compute_seconds"] > 0
    run_dir = home() / "runs" / job.run_id
    assert (run_dir / runfiles.ADAPTER / "adapter_model.safetensors").is_file()
    assert (run_dir / runfiles.LOSS_PNG).is_file()

    assert run(["jobs", "watch", job.id]) == 0
    assert f"tuned model: {job.tuned_model}" in capsys.readouterr().out
    assert run(["jobs", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert job.id in json.dumps(listed)

    assert run(["chat", job.tuned_model, "--message", "hi", "--max-tokens", "8"]) == 0
    assert run(["chat", f"local:{job.id}", "--message", "hi", "--max-tokens", "8"]) == 0
    capsys.readouterr()
    assert run(["chat", job.id, "--message", "hi", "--max-tokens", "8", "--json"]) == 0
    out = capsys.readouterr().out
    reply = json.loads(out)
    assert reply["role"] == "assistant" and isinstance(reply["content"], str)

    merged = tmp_path / "merged"
    assert run(["export", job.id, "--merge", "-o", str(merged)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(merged)
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert "convert_hf_to_gguf.py" in err
    assert run(["export", job.id, "--merge", "-o", str(merged)]) == 3  # never overwrites
    assert "already exists" in capsys.readouterr().err

    assert run(["jobs", "resume", job.id]) == 3
    assert "already succeeded" in capsys.readouterr().err

    # a second job continues from the first one's adapter: lineage is in the store
    assert run([*argv, *QUICK, "--set", f"parent={job.id}", "--yes"]) == 0
    capsys.readouterr()
    child = next(j for j in open_store().list_jobs() if j.id != job.id)
    assert child.state is JobState.SUCCEEDED, child.error
    assert child.parent_id == job.id
    child_dir = home() / "runs" / child.run_id
    config = json.loads((child_dir / runfiles.CONFIG).read_text())
    assert config["parent_run"] == job.run_id
    assert (child_dir / runfiles.BASE / "config.json").is_file()


def test_bad_option_fails_before_anything_runs(
    tiny_dir: Path, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fixtures_dir / "sample" / "chat.jsonl"
    argv = ["train", "--provider", "local", "--model", str(tiny_dir), "--data", str(data)]
    code = run([*argv, "--set", "lora=huge", "--yes"])
    assert code == 3
    err = capsys.readouterr().err
    assert "option 'lora'" in err and err[-1] == "\n" and err.count("\n") == 1
    assert open_store().list_jobs() == []


@pytest.mark.parametrize("offline", [True, False])
def test_a_model_that_cannot_be_loaded_is_refused_before_anything_starts(
    offline: bool,
    fixtures_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Hub id that is neither a folder nor cached, with the Hub out of reach: once the trainer
    started, failed after about a minute and suggested `jobs resume` (with no checkpoint)."""
    import socket

    if not offline:  # the Hub is asked, and does not answer (a closed local port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    data = fixtures_dir / "sample" / "chat.jsonl"
    argv = ["train", "-p", "local", "-m", "someone/not-cached-model", "--data", str(data)]
    started = time.monotonic()
    assert run([*argv, "--yes"]) == 3
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert "someone/not-cached-model is neither a model folder nor in the Hugging Face cache" in err
    assert ("HF_HUB_OFFLINE is set" if offline else "Hub cannot be reached") in err
    assert err.count("\n") == 1 and "jobs resume" not in err
    assert open_store().list_jobs() == []
    assert not (home() / "runs").exists() or not any((home() / "runs").iterdir())


def test_export_refuses_providers_without_weights(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["export", "tp-nope"]) == 4
    assert "no job" in capsys.readouterr().err


def test_cancel_then_resume_through_the_jobs_commands(
    tiny_dir: Path, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fixtures_dir / "sample" / "chat.jsonl"
    argv = ["train", "--provider", "local", "--model", str(tiny_dir), "--data", str(data)]
    long_run = [f"--set={o}" for o in ("max_steps=2000", "save_steps=1000", "max_length=256")]
    quiet = ["--set=logging_steps=1", "--set=gradient_checkpointing=false"]
    assert run([*argv, *quiet, *long_run, "--no-watch", "--yes"]) == 0
    job_id = capsys.readouterr().out.strip()
    run_dir = home() / "runs" / open_store().get(job_id).run_id

    def step() -> int:
        status = runfiles.read_status(run_dir)
        return status.step if status is not None else 0

    deadline = time.monotonic() + 120
    while step() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    capsys.readouterr()
    # `jobs show` of a running job polls it: the real phase and progress, not the stored state
    assert run(["jobs", "show", job_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "running" and shown["phase"] == "training"
    assert shown["progress"]["total_steps"] == 2000 and shown["progress"]["step"] >= 2
    assert run(["jobs", "show", job_id]) == 0
    text = capsys.readouterr().out
    assert "running — training" in text and "/2,000" in text
    assert run(["jobs", "cancel", job_id]) == 0
    assert f"`tuneport jobs resume {job_id}`" in capsys.readouterr().err  # the hint has the id
    assert run(["jobs", "watch", job_id]) == 1  # a cancelled job is not a success
    assert f"`tuneport jobs resume {job_id}`" in capsys.readouterr().err
    record = open_store().get(job_id)
    assert record.state is JobState.CANCELLED
    stopped = runfiles.latest_checkpoint(run_dir)
    assert stopped is not None
    capsys.readouterr()

    # the resumed process starts at the checkpoint (not step 0); then stop it again
    assert run(["jobs", "resume", job_id, "--no-watch"]) == 0
    assert f"resumed {job_id} as {job_id}" in capsys.readouterr().err
    deadline = time.monotonic() + 120
    while step() <= int(stopped.name.rpartition("-")[2]) and time.monotonic() < deadline:
        time.sleep(0.1)
    status = runfiles.read_status(run_dir)
    assert status is not None and status.resumed_from == stopped.name
    assert status.step > int(stopped.name.rpartition("-")[2])
    assert run(["jobs", "cancel", job_id]) == 0
    assert run(["jobs", "watch", job_id]) == 1
    assert open_store().get(job_id).state is JobState.CANCELLED
