"""`tuneport train --provider vertex` end to end from the CLI: GCS emulator + fake Vertex server.

The CLI gets the fakes only through documented settings: ``GOOGLE_VERTEX_BASE_URL`` (base URL),
``TUNEPORT_VERTEX_ACCESS_TOKEN`` (an OAuth access token, so no ADC lookup happens) and
``STORAGE_EMULATOR_HOST`` (honoured by google-cloud-storage).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gcs_emulator import gcs_emulator, gcs_env  # noqa: F401
from tests.fakes.vertex_server import (
    BILLABLE_TOKENS,
    DEFAULT_EPOCHS,
    FakeVertex,
    count_words,
    running_fake_vertex,
)
from tuneport.cli.main import run

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("gcs_env")]

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample" / "chat.jsonl"
TOKEN = "ya29.cli-test-token-0123456789"
BUCKET = "tp-bucket"
VERTEX_FLAGS = ["--project", "p", "--location", "us-central1", "--bucket", BUCKET, "--yes"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVertex]:
    with running_fake_vertex() as server:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url)
        monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
        yield server


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(argv))
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    return code, captured.out, captured.err


def train(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[dict[str, Any], str]:
    code, out, err = cli(
        capsys,
        "train",
        "--provider",
        "vertex",
        "--data",
        str(SAMPLE),
        "--model",
        "gemini-2.5-flash",
        *VERTEX_FLAGS,
        "--json",
        *extra,
    )
    assert code == 0, err
    record: dict[str, Any] = json.loads(out)
    return record, err


def _blob_bytes(uri: str) -> bytes:
    from google.cloud import storage

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    data: bytes = storage.Client(project="p").bucket(bucket).blob(name).download_as_bytes()
    return data


def test_train_watch_chat_cleanup_end_to_end(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str]
) -> None:
    record, err = train(capsys)
    assert record["provider"] == "vertex"
    assert record["state"] == "succeeded"
    assert record["tuned_model"].startswith("projects/p/locations/us-central1/endpoints/")
    assert record["billed_tokens"] == BILLABLE_TOKENS * DEFAULT_EPOCHS
    assert f"created bucket gs://{BUCKET} in us-central1" in err

    # What the SDK sent, and what landed in GCS.
    (create,) = fake.calls("POST", r"tuningJobs$")
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    uri = create.body["supervisedTuningSpec"]["trainingDatasetUri"]
    assert uri == record["remote_files"]["training"]
    assert uri.startswith(f"gs://{BUCKET}/tuneport/{record['dataset_sha256']}/")
    rows = [json.loads(line) for line in _blob_bytes(uri).splitlines()]
    assert len(rows) == sum(1 for line in SAMPLE.read_text().splitlines() if line.strip())
    assert rows[0]["contents"][0]["role"] == "user"
    assert "systemInstruction" in rows[0]
    assert create.body["labels"]["tuneport_run_id"] == record["run_id"]

    # Events were stored and the job list shows it.
    code, out, _ = cli(capsys, "jobs", "list", "--json")
    assert code == 0 and record["id"] in out

    # Chat with the tuned endpoint by job id (settings come from the job store) ...
    code, out, err = cli(capsys, "chat", record["id"], "--message", "hi", "--system", "Be brief.")
    assert code == 0, err
    endpoint = record["tuned_model"]
    assert out.strip() == f"[{endpoint.rsplit('/', 1)[-1]}] echo: hi"
    (generate,) = fake.calls("POST", r":generateContent$")
    assert generate.path == f"{endpoint}:generateContent"
    assert generate.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert generate.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    # ... and by endpoint name.
    code, out, err = cli(capsys, "chat", endpoint, "--message", "again", "--set", "project=p")
    assert code == 0, err
    assert out.strip().endswith("echo: again")

    # The money: billable tokens x the estimate's price, next to the estimate.
    code, out, err = cli(capsys, "jobs", "show", record["id"], "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["cost_usd"] == round(record["billed_tokens"] * 5.0 / 1e6, 6)
    assert record["cost_usd"] == shown["cost_usd"]  # train --json carries it too

    # eval prices the tuned endpoint at its base model (gemini-2.5-flash), not "unknown"
    held_out = SAMPLE.parent / "chat.jsonl"
    code, _out, err = cli(
        capsys, "eval", "--data", str(held_out), "-m", record["id"], "--limit", "2", "--yes"
    )
    assert code == 0, err
    assert f"{record['id']}: ≈$" in err and "cost unknown" not in err

    # Cleanup: undeploy, delete endpoint, delete model.
    assert endpoint in fake.endpoints
    code, out, err = cli(capsys, "jobs", "cleanup", record["id"], "--yes")
    assert code == 0, err
    assert f"deleted endpoint {endpoint}" in out
    assert "deleted deleted" not in out and "deleted undeployed" not in out
    assert "deleted deployed model " in out
    assert endpoint not in fake.endpoints
    assert not fake.models
    assert fake.calls("POST", r":undeployModel$")


def test_second_run_reuses_the_identical_upload(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = train(capsys)
    again, err = train(capsys)  # the same command continues the same run
    assert "launched before with the same data and settings" in err
    assert again["id"] == first["id"] and len(fake.jobs) == 1
    second, err = train(capsys, "--new-run")
    assert "reused identical upload" in err
    assert second["remote_files"] == first["remote_files"]
    assert second["id"] != first["id"]
    assert len(fake.jobs) == 2


def test_failed_job_exits_1_with_the_server_reason(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.outcome = "fail"
    code, _out, err = cli(
        capsys,
        "train",
        "--provider",
        "vertex",
        "--data",
        str(SAMPLE),
        "--model",
        "gemini-2.5-flash",
        *VERTEX_FLAGS,
    )
    assert code == 1
    assert "contents must end with model" in err


def test_openai_job_file_switches_with_provider_flag(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str]
) -> None:
    job = ROOT / "fixtures" / "jobs" / "openai-sft.yaml"
    code, _out, err = cli(
        capsys,
        "train",
        str(job),
        "--provider",
        "vertex",
        *VERTEX_FLAGS,
    )
    assert code == 0, err
    assert err.count("--batch-size is ignored by Vertex AI (Gemini): ") == 1
    assert err.count("--seed is ignored by Vertex AI (Gemini): ") == 1
    assert "JOB_STATE_" not in err  # the watch shows tuneport's state words
    (create,) = fake.calls("POST", r"tuningJobs$")
    assert create.body["baseModel"] == "gemini-2.5-flash"
    assert create.body["tunedModelDisplayName"] == "tuneport-demo"  # the job file's suffix
    assert create.body["supervisedTuningSpec"]["hyperParameters"] == {
        "epochCount": 3,
        "learningRateMultiplier": 1.0,
    }


def test_openai_model_is_refused_before_anything_is_uploaded(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(
        capsys,
        "train",
        "--provider",
        "vertex",
        "--data",
        str(SAMPLE),
        "--model",
        "gpt-4.1-mini",
        *VERTEX_FLAGS,
    )
    assert code == 3
    assert "model 'gpt-4.1-mini' belongs to the openai provider, not to Vertex AI" in err
    assert "--model gemini-2.5-flash" in err
    assert not fake.requests


def test_missing_bucket_is_one_line(fake: FakeVertex, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = cli(
        capsys,
        "train",
        "--provider",
        "vertex",
        "--data",
        str(SAMPLE),
        "--model",
        "gemini-2.5-flash",
        "--project",
        "p",
    )  # no --yes: the bucket is checked before the confirmation prompt
    assert code == 3
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "no bucket is set" in line and "--bucket" in line
    assert not fake.requests


def test_estimate_online_counts_with_vertex_count_tokens(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    code, out, err = cli(
        capsys,
        "estimate",
        str(SAMPLE),
        "--provider",
        "vertex",
        "--model",
        "gemini-2.5-flash",
        "--online",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    calls = fake.calls("POST", r":countTokens$")
    assert len(calls) == doc["examples"]  # one request per record, counted once
    assert doc["exact"] is True
    assert doc["tokens"] == sum(count_words(c.body) for c in calls)
    assert doc["token_counter"] == "Vertex countTokens (gemini-2.5-flash)"
    assert all(c.path.startswith("projects/p/locations/us-central1/") for c in calls)


def test_preference_tuning_end_to_end(fake: FakeVertex, capsys: pytest.CaptureFixture[str]) -> None:
    record, _err = train(
        capsys,
        "--data",
        str(SAMPLE.with_name("preference.jsonl")),
        "--method",
        "dpo",
        "--set",
        "beta=0.1",
    )
    assert record["state"] == "succeeded"
    (create,) = fake.calls("POST", r"tuningJobs$")
    spec = create.body["preferenceOptimizationSpec"]
    assert spec["hyperParameters"] == {"beta": 0.1}
    rows = [json.loads(line) for line in _blob_bytes(spec["trainingDatasetUri"]).splitlines()]
    assert [c["score"] for c in rows[0]["completions"]] == [1, 0]
    assert rows[0]["contents"][-1]["role"] == "user"


def test_set_access_token_without_the_env_watches_with_that_token(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token given with --set is never stored; train watches with the backend it launched
    with instead of one rebuilt from the store (which exited 3 after launching)."""
    monkeypatch.delenv("TUNEPORT_VERTEX_ACCESS_TOKEN")
    record, _ = train(capsys, "--set", f"access_token={TOKEN}")
    assert record["state"] == "succeeded"
    assert TOKEN not in json.dumps(record)


