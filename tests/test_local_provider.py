"""LocalProvider: the trainer as a real background process, observed through its run directory.

Launch/status/events/chat, idempotent launch, kill -9 + resume from the last checkpoint,
cancel, a process that dies without a word, cleanup, and the no-torch import rule.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.tiny_model import build_tiny_model
from tuneport.errors import ConfigError, NotFoundError, ProviderError
from tuneport.jobs.store import open_store
from tuneport.paths import home
from tuneport.progress import NullProgress
from tuneport.providers import registry
from tuneport.providers.base import ChatOptions, Exportable, Provider, Resumable
from tuneport.providers.local import runfiles
from tuneport.providers.local.provider import LocalProvider
from tuneport.schemas import Example, JobConfig, JobRef, JobState, Message

pytestmark = pytest.mark.slow

PAIRS = [("hi", "hello"), ("what is 2+2?", "4"), ("capital of France?", "Paris")]
SYSTEM = Message(role="system", content="Answer briefly.")
FAST = {
    "logging_steps": 1,
    "gradient_accumulation_steps": 1,
    "gradient_checkpointing": False,
    "warmup_ratio": 0.0,
    "lr_scheduler": "constant",
}


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


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


def records() -> list[Example]:
    return [
        Example(
            messages=[
                SYSTEM,
                Message(role="user", content=q),
                Message(role="assistant", content=a),
            ]
        )
        for q, a in PAIRS
    ]


def config(model: Path, **options: Any) -> JobConfig:
    return JobConfig(
        provider="local",
        model=str(model),
        data=Path("unused.jsonl"),
        batch_size=3,
        options={**FAST, "learning_rate": 1e-2, **options},
    )


def start(
    provider: LocalProvider, cfg: JobConfig, tmp_path: Path, run_id: str = "run-test"
) -> JobRef:
    prepared = provider.prepare(records(), cfg, tmp_path / "prepared", NullProgress())
    assert prepared.examples == 3 and prepared.training.is_dir()
    uploaded = provider.upload(prepared, cfg, NullProgress())
    return provider.launch(uploaded, cfg, run_id)


def wait_for(
    check: Callable[[], Any], timeout: float = 150.0, what: str = "condition", every: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def finished(provider: LocalProvider, job: JobRef) -> Callable[[], Any]:
    def check() -> Any:
        status = provider.status(job)
        return status if status.state.terminal else None

    return check


def test_registry_builds_it_with_the_protocol_and_capabilities() -> None:
    provider = registry.get("local", {"max_steps": 3, "lora": "small"})
    assert isinstance(provider, LocalProvider)
    assert isinstance(provider, Provider)
    assert isinstance(provider, Resumable) and isinstance(provider, Exportable)


def test_unknown_options_are_refused_with_the_allowed_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'bucket'.*allowed options:.*lora"):
        LocalProvider(bucket="gs://x")
    provider = LocalProvider()
    with pytest.raises(ConfigError, match="option 'quantize'"):
        provider.options(config(tmp_path, quantize="3bit"))


def test_launch_watch_events_chat(tiny_dir: Path, tmp_path: Path) -> None:
    provider = LocalProvider()
    cfg = config(tiny_dir, max_steps=12)
    job = start(provider, cfg, tmp_path)
    assert job == JobRef(provider="local", remote_id="run-test", run_id="run-test")
    pid = runfiles.read_pid(provider.run_dir(job))
    # a second launch for the same run id starts nothing
    assert start(provider, cfg, tmp_path / "again") == job
    assert runfiles.read_pid(provider.run_dir(job)) == pid

    status = wait_for(finished(provider, job), what="the run to end")
    assert status.state is JobState.SUCCEEDED, status.error
    assert status.tuned_model == "local:run-test" and status.progress == 1.0
    assert status.trained_tokens and status.model == str(tiny_dir)
    assert (status.step, status.total_steps) == (12, 12) and status.loss is not None
    assert status.compute_seconds and status.device == "cpu" and status.phase is None

    events = list(provider.events(job))
    assert events[0].message == "loading the model and data"
    assert events[1].message.startswith("no CUDA GPU found: training on CPU in full precision")
    metrics = [e for e in events if e.step is not None]
    assert [e.id for e in metrics] == [str(i) for i in range(1, 13)]
    assert metrics[-1].loss is not None and metrics[0].loss is not None
    assert metrics[-1].loss < metrics[0].loss
    assert "tok/s" in metrics[-1].message and "GiB" in metrics[-1].message
    later = list(provider.events(job, after="10"))
    assert [e.step for e in later if e.step is not None] == [11, 12]
    assert "saving the adapter" in [e.message for e in later if e.step is None]
    assert [s.remote_id for s in provider.list_jobs()] == ["run-test"]

    reply = provider.chat(
        "local:run-test",
        [SYSTEM, Message(role="user", content="capital of France?")],
        ChatOptions(max_tokens=10),
    )
    assert reply == Message(role="assistant", content="Paris")

    merged = provider.export(job, tmp_path / "merged", merge=True)
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()
    reply = provider.chat(
        f"local:{merged}", [SYSTEM, Message(role="user", content="hi")], ChatOptions()
    )
    assert reply.content == "hello"
    with pytest.raises(ConfigError, match="already exists"):
        provider.export(job, tmp_path / "merged", merge=True)
    adapter = provider.export(job, tmp_path / "adapter", merge=False)
    assert (adapter / "adapter_config.json").is_file()

    with pytest.raises(ProviderError, match="already finished"):
        provider.resume(job)
    run_dir = provider.run_dir(job)
    removed = provider.cleanup(job)  # what it deleted, one line each
    assert str(run_dir / runfiles.DATA) in removed
    assert set(removed) <= {str(run_dir / n) for n in (runfiles.CHECKPOINTS, runfiles.DATA)}
    assert not (run_dir / runfiles.CHECKPOINTS).exists() and (run_dir / runfiles.ADAPTER).is_dir()
    assert provider.cleanup(job) == []


def test_kill_then_resume_continues_from_the_checkpoint(tiny_dir: Path, tmp_path: Path) -> None:
    provider = LocalProvider()
    job = start(
        provider, config(tiny_dir, max_steps=120, save_steps=3, lr_scheduler="linear"), tmp_path
    )
    run_dir = provider.run_dir(job)
    wait_for(lambda: runfiles.latest_checkpoint(run_dir), what="a checkpoint", every=0.01)
    pid = runfiles.read_pid(run_dir)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    killed_at = datetime.now().astimezone()
    wait_for(lambda: not runfiles.pid_alive(pid), what="the process to die")

    status = provider.status(job)
    assert status.state is JobState.FAILED
    assert status.error and status.error.startswith(f"trainer process {pid} died")
    checkpoint = runfiles.latest_checkpoint(run_dir)
    assert checkpoint is not None
    step = int(checkpoint.name.rpartition("-")[2])
    assert 3 <= step < 120

    seen = max(e.step for e in provider.events(job) if e.step is not None)
    assert provider.resume(job) == job
    resumed_at = datetime.now().astimezone()
    status = wait_for(finished(provider, job), what="the resumed run to end")
    assert status.state is JobState.SUCCEEDED, status.error
    assert status.raw["resumed_from"] == checkpoint.name
    assert f"resuming from {checkpoint.name}" in (run_dir / runfiles.LOG).read_text()

    events = list(provider.events(job))
    metrics = [e for e in events if e.step is not None]
    assert [e.step for e in metrics] == list(range(1, 121))  # redone steps are not duplicated
    # the resume message sorts after everything a watcher saw before the kill
    (note,) = [e for e in events if e.message == f"resuming from {checkpoint.name}"]
    assert runfiles.event_key(note.id) > runfiles.event_key(str(seen)) >= (step, 0)
    for event in metrics:
        assert event.created_at is not None
        if event.step is not None and event.step <= step:
            assert event.created_at < killed_at  # kept from the first process
        else:
            assert event.created_at > resumed_at  # trained after the resume, not restarted
    final = runfiles.latest_checkpoint(run_dir)
    assert final is not None and final.name == "checkpoint-120"
    listed = provider.checkpoints(job)
    assert listed[-1].id == "checkpoint-120" and listed[-1].step == 120
    assert listed[-1].model == "local:run-test/checkpoint-120"
    assert listed[-1].metrics["train_loss"] == metrics[-1].loss
    reply = provider.chat(
        listed[-1].model, [SYSTEM, Message(role="user", content="hi")], ChatOptions(max_tokens=4)
    )
    assert reply.role == "assistant" and isinstance(reply.content, str)


def test_cancel_stops_at_a_step_and_saves_a_checkpoint(tiny_dir: Path, tmp_path: Path) -> None:
    provider = LocalProvider()
    job = start(provider, config(tiny_dir, max_steps=5000, save_steps=1000), tmp_path)
    wait_for(lambda: provider.status(job).raw.get("step", 0) >= 2, what="training to start")
    provider.cancel(job)
    status = wait_for(finished(provider, job), what="the cancel")
    assert status.state is JobState.CANCELLED and status.error is None
    checkpoint = runfiles.latest_checkpoint(provider.run_dir(job))
    assert checkpoint is not None
    assert int(checkpoint.name.rpartition("-")[2]) == status.raw["step"] < 5000
    assert any("cancelled" in e.message for e in provider.events(job))
    provider.cancel(job)  # cancelling a finished run is harmless


def test_process_dying_silently_is_reported_failed_with_the_log_line(
    tiny_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\necho 'loading...'\necho 'Killed: out of memory' >&2\nexit 137\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    provider = LocalProvider(python=str(script))
    job = start(provider, config(tiny_dir), tmp_path)
    status = wait_for(finished(provider, job), what="the failure")
    assert status.state is JobState.FAILED and status.raw_state == "failed"
    assert status.error is not None and status.error.endswith("Killed: out of memory")


def test_launcher_wraps_the_trainer_module(tiny_dir: Path, tmp_path: Path) -> None:
    """`launcher` (e.g. "accelerate launch --config_file fsdp.yaml") runs LAUNCHER -m trainer."""
    script = tmp_path / "fake-accelerate"
    script.write_text('#!/bin/sh\necho "launched with: $*"\nexit 3\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    provider = LocalProvider(launcher=f"{script} launch --config_file 'my fsdp.yaml'")
    job = start(provider, config(tiny_dir), tmp_path)
    status = wait_for(finished(provider, job), what="the failure")
    assert status.state is JobState.FAILED
    run_dir = provider.run_dir(job)
    assert status.error is not None and status.error.endswith(
        f"launched with: launch --config_file my fsdp.yaml -m tuneport.providers.local.trainer "
        f"{run_dir}"
    )


def test_unknown_run_and_parent_errors(tiny_dir: Path, tmp_path: Path) -> None:
    provider = LocalProvider()
    with pytest.raises(NotFoundError):
        provider.status(JobRef(provider="local", remote_id="run-nope", run_id="run-nope"))
    with pytest.raises(NotFoundError):
        start(provider, config(tiny_dir, parent="tp-nope"), tmp_path)
    with pytest.raises(ConfigError, match="not a PEFT adapter"):
        start(provider, config(tiny_dir, init_adapter=str(tmp_path)), tmp_path)


def test_importing_the_provider_does_not_import_torch() -> None:
    code = (
        "import sys, tuneport.providers.local.provider, tuneport.cli.app;"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_preflight_reports_every_problem_before_the_estimate(tmp_path: Path) -> None:
    provider = LocalProvider(store=open_store())  # the jobs layer passes its store
    cfg = config(
        tmp_path / "no-model",
        parent="tp-nope",
        chat_template=str(tmp_path / "missing.jinja"),
    )
    with pytest.raises(ConfigError) as caught:
        provider.preflight(
            cfg.model_copy(update={"method": "dpo", "options": {**cfg.options, "packing": True}})
        )
    message = caught.value.message
    assert "no job 'tp-nope'" in message
    assert "missing.jinja not found" in message
    assert "no-model is not a model folder" in message
    assert "packing / padding_free apply to --method sft only" in message


def test_estimate_gives_steps_and_gpu_memory(tiny_dir: Path, tmp_path: Path) -> None:
    from tuneport.jobs.quote import estimate as quote_estimate

    data = tmp_path / "train.jsonl"
    data.write_text("".join(r.model_dump_json() + "\n" for r in records()), encoding="utf-8")
    cfg = config(tiny_dir).model_copy(update={"epochs": 2, "data": data})
    estimate = quote_estimate(cfg)
    assert estimate.provider == "local" and estimate.cost_usd is None
    assert estimate.examples == 3 and estimate.epochs == 2
    assert estimate.steps == 2  # one step of 3 examples per epoch (batch 3, no accumulation)
    assert estimate.tokens > 0 and estimate.exact
    assert estimate.gpu_memory_gib is not None and estimate.gpu_memory_gib > 0
