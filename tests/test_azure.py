"""Azure OpenAI (`--provider azure`) from the command line against the fake resource
(tests/fakes/azure_server.py): validate → estimate → plan → train → watch → chat through a
deployment → cleanup, the training tier, files waited on until processed, pause / resume, the
hourly consent before a deployment, Entra ID without azure-identity, preflight and doctor.

The CLI reaches the fake only through documented settings: AZURE_OPENAI_API_KEY,
AZURE_OPENAI_ENDPOINT, AZURE_SUBSCRIPTION_ID / AZURE_RESOURCE_GROUP / AZURE_OPENAI_ACCOUNT,
AZURE_MANAGEMENT_TOKEN and AZURE_MANAGEMENT_URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.azure_server import FakeAzure, serving_azure
from tuneport.cli.main import run
from tuneport.jobs.store import open_store

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample" / "chat.jsonl"
KEY = "az-cli-SECRET-0123456789abcdef"
ARM = "arm-SECRET-TOKEN-0123456789"
TRAIN = ["train", "--provider", "azure", "--data", str(SAMPLE), "--model", "gpt-4.1-mini"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    from tuneport.retry import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, n, rng=None: 0.0)
    with serving_azure(monkeypatch, KEY, arm_token=ARM) as server:
        yield server


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(argv))
    captured = capsys.readouterr()
    for secret in (KEY, ARM):
        assert secret not in captured.out + captured.err
    return code, captured.out, captured.err


def train(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code, out, err = cli(capsys, *TRAIN, "--yes", "--json", *extra)
    assert code == 0, err
    record: dict[str, Any] = json.loads(out)
    return record


def test_validate_estimate_plan_train_watch_chat_cleanup(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys, "validate", str(SAMPLE), "--provider", "azure")
    assert code == 0, err
    code, out, err = cli(
        capsys, "estimate", str(SAMPLE), "--provider", "azure", "--model", "gpt-4.1-mini",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    est = json.loads(out)
    assert est["cost_usd"] is None and est["billed_tokens"] > 0  # rates unknown: never $0
    code, out, err = cli(capsys, "plan", str(SAMPLE), "--provider", "azure", "--json")
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(out) if r["provider"] == "azure"}
    assert {"gpt-4.1-mini", "gpt-4.1-mini@Standard", "gpt-4.1-mini@Developer"} <= set(rows)
    assert all(r["valid"] and r["cost_usd"] is None for r in rows.values())

    record = train(capsys, "--suffix", "demo", "--epochs", "2")
    assert record["provider"] == "azure" and record["state"] == "succeeded"
    tuned = record["tuned_model"]
    assert tuned.startswith("gpt-4.1-mini-2025-04-14.ft-")
    (create,) = fake.calls("POST", "/fine_tuning/jobs")
    assert create.body["trainingType"] == "GlobalStandard"  # the default tier, in the body
    assert create.body["model"] == "gpt-4.1-mini-2025-04-14"  # the dated id Azure tunes
    assert create.body["suffix"] == "demo"
    assert len(fake.calls("POST", "/files")) == 1 and len(fake.jobs) == 1
    # the create came after the file was seen processed
    order = [(r.method, r.path) for r in fake.requests]
    file_id = record["remote_files"]["training"]
    assert order.index(("GET", f"/files/{file_id}")) < order.index(create_key(create))
    assert open_store().events(record["id"])

    # chat: a tuned model needs a deployment; none yet and deploy not asked -> one line
    code, _out, err = cli(capsys, "chat", record["id"], "--message", "hi")
    assert code == 3 and "no deployment yet" in err and "--set deploy=true" in err
    # asked, but no consent in a non-interactive session: the price is shown, nothing created
    code, _out, err = cli(capsys, "chat", record["id"], "--message", "hi", "--set", "deploy=true")
    assert code == 3 and "$1.70 per hour" in err and "15 days" in err and "--yes" in err
    assert not fake.arm_calls("PUT")
    code, out, err = cli(
        capsys, "chat", record["id"], "--message", "hi", "--set", "deploy=true", "--yes"
    )
    assert code == 0, err
    assert out.strip().startswith("echo[tp-") and out.strip().endswith("]: hi")
    (put,) = fake.arm_calls("PUT")
    assert put.query["api-version"] == ["2024-10-01"]
    assert put.headers["authorization"] == f"Bearer {ARM}"
    assert put.body["properties"]["model"] == {"format": "OpenAI", "name": tuned, "version": "1"}
    assert put.body["sku"]["name"] == "GlobalStandard"
    # again: the deployment is found, not created twice, and nothing is asked
    code, out, err = cli(capsys, "chat", record["id"], "--message", "again")
    assert code == 0, err and "again" in out
    assert len(fake.arm_calls("PUT")) == 1

    code, out, err = cli(capsys, "jobs", "cleanup", record["id"], "--yes")
    assert code == 0, err
    assert not fake.deployments and file_id not in fake.files
    assert "deleted deployment tp-" in out and f"deleted uploaded training file {file_id}" in out


def create_key(request: Any) -> tuple[str, str]:
    return (request.method, request.path)


@pytest.mark.parametrize(
    ("extra", "tier"),
    [
        (["--set", "training_type=Developer"], "Developer"),
        (["--set", "training_type=standard"], "Standard"),
        (["--model", "gpt-4.1-mini@Developer"], "Developer"),  # as `plan` names it
    ],
)
def test_the_training_tier_is_sent_as_azure_expects(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str], extra: list[str], tier: str
) -> None:
    train(capsys, "--no-watch", *extra)
    (create,) = fake.calls("POST", "/fine_tuning/jobs")
    assert create.body["trainingType"] == tier
    assert create.body["model"] == "gpt-4.1-mini-2025-04-14"


def test_an_unknown_tier_is_one_line_before_anything_is_uploaded(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys, *TRAIN, "--yes", "--set", "training_type=Premium")
    assert code == 3 and "training_type" in err and "GlobalStandard" in err
    assert not fake.requests


def pause_a_running_job(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """A job launched without watching, running, then `tuneport jobs pause`d: (record, the
    fake's job, out, err of the pause)."""
    record = train(capsys, "--no-watch")
    job = fake.jobs[record["remote_id"]]
    job["status"] = "running"
    fake._steps[job["id"]] = 1
    code, out, err = cli(capsys, "jobs", "pause", record["id"])
    assert code == 0, err
    return record, job, out, err


def test_statuses_pause_and_resume(fake: FakeAzure, capsys: pytest.CaptureFixture[str]) -> None:
    record, job, out, err = pause_a_running_job(fake, capsys)
    assert job["status"] == "paused" and "queued" in out and "paused" in out
    assert "tuneport jobs resume" in err
    code, _out, err = cli(capsys, "jobs", "resume", record["id"], "--no-watch")
    assert code == 0, err
    assert len(fake.calls("POST", f"/fine_tuning/jobs/{job['id']}/resume")) == 1
    assert job["status"] == "running"
    code, out, err = cli(capsys, "jobs", "watch", record["id"])
    assert code == 0, err
    assert open_store().get(record["id"]).tuned_model


def test_watch_stops_at_a_paused_job_and_says_how_to_resume_it(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paused job never moves on its own: watching it must not poll forever (before the fix
    it did, until Ctrl-C: exit 130)."""
    import types

    import tuneport.jobs.watch as watch_module

    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) > 20:  # still polling a job that cannot move: as if Ctrl-C was pressed
            raise KeyboardInterrupt

    monkeypatch.setattr(watch_module, "time", types.SimpleNamespace(sleep=sleep, monotonic=float))
    record, _job, _out, _err = pause_a_running_job(fake, capsys)
    code, _out, err = cli(capsys, "jobs", "watch", record["id"])
    assert code == 1, err
    last = err.strip().splitlines()[-1]  # one line: what, and the fix
    assert last.startswith(f"error: job {record['id']} is paused")
    assert f"tuneport jobs resume {record['id']}" in last
    assert open_store().get(record["id"]).raw_state == "paused"
    # resumed, the same watch goes on to the end
    code, _out, err = cli(capsys, "jobs", "resume", record["id"])
    assert code == 0, err
    assert open_store().get(record["id"]).tuned_model


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("pending", "queued"),
        ("running", "running"),
        ("pausing", "running"),
        ("paused", "queued"),
        ("resuming", "queued"),
        ("succeeded", "succeeded"),
        ("cancelled", "cancelled"),
        ("failed", "failed"),
    ],
)
def test_azure_statuses_are_mapped(raw: str, state: str) -> None:
    from tuneport.providers.azure.service import STATES

    assert STATES[raw].value == state


def test_pause_is_refused_by_a_backend_without_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.openai_server import serving_openai

    with serving_openai(monkeypatch, "sk-PAUSE-0123456789", poll_now=True):
        code, out, err = cli(
            capsys, "train", "--provider", "openai", "--data", str(SAMPLE), "--model",
            "gpt-4.1-mini", "--yes", "--json", "--no-watch",
        )  # fmt: skip
        assert code == 0, err
        job_id = json.loads(out)["id"]
        code, _out, err = cli(capsys, "jobs", "pause", job_id)
    assert code == 3 and "cannot pause jobs" in err


def test_a_file_azure_cannot_process_stops_before_the_create(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fake._create_file

    def broken(body: dict[str, Any]) -> dict[str, Any]:
        made = real(body)
        made["status"] = "error"
        made["status_details"] = "line 3: invalid JSON"
        return made

    monkeypatch.setattr(fake, "_create_file", broken)
    code, _out, err = cli(capsys, *TRAIN, "--yes")
    assert code == 2 and "could not process" in err and "line 3" in err
    assert not fake.calls("POST", "/fine_tuning/jobs")


def test_entra_id_without_azure_identity_is_one_line(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        import azure.identity  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("azure-identity is installed here (tuneport does not depend on it)")
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    code, _out, err = cli(capsys, *TRAIN, "--yes")
    assert code == 3 and "pip install azure-identity" in err
    assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1
    assert not fake.requests


def test_missing_endpoint_and_wrong_key(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT")
    code, _out, err = cli(capsys, *TRAIN, "--yes")
    assert code == 3 and "AZURE_OPENAI_ENDPOINT is not set" in err
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "RESOURCE.openai.azure.com")  # no scheme
    code, _out, err = cli(capsys, *TRAIN, "--yes")
    assert code == 3 and "AZURE_OPENAI_ENDPOINT 'RESOURCE.openai.azure.com' is not an" in err
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.endpoint + "/openai/v1/")  # tolerated
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-WRONG-0123456789")
    code, _out, err = cli(capsys, *TRAIN, "--yes")
    assert code == 4 and "rejected the credentials" in err and "AZURE_OPENAI_API_KEY" in err
    assert not fake.jobs


def test_a_suffix_azure_refuses_is_caught_first(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys, *TRAIN, "--yes", "--suffix", "has space")
    assert code == 3 and "suffix" in err
    code, _out, err = cli(capsys, *TRAIN, "--yes", "--suffix", "x" * 41)
    assert code == 3 and "1..40" in err
    assert not fake.requests


def test_doctor(fake: FakeAzure, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "doctor", "--provider", "azure", "--json")
    (azure,) = [b for b in json.loads(out)["backends"] if b["name"] == "azure"]
    checks = {c["name"]: c for c in azure["checks"]}
    assert checks["endpoint"]["status"] == "ok"
    assert checks["server"]["status"] == "ok"
    assert checks["deployments"]["status"] == "ok"
    assert code == 0, err


def test_job_file_section(fake: FakeAzure, capsys: pytest.CaptureFixture[str]) -> None:
    job = ROOT / "fixtures" / "jobs" / "openai-sft.yaml"
    code, _out, err = cli(capsys, "train", str(job), "--provider", "azure", "--yes", "--no-watch")
    assert code == 0, err
    (create,) = fake.calls("POST", "/fine_tuning/jobs")
    assert create.body["trainingType"] == "Developer" and create.body["seed"] == 42


def test_one_intended_run_is_one_job_when_the_server_errs_after_creating(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 500 after the service stored the job: the SDK's own retries are off (it would create a
    second job), tuneport looks the run up before it sends the create again."""
    from tuneport.providers.azure.provider import AzureProvider

    assert AzureProvider(api_key="k", endpoint=fake.endpoint).client.max_retries == 0
    fake.fail("POST", "/fine_tuning/jobs", 500, after=True)  # carried out, then 500
    record = train(capsys)
    assert record["state"] == "succeeded"
    assert len(fake.jobs) == 1 and len(fake.calls("POST", "/fine_tuning/jobs")) == 1


def test_cancel_does_not_offer_resume_and_a_refused_management_token_is_one_line(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    record = train(capsys)
    code, _out, err = cli(capsys, "jobs", "cancel", record["id"])
    assert code == 0 and "jobs resume" not in err  # Azure resumes paused jobs, not cancelled
    monkeypatch.setenv("AZURE_MANAGEMENT_TOKEN", "arm-EXPIRED-0123456789")
    code, _out, err = cli(
        capsys, "chat", record["id"], "--message", "hi", "--set", "deploy=true", "--yes"
    )
    assert code == 4 and "Azure management refused" in err and "401" in err
    assert "arm-EXPIRED-0123456789" not in err and not fake.deployments


def test_the_estimate_prices_the_tier_of_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[providers.azure.models."gpt-4.1-mini".sft]\ntraining_per_million = 2.0\n'
        '[providers.azure.models."gpt-4.1-mini@Developer".sft]\ntraining_per_million = 1.0\n'
    )
    base = ["estimate", str(SAMPLE), "--provider", "azure", "--model", "gpt-4.1-mini"]
    base += ["--prices", str(prices), "--json"]
    code, out, err = cli(capsys, *base)
    assert code == 0, err
    assert json.loads(out)["price_per_million_usd"] == 2.0  # Global Standard, the default
    code, out, err = cli(capsys, *base, "--set", "training_type=developer")
    assert code == 0, err
    developer = json.loads(out)
    assert developer["price_per_million_usd"] == 1.0
    assert developer["cost_usd"] == pytest.approx(developer["billed_tokens"] / 1e6)


def test_a_developer_tier_deployment_says_it_is_deleted_after_24_hours(
    fake: FakeAzure, capsys: pytest.CaptureFixture[str]
) -> None:
    record = train(capsys, "--set", "training_type=Developer")
    chat = ["chat", record["id"], "--message", "hi", "--set", "deploy=true"]
    code, _out, err = cli(capsys, *chat)
    assert code == 3 and "no hosting fee" in err and "24 hours" in err and "$1.70" not in err
    code, _out, err = cli(capsys, *chat, "--yes")
    assert code == 0, err
    (put,) = fake.arm_calls("PUT")
    assert put.body["sku"]["name"] == "developertier"  # the job's tier, from its stored settings