def test_unpriced_hosted_model_reports_the_cost_unknown_not_own_hardware(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str]
) -> None:
    # gemini-3.5-flash is tunable and listed without a price: charged, at a cost tuneport
    # cannot know (it once ended with "GPU time: — (no provider charge)")
    code, out, err = cli(
        capsys,
        "train",
        "--provider",
        "vertex",
        "--data",
        str(SAMPLE),
        "--model",
        "gemini-3.5-flash",
        *VERTEX_FLAGS,
    )
    assert code == 0, err
    assert "no provider charge" not in out + err and "GPU time" not in out
    billed = BILLABLE_TOKENS * DEFAULT_EPOCHS
    assert f"cost: unknown ({billed:,} billed tokens; " in out
    code, out, err = cli(capsys, "jobs", "list", "--json")
    job_id = json.loads(out)[0]["id"]
    code, out, err = cli(capsys, "jobs", "show", job_id, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["own_hardware"] is False and shown["cost_usd"] is None
    assert shown["billed_tokens"] == billed and "gemini-3.5-flash" in shown["cost_unknown"]
    code, out, err = cli(capsys, "jobs", "show", job_id)
    assert code == 0, err
    assert f"cost: unknown ({billed:,} billed tokens; " in out and "provider charge" not in out


def test_chat_after_cleanup_says_the_job_was_cleaned_up(
    fake: FakeVertex, capsys: pytest.CaptureFixture[str]
) -> None:
    record, _err = train(capsys)
    code, _out, err = cli(capsys, "jobs", "cleanup", record["id"], "--yes")
    assert code == 0, err
    # it once said "not found ... --set location=(see `tuneport jobs list`)": the store knows
    endpoint = record["tuned_model"]
    for target in (record["id"], endpoint):
        code, _out, err = cli(capsys, "chat", target, "--message", "hi", "--set", "project=p")
        assert code == 4
        assert f"error: job {record['id']} was cleaned up on " in err
        assert f"endpoint {endpoint}" in err and "deleted deleted" not in err
        assert "--new-run" in err and "=(" not in err
    code, out, _err = cli(capsys, "jobs", "show", record["id"])
    assert "cleaned up by `tuneport jobs cleanup`" in out  # the store keeps it as an event
