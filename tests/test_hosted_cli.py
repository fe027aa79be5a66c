"""Together and Fireworks from the command line (`tuneport.cli.main.run`) against the fakes:
train → watch → chat → cleanup, crash and re-run cases, --online, job-file sections, plan.

The CLI reaches the fakes only through documented settings: ``TOGETHER_API_KEY`` /
``TOGETHER_BASE_URL`` and ``FIREWORKS_API_KEY`` / ``FIREWORKS_ACCOUNT_ID`` /
``FIREWORKS_BASE_URL``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fireworks_server import FakeFireworks
from tests.fakes.together_server import FakeTogether
from tuneport.cli.main import run
from tuneport.jobs.store import open_store
from tuneport.paths import home
from tuneport.providers.base import UploadedData
from tuneport.schemas import JobConfig, JobRecord, JobState

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample" / "chat.jsonl"
TG_KEY = "tg-cli-SECRET-0123456789"
FW_KEY = "fw-cli-SECRET-0123456789"
TG_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
FW_MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"


@dataclass
class Hosted:
    name: str
    model: str
    key: str
    fake: Any

    def jobs(self) -> int:
        return len(self.fake.jobs)

    def creates(self) -> int:
        pattern = r"^/v1/fine-tunes$" if self.name == "together" else r"FineTuningJobs$"
        return len(self.fake.calls("POST", pattern))

    def uploads(self) -> int:
        pattern = r"^/_upload/" if self.name == "together" else r":upload$"
        method = "PUT" if self.name == "together" else "POST"
        return len(self.fake.calls(method, pattern))


@pytest.fixture(params=["together", "fireworks"])
def hosted(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hosted]:
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
    if request.param == "together":
        with FakeTogether(api_key=TG_KEY) as tg:
            tg.advance_on_get = True
            monkeypatch.setenv("TOGETHER_API_KEY", TG_KEY)
            monkeypatch.setenv("TOGETHER_BASE_URL", tg.base_url)
            yield Hosted("together", TG_MODEL, TG_KEY, tg)
    else:
        with FakeFireworks(api_key=FW_KEY, account_id="acme") as fw:
            fw.advance_on_get = True
            monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
            monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
            monkeypatch.setenv("FIREWORKS_BASE_URL", fw.base_url)
            yield Hosted("fireworks", FW_MODEL, FW_KEY, fw)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(argv))
    captured = capsys.readouterr()
    assert TG_KEY not in captured.out + captured.err
    assert FW_KEY not in captured.out + captured.err
    return code, captured.out, captured.err


def train(capsys: pytest.CaptureFixture[str], h: Hosted, *extra: str) -> dict[str, Any]:
    code, out, err = cli(
        capsys,
        "train",
        "--provider",
        h.name,
        "--data",
        str(SAMPLE),
        "--model",
        h.model,
        "--yes",
        "--json",
        *extra,
    )
    assert code == 0, err
    record: dict[str, Any] = json.loads(out)
    return record


def test_train_watch_chat_cleanup_end_to_end(
    hosted: Hosted, capsys: pytest.CaptureFixture[str]
) -> None:
    record = train(capsys, hosted, "--suffix", "demo", "--epochs", "2")
    assert record["provider"] == hosted.name and record["state"] == "succeeded"
    tuned = record["tuned_model"]
    assert tuned and record["billed_tokens"]
    assert hosted.jobs() == 1 and hosted.creates() == 1 and hosted.uploads() == 1
    store = open_store()
    assert store.events(record["id"])  # events were stored while watching
    assert hosted.key not in json.dumps(store.get(record["id"]).model_dump(mode="json"))

    code, out, _ = cli(capsys, "jobs", "show", record["id"], "--refresh", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["tuned_model"] == tuned
    if hosted.name == "together":  # checkpoints with the loss logged at their step
        assert shown["checkpoints"][-1]["model"] == tuned
        assert "train_loss" in shown["checkpoints"][0]["metrics"]
    code, out, _ = cli(capsys, "jobs", "list", "--remote", "--provider", hosted.name, "--json")
    assert code == 0 and record["remote_id"] in out

    # chat with the tuned model by job id: not served yet -> exit 4 with what to do
    code, _out, err = cli(capsys, "chat", record["id"], "--message", "hi")
    assert code == 4
    if hosted.name == "together":
        assert "only from a dedicated endpoint" in err and "tg beta endpoints deploy" in err
        hosted.fake.deploy(tuned)  # the user started an endpoint
        code, out, err = cli(capsys, "chat", record["id"], "--message", "hi")
    else:
        assert "only from a deployment" in err and "--set deploy=true" in err
        deploy = ["chat", record["id"], "--message", "hi", "--set", "deploy=true"]
        code, out, err = cli(capsys, *deploy)  # billed by the hour: said, and refused unasked
        assert code == 3 and not hosted.fake.deployments
        assert "starts a Fireworks on-demand deployment" in err and "price per hour" in err
        assert "billed by the hour" in err and "tuneport jobs cleanup" in err
        assert "refusing to start a resource billed by the hour" in err and "--yes" in err
        # eval through the tuned model starts the same deployment: said before it starts
        code, _out, err = cli(
            capsys, "eval", "--data", str(SAMPLE), "-m", record["id"], "--limit", "1",
            "--set", "deploy=true", "--yes",
        )  # fmt: skip
        assert code == 0, err
        assert "starts a Fireworks on-demand deployment" in err
        assert len(hosted.fake.deployments) == 1
        code, out, err = cli(capsys, *deploy, "--yes")  # it runs already: nothing to start
        assert len(hosted.fake.deployments) == 1
        assert "starts a Fireworks" not in err
    assert code == 0, err
    assert "echo[" in out and out.strip().endswith("]: hi")

    converted = home() / "runs" / record["id"]
    assert converted.is_dir()  # the files launch converted for the provider
    code, out, err = cli(capsys, "jobs", "cleanup", record["id"], "--yes", "--json")
    assert code == 0, err
    removed = json.loads(out)["removed"]  # every deletion listed (it once said "nothing")
    training = record["remote_files"]["training"]
    assert f"converted copy {converted}" in removed and not converted.exists()
    if hosted.name == "together":
        assert training not in hosted.fake.files
        assert f"uploaded file {training}" in removed
    else:
        assert not hosted.fake.deployments
        assert training not in hosted.fake.datasets
        assert any(r.startswith("deployment ") for r in removed)
        assert any(r.startswith("dataset ") and training in r for r in removed)
    # the list says so (it once showed a cleaned-up job like any other)
    code, out, err = cli(capsys, "jobs", "list", "--json")
    listed = {j["id"]: j for j in json.loads(out)}
    assert listed[record["id"]]["cleaned_up"] is not None
    code, out, err = cli(capsys, "jobs", "list")
    assert "(cleaned up)" in out


def test_a_second_run_reuses_the_upload_and_makes_its_own_job(
    hosted: Hosted, capsys: pytest.CaptureFixture[str]
) -> None:
    first = train(capsys, hosted)
    again = train(capsys, hosted)  # the same intended run: the job it made, no new one
    assert again["remote_id"] == first["remote_id"] and hosted.jobs() == 1
    second = train(capsys, hosted, "--new-run")  # a deliberate second run
    assert second["remote_files"] == first["remote_files"]
    assert second["remote_id"] != first["remote_id"]
    assert hosted.uploads() == 1 and hosted.jobs() == 2


def test_a_lost_create_reply_still_makes_one_job(
    hosted: Hosted, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = r"^/v1/fine-tunes$" if hosted.name == "together" else r"FineTuningJobs$"
    hosted.fake.drop("POST", pattern)
    record = train(capsys, hosted)
    assert record["state"] == "succeeded"
    assert hosted.jobs() == 1 and hosted.creates() == 1


def _creating_record(tmp_path: Path, h: Hosted, training: str) -> JobRecord:
    now = datetime.now(UTC)
    cfg = JobConfig(provider=h.name, model=h.model, data=SAMPLE)
    return open_store().add(
        JobRecord(
            id="tp-0000cafe",
            run_id="run-cafe",
            provider=h.name,
            model=h.model,
            dataset_sha256=hashlib.sha256(SAMPLE.read_bytes()).hexdigest(),
            config=cfg.model_dump(mode="json"),
            remote_files={"training": training},
            raw_state="creating",
            created_at=now,
            updated_at=now,
        )
    )


@pytest.mark.parametrize("created_remotely", [False, True])
def test_a_crash_between_create_and_record_is_finished_with_one_job(
    hosted: Hosted, tmp_path: Path, capsys: pytest.CaptureFixture[str], created_remotely: bool
) -> None:
    from tuneport.data.records import load_records
    from tuneport.progress import NullProgress
    from tuneport.providers import registry

    cfg = JobConfig(provider=hosted.name, model=hosted.model, data=SAMPLE)
    backend = registry.get(hosted.name)
    prepared = backend.prepare(load_records(SAMPLE), cfg, tmp_path / "run", NullProgress())
    uploaded = backend.upload(prepared, cfg, NullProgress())
    if created_remotely:  # the create reached the server, the process died before recording
        backend.launch(UploadedData(training=uploaded.training), cfg, "run-cafe")
    _creating_record(tmp_path, hosted, uploaded.training)
    code, _out, err = cli(capsys, "jobs", "watch", "tp-0000cafe")
    assert code == 0, err
    assert hosted.jobs() == 1 and hosted.creates() == 1
    final = open_store().get("tp-0000cafe")
    assert final.state is JobState.SUCCEEDED and final.remote_id


def test_validate_reports_the_services_rules_as_file_line(
    hosted: Hosted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
                {"role": "system", "content": "late"},
            ]
        },
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = cli(capsys, "validate", str(bad), "--provider", hosted.name)
    assert code == 1
    assert f"{bad}:1: messages[2] (system)" in out + err
    if hosted.name == "fireworks":  # 2 examples: Fireworks needs 3
        assert "at least 3" in out + err


def test_online_estimate(hosted: Hosted, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["estimate", str(SAMPLE), "--provider", hosted.name, "--model", hosted.model]
    code, out, err = cli(capsys, *argv, "--online", "--json")
    if hosted.name == "fireworks":  # the base model's tokenizer from the Hub: offline here
        assert code == 3 and "HF_HUB_OFFLINE is set" in err
        assert not hosted.fake.requests
        return
    assert code == 0, err
    est = json.loads(out)
    (file_id,) = hosted.fake.files
    assert est["exact"] is True and est["tokens"] == len(hosted.fake.file_bytes[file_id]) // 4
    assert est["token_counter"] == f"Together estimate-price ({TG_MODEL})"
    # Together's own price is information, not a warning
    assert any("Together's own estimate" in n for n in est["notes"])
    assert not any("Together's own estimate" in w for w in est["warnings"])
    assert not hosted.fake.jobs  # estimating creates no job


def test_a_job_file_section_per_backend(
    hosted: Hosted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        f"provider: openai\nmodel: gpt-4.1-mini\ndata: {SAMPLE}\nepochs: 2\nsuffix: filed\n"
        f"together:\n  model: {TG_MODEL}\n  options: {{lora_r: 8, n_checkpoints: 2}}\n"
        f"fireworks:\n  model: {FW_MODEL}\n  options: {{lora_rank: 8}}\n"
    )
    code, _out, err = cli(capsys, "train", str(job), "--provider", hosted.name, "--yes")
    assert code == 0, err
    if hosted.name == "together":
        (call,) = hosted.fake.calls("POST", r"^/v1/fine-tunes$")
        assert call.body["model"] == TG_MODEL and call.body["n_checkpoints"] == 2
        assert call.body["training_type"]["lora_r"] == 8 and call.body["n_epochs"] == 2
    else:
        (call,) = hosted.fake.calls("POST", r"FineTuningJobs$")
        assert call.body["baseModel"] == FW_MODEL and call.body["loraRank"] == 8
        assert call.body["epochs"] == 2


def test_bad_settings_fail_before_anything_is_uploaded(
    hosted: Hosted, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOGETHER_API_KEY" if hosted.name == "together" else "FIREWORKS_API_KEY")
    code, _out, err = cli(
        capsys, "train", "--provider", hosted.name, "--data", str(SAMPLE), "--model",
        hosted.model, "--yes",
    )  # fmt: skip
    assert code == 3
    assert f"{hosted.name.upper()}_API_KEY is not set" in err
    assert not hosted.fake.requests


def test_plan_prices_both_backends(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "plan", str(SAMPLE), "--json")
    assert code == 0
    rows = json.loads(out)
    for name, model in (("together", TG_MODEL), ("fireworks", FW_MODEL)):
        (row,) = [r for r in rows if r["provider"] == name and r["model"] == model]
        assert row["valid"] is True and row["cost_usd"] > 0 and row["unverified"] is True


def test_a_key_given_by_flag_is_used_but_never_stored(
    hosted: Hosted, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOGETHER_API_KEY" if hosted.name == "together" else "FIREWORKS_API_KEY")
    record = train(capsys, hosted, "--set", f"api_key={hosted.key}", "--no-watch")
    assert record["remote_id"] and hosted.jobs() == 1
    db = b"".join(p.read_bytes() for p in open_store().path.parent.glob("jobs*"))
    assert db and hosted.key.encode() not in db
    # later commands rebuild the backend from the store: without the key they say so
    # (hence the README's advice to give keys through the environment)
    code, _out, err = cli(capsys, "jobs", "watch", record["id"])
    assert code == 3 and "_API_KEY is not set" in err
