"""End to end: `tuneport train|jobs|chat` in-process against the fake OpenAI server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run
from tuneport.jobs.store import open_store
from tuneport.paths import home
from tuneport.schemas import JobState

KEY = "sk-test-SECRET123456"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


@pytest.fixture
def sample(fixtures_dir: Path) -> Path:
    return fixtures_dir / "sample" / "chat.jsonl"


def _train(sample: Path, *extra: str) -> int:
    return run(
        ["train", "--provider", "openai", "--data", str(sample), "--model", "gpt-4.1-mini", *extra]
    )


def test_train_watch_success_then_chat_with_the_job(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(sample, "--yes") == 0
    out, err = capsys.readouterr()
    assert "winding down" in err  # the one-line notice
    assert "billed tokens" in err and "estimated cost: $" in err  # the estimate
    (job,) = open_store().list_jobs()
    assert job.state is JobState.SUCCEEDED and job.tuned_model
    assert f"tuned model: {job.tuned_model}" in out
    assert f"trained tokens: {job.billed_tokens:,} (estimated {job.estimate_tokens:,}" in out
    cost = job.billed_tokens * 5.0 / 1e6  # gpt-4.1-mini's price in the table
    assert f"cost: ${cost:,.2f} at $5/1M (estimated ${job.estimate_cost_usd:,.2f})" in out
    assert err.count("winding down") == 1  # the notice once per command
    assert job.remote_id in fake.jobs and len(fake.jobs) == 1
    (upload,) = fake.calls("POST", "/files")
    exported = upload.body["files"]["file"][1].decode().splitlines()
    assert len(exported) == 26 and "messages" in json.loads(exported[0])
    body = fake.calls("POST", "/fine_tuning/jobs")[0].body
    assert body["metadata"] == {"tuneport_run_id": job.run_id}
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {}}}
    assert [e.message for e in open_store().events(job.id)][-1].startswith("The job has")

    assert run(["chat", job.id, "--message", "hi"]) == 0
    out, _ = capsys.readouterr()
    assert out.strip() == f"echo[{job.tuned_model}]: hi"

    assert run(["jobs", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [j["id"] for j in listed] == [job.id]
    assert run(["jobs", "show", job.id, "--json", "--refresh"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "succeeded" and shown["events"] and shown["checkpoints"]
    assert shown["cost_usd"] == round(cost, 6) and shown["estimate_cost_usd"] > 0
    assert run(["jobs", "show", job.id]) == 0
    shown_text = capsys.readouterr().out
    assert job.tuned_model in shown_text and f"${cost:,.2f} at $5/1M" in shown_text

    # the same command again continues that run: no second job, no second upload
    assert _train(sample, "--yes", "--no-watch") == 0
    assert "launched before with the same data and settings" in capsys.readouterr().err
    assert len(fake.calls("POST", "/files")) == 1 and len(fake.jobs) == 1
    # --new-run: a deliberate second job; the identical bytes are not uploaded again
    assert _train(sample, "--yes", "--no-watch", "--new-run") == 0
    assert "reused identical upload" in capsys.readouterr().err
    assert len(fake.calls("POST", "/files")) == 1 and len(fake.jobs) == 2

    second = open_store().list_jobs()[0]
    assert second.remote_files == job.remote_files  # one upload, two jobs
    assert run(["jobs", "cleanup", job.id, "--yes", "--json"]) == 0
    captured = capsys.readouterr()
    file_id = job.remote_files["training"]
    assert json.loads(captured.out) == {
        "id": job.id,
        "cleaned": True,
        "removed": [
            f"uploaded training file {file_id}",
            f"converted copy {home() / 'runs' / job.id}",  # launch's provider-format files
        ],
        "shared_with": {file_id: [second.id]},
    }
    assert f"warning: {file_id} is also the upload of {second.id}" in captured.err
    assert fake.calls("DELETE", f"/files/{file_id}")
    # nothing left: the second cleanup says so instead of pretending
    assert run(["jobs", "cleanup", job.id, "--yes"]) == 0
    assert "nothing left to delete" in capsys.readouterr().out


def test_job_file_and_hyperparameters(
    fake: FakeOpenAI, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_file = fixtures_dir / "jobs" / "openai-sft.yaml"
    assert (
        run(["train", str(job_file), "--yes", "--epochs", "2", "--set", "metadata.team=search"])
        == 0
    )
    body = fake.calls("POST", "/fine_tuning/jobs")[0].body
    assert body["suffix"] == "tuneport-demo" and body["seed"] == 42
    assert body["metadata"]["team"] == "search"
    assert body["method"]["supervised"]["hyperparameters"] == {
        "n_epochs": 2,
        "batch_size": 4,
        "learning_rate_multiplier": 1.0,
    }


def test_dpo_from_the_preference_sample(
    fake: FakeOpenAI, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fixtures_dir / "sample" / "preference.jsonl"
    code = run(
        [
            "train",
            "--provider",
            "openai",
            "--model",
            "gpt-4.1-mini",
            "--data",
            str(data),
            "--method",
            "dpo",
            "--set",
            "beta=0.2",
            "--yes",
            "--no-watch",
        ]
    )
    assert code == 0, capsys.readouterr().err
    body = fake.calls("POST", "/fine_tuning/jobs")[0].body
    assert body["method"] == {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}
    line = json.loads(fake.calls("POST", "/files")[0].body["files"]["file"][1].splitlines()[0])
    assert set(line) >= {"input", "preferred_output", "non_preferred_output"}


def test_non_interactive_without_yes_refuses_after_showing_the_estimate(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(sample) == 3
    err = capsys.readouterr().err
    assert "billed tokens" in err and "error: refusing to launch a paid job" in err
    assert "--yes" in err
    assert not fake.calls("POST", "/files") and not fake.jobs


def test_budget_guard_refuses(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(sample, "--yes", "--max-cost", "0.0001") == 5
    assert "set by --max-cost" in capsys.readouterr().err
    assert not fake.calls("POST", "/files")


def test_invalid_data_is_refused_with_every_problem(
    fake: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    rows = [json.dumps(good)] * 12 + ['{"messages": [{"role": "user", "content": "q"}]}', "{oops"]
    bad.write_text("\n".join(rows) + "\n")
    assert _train(bad, "--yes") == 1
    err = capsys.readouterr().err
    assert f"{bad}:13:" in err and f"{bad}:14" in err
    assert "validation error(s)" in err
    assert not fake.calls("POST", "/files") and not fake.jobs


def test_wrong_option_for_the_provider_lists_allowed_keys(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(sample, "--yes", "--bucket", "gs://b") == 3
    err = capsys.readouterr().err
    assert "unknown option 'bucket' for provider openai" in err and "base_url" in err


def test_config_errors_are_reported_at_once(
    capsys: pytest.CaptureFixture[str], sample: Path
) -> None:
    assert run(["train", "--data", str(sample), "--epochs", "2", "--method", "ppo"]) == 3
    err = capsys.readouterr().err
    assert "provider is required" in err and "model is required" in err and "method" in err


def test_failed_job_exits_1_with_the_provider_message(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.fail_next_job = "Example 4 has no assistant message"
    assert _train(sample, "--yes") == 1
    err = capsys.readouterr().err
    assert "failed at openai: Example 4 has no assistant message" in err
    (job,) = open_store().list_jobs()
    assert job.state is JobState.FAILED and "Example 4" in (job.error or "")


def test_ctrl_c_leaves_the_job_running_and_jobs_watch_resumes(
    fake: FakeOpenAI,
    sample: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    polls = 0

    def sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", sleep)
    assert _train(sample, "--yes") == 130
    (job,) = open_store().list_jobs()
    err = capsys.readouterr().err
    assert f"job {job.id} keeps running" in err and f"tuneport jobs watch {job.id}" in err
    assert not job.state.terminal and fake.jobs[job.remote_id]["status"] != "cancelled"

    monkeypatch.setattr(time, "sleep", lambda s: None)
    assert run(["jobs", "watch", job.id]) == 0
    assert "tuned model: ft:" in capsys.readouterr().out
    assert open_store().get(job.id).state is JobState.SUCCEEDED
    assert len(fake.jobs) == 1


def test_cancel_and_resume_unsupported(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(sample, "--yes", "--no-watch") == 0
    job_id = capsys.readouterr().out.strip()
    assert run(["jobs", "cancel", job_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "cancelled"
    assert run(["jobs", "watch", job_id]) == 1  # cancelled jobs exit 1
    assert "was cancelled" in capsys.readouterr().err
    assert run(["jobs", "resume", job_id]) == 3
    assert "cannot resume" in capsys.readouterr().err


def test_unknown_job_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["jobs", "show", "tp-nope"]) == 4
    assert "jobs list" in capsys.readouterr().err


def test_the_key_never_appears_in_output_or_store(
    fake: FakeOpenAI,
    sample: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "sk-test-SECRET123456-typo"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    assert _train(sample, "--yes", "--set", f"api_key={wrong}") == 4
    out, err = capsys.readouterr()
    assert "OpenAI rejected the API key" in err
    assert fake.requests and fake.requests[0].headers["authorization"].endswith(wrong)
    assert "SECRET123456" not in out + err
    for path in home().rglob("*"):
        if path.is_file():
            assert b"SECRET123456" not in path.read_bytes(), path


def test_small_validation_file_is_uploaded_and_sent(
    fake: FakeOpenAI, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    valid = tmp_path / "valid.jsonl"
    valid.write_text("".join(sample.read_text().splitlines(keepends=True)[:3]))
    assert _train(sample, "--yes", "--no-watch", "--validation", str(valid)) == 0, (
        capsys.readouterr().err
    )
    body = fake.calls("POST", "/fine_tuning/jobs")[0].body
    assert (
        body["validation_file"] in fake.files and body["validation_file"] != body["training_file"]
    )
    assert len(fake.file_bytes[body["validation_file"]].splitlines()) == 3
    (job,) = open_store().list_jobs()
    assert job.remote_files == {
        "training": body["training_file"],
        "validation": body["validation_file"],
    }


def test_dpo_with_chat_data_is_refused_before_upload(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(sample, "--yes", "--method", "dpo") == 2
    assert "needs preference pairs" in capsys.readouterr().err
    assert not fake.calls("POST", "/files")


def test_missing_key_fails_before_the_estimate(
    sample: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert _train(sample, "--yes") == 3
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY is not set" in err and "billed tokens" not in err


def test_every_flag_problem_is_reported_at_once(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(sample, "--epochs", "0", "--batch-size", "-1", "--set", "foo=1") == 3
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 3, errors
    assert "--epochs" in errors[0] and "--batch-size" in errors[1] and "'foo'" in errors[2]
    assert not fake.calls("POST", "/files")


def test_jobs_show_polls_a_running_job_and_cancel_names_it(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobs show` of a job nobody watches shows the provider's current state (the store still
    said 'created'); cancel's hint carries the job id."""
    assert _train(sample, "--yes", "--no-watch") == 0
    job_id = capsys.readouterr().out.strip()
    assert open_store().get(job_id).raw_state == "created"
    assert run(["jobs", "show", job_id]) == 0
    shown = capsys.readouterr().out
    assert "state: queued" in shown and "created" not in shown.split("state:")[1].split("\n")[0]
    assert open_store().get(job_id).raw_state == "queued"  # the poll was stored
    assert run(["jobs", "cancel", job_id]) == 0
    out = capsys.readouterr().out
    assert f"{job_id}: cancelled" in out
    assert run(["jobs", "watch", job_id]) == 1
    assert "launch it again" in capsys.readouterr().err  # OpenAI cannot resume
    # the same train continues the cancelled run: its message names the flag that launches anew
    assert _train(sample, "--yes") == 1
    err = capsys.readouterr().err
    assert f"continuing {job_id}" in err and f"job {job_id} was cancelled" in err
    assert "plus --new-run" in err
    assert len(fake.jobs) == 1


def test_a_model_missing_from_the_price_table_is_launched_with_its_cost_unknown(
    fake: FakeOpenAI, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `estimate` counts a model the table does not list; `train` takes it the same way
    argv = ["train", "-p", "openai", "--data", str(sample), "-m", "gpt-5-mini-2026-08-07"]
    assert run(argv) == 3  # no terminal, no --yes: the refusal comes after the estimate
    err = capsys.readouterr().err
    assert "not in the price table" in err and "estimated cost: unknown" in err
    assert err.index("not in the price table") < err.index("refusing to launch a paid job")
    assert run([*argv, "--yes", "--max-cost", "5"]) == 5  # the limit cannot be checked
    assert "cannot check the limit $5.00 set by --max-cost" in capsys.readouterr().err
    assert not fake.calls("POST", "/files") and not fake.jobs
    assert run([*argv, "--yes"]) == 0
    out, err = capsys.readouterr()
    (job,) = open_store().list_jobs()
    assert job.state is JobState.SUCCEEDED and job.model == "gpt-5-mini-2026-08-07"
    assert f"cost: unknown ({job.billed_tokens:,} billed tokens; " in out
