"""The Fireworks backend driving the real ``fireworks-ai`` SDK against
tests/fakes/fireworks_server.py: content-named datasets, run-named jobs, deployments for chat,
request bodies checked against the SDK's own types."""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ConfigDict

from tests.fakes.fireworks_server import FakeFireworks
from tests.hosted_helpers import Clock, Recorder, prepared, strict
from tuneport.errors import AuthError, ConfigError, NotFoundError, ProviderError, QuotaError
from tuneport.providers import registry
from tuneport.providers.base import ChatOptions, PreparedData, Provider, UploadedData
from tuneport.providers.fireworks import BACKEND
from tuneport.providers.fireworks.errors import map_error
from tuneport.providers.fireworks.ids import dataset_id, deployment_id, job_id, output_model_id
from tuneport.providers.fireworks.jobs import STATES
from tuneport.providers.fireworks.provider import FireworksProvider
from tuneport.schemas import JobConfig, JobRef, JobState, Message

KEY = "fw-test-SECRET-0123456789"
ACCOUNT = "acme"
MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFireworks]:
    with FakeFireworks(api_key=KEY, account_id=ACCOUNT) as server:
        monkeypatch.setenv("FIREWORKS_API_KEY", KEY)
        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", ACCOUNT)
        monkeypatch.setenv("FIREWORKS_BASE_URL", server.base_url)
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(fake: FakeFireworks, clock: Clock) -> FireworksProvider:
    return FireworksProvider(sleep=clock.sleep, clock=clock)


def _cfg(tmp_path: Path, **kw: Any) -> JobConfig:
    return JobConfig(provider="fireworks", model=MODEL, data=tmp_path / "data.jsonl", **kw)


def _prepared(
    tmp_path: Path, rows: int = 5, name: str = "train.jsonl", dpo: bool = False
) -> PreparedData:
    return prepared(tmp_path, rows, name, dpo)


def _launched(
    provider: FireworksProvider, tmp_path: Path, run_id: str = "run-1", **kw: Any
) -> tuple[UploadedData, JobRef]:
    cfg = _cfg(tmp_path, **kw)
    uploaded = provider.upload(_prepared(tmp_path, dpo=cfg.method == "dpo"), cfg, Recorder())
    return uploaded, provider.launch(uploaded, cfg, run_id)


# --- registry, settings ------------------------------------------------------------------------


def test_registry_builds_the_backend_and_it_satisfies_the_protocol(fake: FakeFireworks) -> None:
    backend = registry.get("fireworks", {"account_id": ACCOUNT})
    assert isinstance(backend, Provider)
    assert registry.backend("fireworks") is BACKEND
    assert registry.provider_for_model("accounts/acme/models/my-tune") == "fireworks"


def test_a_missing_sdk_is_one_error_naming_the_extra(
    fake: FakeFireworks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fireworks", None)
    with pytest.raises(ConfigError) as info:
        _ = FireworksProvider().client
    assert "pip install 'tuneport[fireworks]'" in info.value.one_line()


def test_preflight_lists_every_problem_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = FireworksProvider(early_stop=True)
    cfg = JobConfig(
        provider="fireworks",
        model="llama-v3p1-8b-instruct",
        data=tmp_path / "d.jsonl",
        method="dpo",
        validation=tmp_path / "v.jsonl",
    )
    with pytest.raises(ConfigError) as info:
        backend.preflight(cfg)
    text = info.value.one_line()
    for part in (
        "FIREWORKS_API_KEY is not set",
        "FIREWORKS_ACCOUNT_ID is not set",
        "is not a Fireworks model name",
        "accounts/fireworks/models/llama-v3p1-8b-instruct",
        "early_stop applies to --method sft only",
        "Fireworks DPO jobs take no validation file",
    ):
        assert part in text
    with pytest.raises(ConfigError) as info:
        FireworksProvider(dpo_beta=0.1, api_key="k", account_id="a").preflight(_cfg(tmp_path))
    assert "dpo_beta applies to --method dpo only" in info.value.one_line()
    with pytest.raises(ConfigError) as info:
        FireworksProvider(dpo_beta=0.7)
    assert "dpo_beta" in info.value.one_line()  # DpoConfig: 0 < beta < 0.5


def test_a_bad_key_is_an_auth_error_that_never_shows_the_key(
    fake: FakeFireworks, tmp_path: Path
) -> None:
    wrong = "fw-wrong-key-987654321"
    backend = FireworksProvider(api_key=wrong, sleep=lambda _s: None)
    with pytest.raises(AuthError) as info:
        backend.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    assert "Fireworks rejected the API key" in info.value.one_line()
    assert wrong not in info.value.one_line()


# --- ids ---------------------------------------------------------------------------------------


def test_ids_are_derived_and_valid_resource_ids(tmp_path: Path) -> None:
    pattern = r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
    import re

    ids = [
        dataset_id("ab" * 32),
        job_id("run-x"),
        deployment_id("accounts/a/models/m"),
        output_model_id(_cfg(tmp_path, suffix="Demo Run!"), "run-x"),
        output_model_id(_cfg(tmp_path, suffix="2024 q3 " * 12), "run-x"),
        output_model_id(_cfg(tmp_path), "run-x"),
    ]
    assert all(re.fullmatch(pattern, i) for i in ids), ids
    assert ids[3].startswith("demo-run-") and ids[4].startswith("m-2024-q3-")
    assert ids[5] == job_id("run-x")
    assert job_id("run-x") == job_id("run-x") != job_id("run-y")


# --- upload ------------------------------------------------------------------------------------


def test_upload_names_the_dataset_by_content_and_never_sends_it_twice(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path
) -> None:
    prepared = _prepared(tmp_path)
    first = provider.upload(prepared, _cfg(tmp_path), Recorder())
    assert first.training == f"accounts/{ACCOUNT}/datasets/{dataset_id(prepared.sha256)}"
    assert not first.reused
    (create,) = fake.calls("POST", r"/datasets$")
    assert create.body["datasetId"] == dataset_id(prepared.sha256)
    assert create.body["dataset"]["exampleCount"] == "5"
    assert create.body["dataset"]["userUploaded"] == {}
    (upload,) = fake.calls("POST", r":upload$")
    assert upload.body["files"]["file"][1] == prepared.training.read_bytes()
    progress = Recorder()
    again = FireworksProvider(sleep=lambda _s: None).upload(prepared, _cfg(tmp_path), progress)
    assert again.training == first.training and again.reused
    assert any("identical bytes already uploaded" in n for n in progress.notes)
    assert len(fake.calls("POST", r":upload$")) == 1


@pytest.mark.parametrize("fault", ["drop", "crash-before-bytes"])
def test_an_interrupted_upload_ends_with_one_dataset_holding_the_bytes(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path, fault: str
) -> None:
    prepared = _prepared(tmp_path)
    if fault == "drop":  # the dataset was created, the reply was lost
        fake.drop("POST", r"/datasets$")
    else:  # an earlier process created the dataset and died before sending the bytes
        FireworksProvider().client.datasets.create(
            dataset_id=dataset_id(prepared.sha256), dataset={"user_uploaded": {}}
        )
    uploaded = provider.upload(prepared, _cfg(tmp_path), Recorder())
    assert list(fake.datasets) == [uploaded.training]
    assert fake.datasets[uploaded.training]["state"] == "READY"
    assert len(fake.calls("POST", r":upload$")) == 1


def test_large_files_go_through_a_signed_url_without_the_key(
    fake: FakeFireworks, clock: Clock, tmp_path: Path
) -> None:
    backend = FireworksProvider(direct_upload_max=10, sleep=clock.sleep, clock=clock)
    prepared = _prepared(tmp_path)
    uploaded = backend.upload(prepared, _cfg(tmp_path), Recorder())
    assert not fake.calls("POST", r":upload$")
    (endpoint,) = fake.calls("POST", r":getUploadEndpoint$")
    assert endpoint.body["filenameToSize"] == {"train.jsonl": str(prepared.training.stat().st_size)}
    (put,) = fake.calls("PUT", r"^/_signed/")
    assert "authorization" not in put.headers
    assert put.body == prepared.training.read_bytes()
    assert fake.calls("POST", r":validateUpload$")
    assert fake.datasets[uploaded.training]["state"] == "READY"


def test_a_dataset_fireworks_refuses_is_a_provider_error(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path
) -> None:
    with pytest.raises(ProviderError) as info:
        provider.upload(_prepared(tmp_path, rows=2), _cfg(tmp_path), Recorder())
    assert "Fireworks refused train.jsonl: dataset has 2 examples" in info.value.one_line()


# --- jobs --------------------------------------------------------------------------------------


def test_sft_arguments_and_body_match_the_sdk_types(
    fake: FakeFireworks, tmp_path: Path, clock: Clock
) -> None:
    from fireworks.types import SupervisedFineTuningJob
    from fireworks.types.supervised_fine_tuning_job_create_params import (
        SupervisedFineTuningJobCreateParams,
    )

    class StrictJob(SupervisedFineTuningJob):
        model_config = ConfigDict(extra="forbid")

    provider = FireworksProvider(
        lora_rank=16, max_context_length=16384, early_stop=True, sleep=clock.sleep, clock=clock
    )
    cfg = _cfg(tmp_path, epochs=3, batch_size=8, suffix="demo", learning_rate_multiplier=0.5)
    prepared = _prepared(tmp_path)
    valid = _prepared(tmp_path, rows=4, name="valid.jsonl")
    prepared = prepared.model_copy(
        update={"validation": valid.training, "validation_sha256": valid.sha256}
    )
    uploaded = provider.upload(prepared, cfg, Recorder())
    kwargs = provider.job_kwargs(uploaded, cfg, "run-contract")
    strict(SupervisedFineTuningJobCreateParams).validate_python(kwargs)
    ref = provider.launch(uploaded, cfg, "run-contract")

    (call,) = fake.calls("POST", r"/supervisedFineTuningJobs$")
    assert call.query["supervisedFineTuningJobId"] == [job_id("run-contract")]
    job = StrictJob.model_validate(call.body)  # wire names are the SDK's aliases
    assert job.base_model == MODEL and job.dataset == uploaded.training
    assert job.evaluation_dataset == uploaded.validation
    assert job.epochs == 3 and job.batch_size_samples == 8 and job.lora_rank == 16
    assert job.learning_rate == pytest.approx(5e-5)  # 0.5 x the documented 1e-4
    assert job.max_context_length == 16384 and job.early_stop is True
    assert job.output_model == output_model_id(cfg, "run-contract")
    assert ref.remote_id == f"accounts/{ACCOUNT}/supervisedFineTuningJobs/{job_id('run-contract')}"


def test_dpo_arguments_match_the_sdk_types(
    fake: FakeFireworks, tmp_path: Path, clock: Clock
) -> None:
    from fireworks.types.dpo_job_create_params import DpoJobCreateParams
    from fireworks.types.shared_params.reinforcement_learning_loss_config import (
        ReinforcementLearningLossConfig,
    )
    from fireworks.types.shared_params.training_config import TrainingConfig

    provider = FireworksProvider(dpo_beta=0.1, sleep=clock.sleep, clock=clock)
    cfg = _cfg(tmp_path, method="dpo", epochs=2)
    uploaded = provider.upload(_prepared(tmp_path, dpo=True), cfg, Recorder())
    kwargs = provider.job_kwargs(uploaded, cfg, "run-dpo")
    strict(DpoJobCreateParams).validate_python(kwargs)
    strict(TrainingConfig).validate_python(kwargs["training_config"])
    strict(ReinforcementLearningLossConfig).validate_python(kwargs["loss_config"])
    assert kwargs["loss_config"] == {"method": "DPO", "dpo": {"beta": 0.1}}
    ref = provider.launch(uploaded, cfg, "run-dpo")
    (call,) = fake.calls("POST", r"/dpoJobs$")
    assert call.body["trainingConfig"]["baseModel"] == MODEL
    assert call.body["trainingConfig"]["epochs"] == 2
    assert call.body["lossConfig"] == {"method": "DPO", "dpo": {"beta": 0.1}}
    assert "format" not in fake.datasets[uploaded.training] or (
        fake.datasets[uploaded.training]["format"] != "CHAT"
    )
    fake.advance(3)
    status = provider.status(ref)
    assert status.state is JobState.SUCCEEDED
    assert status.tuned_model == f"accounts/{ACCOUNT}/models/{job_id('run-dpo')}"


@pytest.mark.parametrize("fault", ["drop", "garble", "500", "stale-404"])
def test_a_create_whose_outcome_is_unknown_makes_one_job(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path, fault: str
) -> None:
    cfg = _cfg(tmp_path)
    uploaded = provider.upload(_prepared(tmp_path), cfg, Recorder())
    name = f"accounts/{ACCOUNT}/supervisedFineTuningJobs/{job_id('run-lost')}"
    if fault == "drop":
        fake.drop("POST", r"/supervisedFineTuningJobs$")
    elif fault == "garble":
        fake.garble("POST", r"/supervisedFineTuningJobs$")
    elif fault == "500":
        fake.fail("POST", r"/supervisedFineTuningJobs$", 500)
    else:  # the job exists, but the lookup before create misses it: create answers 409
        provider.launch(uploaded, cfg, "run-lost")
        fake.fail("GET", rf"/supervisedFineTuningJobs/{job_id('run-lost')}$", 404)
    ref = provider.launch(uploaded, cfg, "run-lost")
    assert ref.remote_id == name
    assert list(fake.jobs) == [name]


def test_a_job_id_taken_by_other_data_is_refused(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path
) -> None:
    _launched(provider, tmp_path, "run-same")
    other = UploadedData(training=f"accounts/{ACCOUNT}/datasets/tp-other")
    with pytest.raises(ConfigError) as info:
        provider.launch(other, _cfg(tmp_path), "run-same")
    assert "exists but trains on" in info.value.one_line()
    assert len(fake.jobs) == 1


def test_every_job_state_of_the_sdk_maps_to_a_tuneport_state() -> None:
    from fireworks.types import SupervisedFineTuningJob

    annotation = SupervisedFineTuningJob.model_fields["state"].annotation
    literal = next(a for a in typing.get_args(annotation) if typing.get_args(a))
    newer = {"JOB_STATE_DELETED", "JOB_STATE_ARCHIVED"}  # tombstones newer than this SDK
    assert set(typing.get_args(literal)) == set(STATES) - newer
    assert {STATES[s] for s in newer} == {JobState.CANCELLED}  # terminal: waiting ends


def test_a_job_passing_through_validating_and_writing_results_is_followed_to_its_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    flow = (
        "JOB_STATE_CREATING",
        "JOB_STATE_VALIDATING",
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_WRITING_RESULTS",
        "JOB_STATE_COMPLETED",
    )
    with FakeFireworks(api_key=KEY, account_id=ACCOUNT, script=flow) as fake:
        monkeypatch.setenv("FIREWORKS_API_KEY", KEY)
        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", ACCOUNT)
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.base_url)
        provider = FireworksProvider()
        _, ref = _launched(provider, tmp_path)
        seen = [provider.status(ref)]
        for _ in flow[1:]:
            fake.advance()
            seen.append(provider.status(ref))
    assert [s.raw_state for s in seen] == list(flow)
    assert [s.state for s in seen] == [
        JobState.QUEUED,
        JobState.VALIDATING,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.SUCCEEDED,
    ]
    assert seen[-1].tuned_model and not seen[-1].error


def test_an_early_stopped_job_succeeds_only_with_its_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What EARLY_STOPPED leaves behind is not documented: the tuned model is reported only
    when Fireworks has it, else the job is a failure with the server's reason."""
    flow = ("JOB_STATE_CREATING", "JOB_STATE_RUNNING", "JOB_STATE_EARLY_STOPPED")
    with FakeFireworks(api_key=KEY, account_id=ACCOUNT, script=flow) as fake:
        monkeypatch.setenv("FIREWORKS_API_KEY", KEY)
        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", ACCOUNT)
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.base_url)
        provider = FireworksProvider()
        _, ref = _launched(provider, tmp_path)
        fake.advance(2)
        stopped = provider.status(ref)
        assert stopped.state is JobState.FAILED and stopped.tuned_model is None
        assert stopped.error == "JOB_STATE_EARLY_STOPPED"
        (job,) = fake.jobs.values()
        name = f"accounts/{ACCOUNT}/models/{job.data['outputModel'].rsplit('/', 1)[-1]}"
        fake.models[name] = {"name": name, "kind": "HF_PEFT_ADDON", "state": "READY"}
        done = provider.status(ref)
    assert done.state is JobState.SUCCEEDED and done.tuned_model == name


def test_a_deleted_job_ends_the_wait(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path
) -> None:
    _, ref = _launched(provider, tmp_path)
    for job in fake.jobs.values():
        job.data["state"] = "JOB_STATE_DELETED"
    status = provider.status(ref)
    assert status.state is JobState.CANCELLED and status.raw_state == "JOB_STATE_DELETED"


@pytest.mark.parametrize(
    ("message", "kind", "says"),
    [
        ("LoRA model failed to load on deployment", ProviderError, "could not load the LoRA"),
        ("Account acme is suspended", QuotaError, "suspended or out of credit"),
        ("precondition failed", ProviderError, "refused the request"),
    ],
)
def test_412_answers_are_told_apart(message: str, kind: type, says: str) -> None:
    """docs.fireworks.ai/guides/inference-error-codes: 412 for a LoRA that failed to load,
    and (logged answers) PRECONDITION_FAILED for a suspended account."""
    import fireworks
    import httpx

    request = httpx.Request("POST", "http://127.0.0.1:9/inference/v1/chat/completions")
    body = {"error": {"message": message, "code": "PRECONDITION_FAILED", "type": "error"}}
    response = httpx.Response(412, json=body, request=request)
    exc = fireworks.APIStatusError(message, response=response, body=body)
    err = map_error(exc, model="accounts/acme/models/m")
    assert type(err) is kind and says in err.message


def test_status_and_events_through_a_run(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path, clock: Clock
) -> None:
    _, ref = _launched(provider, tmp_path, epochs=2)
    status = provider.status(ref)
    assert status.state is JobState.QUEUED and status.raw_state == "JOB_STATE_CREATING"
    first = list(provider.events(ref))
    assert [e.message for e in first] == ["creating (0%)"]
    assert list(provider.events(ref, after=first[-1].id)) == []  # nothing changed
    fake.advance(2)
    clock.now += 10  # past the snapshot
    running = list(provider.events(ref, after=first[-1].id))
    assert [e.message for e in running] == ["running (50%)"]
    fake.advance()
    done = provider.status(ref)
    assert done.state is JobState.SUCCEEDED and done.progress == 1.0
    assert done.tuned_model == f"accounts/{ACCOUNT}/models/{job_id('run-1')}"
    assert done.trained_tokens and done.raw["estimatedCost"]["currencyCode"] == "USD"
    assert [j.remote_id for j in provider.list_jobs()] == [ref.remote_id]


def test_a_failed_job_reports_the_servers_reason(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path, clock: Clock
) -> None:
    fake.fail_next_job = "dataset row 4: missing assistant turn"
    _, ref = _launched(provider, tmp_path)
    fake.advance(3)
    clock.now += 10
    status = provider.status(ref)
    assert status.state is JobState.FAILED
    assert status.error == "dataset row 4: missing assistant turn"
    (event,) = provider.events(ref)
    assert event.level == "error" and "missing assistant turn" in event.message


def test_cancel(fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path) -> None:
    _, ref = _launched(provider, tmp_path)
    provider.cancel(ref)
    assert provider.status(ref).raw_state == "JOB_STATE_CANCELLING"
    fake.advance()
    assert provider.status(ref).state is JobState.CANCELLED


# --- chat, deployments, cleanup ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_cleanup_deletes_the_job_itself_only_when_asked(
    fake: FakeFireworks, tmp_path: Path, method: str
) -> None:
    provider = FireworksProvider()
    _, ref = _launched(provider, tmp_path, method=method)
    fake.advance(3)
    tuned = provider.status(ref).tuned_model
    provider.cleanup(ref)
    assert ref.remote_id in fake.jobs  # by default the job record stays
    progress = Recorder()
    FireworksProvider(delete_job=True).cleanup(ref, progress)
    assert ref.remote_id not in fake.jobs and len(fake.calls("DELETE", r"Jobs/")) == 1
    assert tuned in fake.models  # the tuned model is kept
    assert any(f"deleted job {ref.remote_id}" in n for n in progress.notes)
    again = Recorder()
    FireworksProvider(delete_job=True).cleanup(ref, again)  # nothing left: no error
    assert any("no longer exists" in n for n in again.notes)
    assert len(fake.calls("DELETE", r"Jobs/")) == 1


def test_chat_with_an_undeployed_lora_says_to_deploy_it(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path
) -> None:
    _, ref = _launched(provider, tmp_path)
    fake.advance(3)
    tuned = provider.status(ref).tuned_model
    assert tuned
    with pytest.raises(ProviderError) as info:
        provider.chat(tuned, [Message(role="user", content="hi")], ChatOptions())
    text = info.value.one_line()
    assert f"Fireworks serves {tuned} only from a deployment" in text
    assert "--set deploy=true" in text and "per GPU-second" in text
    assert not fake.deployments  # nothing was created without asking


def test_deploy_creates_one_deployment_waits_for_it_and_cleanup_deletes_it(
    fake: FakeFireworks, tmp_path: Path, clock: Clock
) -> None:
    provider = FireworksProvider(sleep=clock.sleep, clock=clock)
    uploaded, ref = _launched(provider, tmp_path)
    with pytest.raises(ConfigError):
        provider.cleanup(ref)  # still running: its dataset is in use
    fake.advance(3)
    tuned = provider.status(ref).tuned_model
    assert tuned
    deploying = FireworksProvider(deploy=True, sleep=clock.sleep, clock=clock)
    clock.on_sleep = fake.advance  # the deployment becomes READY while we wait
    hi = [Message(role="user", content="hi")]
    with pytest.raises(ConfigError, match="without consent"):
        deploying.chat(tuned, hi, ChatOptions(max_tokens=5))  # nothing starts unasked
    assert not fake.deployments
    deploying.consent_hourly()  # what `chat` does once the user said yes
    reply = deploying.chat(tuned, hi, ChatOptions(max_tokens=5))
    dep_name = f"accounts/{ACCOUNT}/deployments/{deployment_id(tuned)}"
    assert reply.content == f"echo[{tuned}#{dep_name}]: hi"
    assert fake.chats[-1]["max_tokens"] == 5
    deploying.chat(tuned, hi, ChatOptions())  # the deployment is reused
    assert len(fake.calls("POST", r"/deployments$")) == 1
    assert fake.deployments[dep_name]["baseModel"] == tuned
    # a LoRA the user loaded elsewhere is unloaded too
    base_dep = FireworksProvider().client.deployments.create(base_model=MODEL)
    FireworksProvider().client.lora.load(model=tuned, deployment=str(base_dep.name))
    progress = Recorder()
    provider.cleanup(ref, progress)
    assert dep_name not in fake.deployments and not fake.deployed_models
    assert str(base_dep.name) in fake.deployments  # the base model's deployment is not ours
    assert uploaded.training not in fake.datasets
    assert tuned in fake.models  # the tuned model is kept
    assert any("deleted deployment" in n for n in progress.notes)


def test_a_deployment_that_never_becomes_ready_times_out(
    fake: FakeFireworks, tmp_path: Path, clock: Clock
) -> None:
    provider = FireworksProvider(sleep=clock.sleep, clock=clock)
    _, ref = _launched(provider, tmp_path)
    fake.advance(3)
    tuned = provider.status(ref).tuned_model
    assert tuned
    waiting = FireworksProvider(deploy=True, deploy_timeout=60, sleep=clock.sleep, clock=clock)
    waiting.consent_hourly()
    with pytest.raises(ProviderError) as info:
        waiting.chat(tuned, [Message(role="user", content="hi")], ChatOptions())
    assert "is still CREATING after 60 s (it keeps billing" in info.value.one_line()


def test_base_models_answer_without_a_deployment(
    fake: FakeFireworks, provider: FireworksProvider
) -> None:
    reply = provider.chat(MODEL, [Message(role="user", content="hi")], ChatOptions())
    assert reply.content == f"echo[{MODEL}]: hi"


def test_chat_streams_the_reply_piece_by_piece(
    fake: FakeFireworks, provider: FireworksProvider, tmp_path: Path, clock: Clock
) -> None:
    """``tuneport chat`` prints a Fireworks reply as it is generated (stream=True); a tuned
    model streams from the deployment tuneport made, and an undeployed one is one line."""
    hi = [Message(role="user", content="one two three")]
    pieces = list(provider.chat_stream(MODEL, hi, ChatOptions(max_tokens=9)))
    assert len(pieces) > 3 and "".join(pieces) == f"echo[{MODEL}]: one two three"
    assert fake.chats[-1]["stream"] is True and fake.chats[-1]["max_tokens"] == 9
    _, ref = _launched(provider, tmp_path)
    fake.advance(3)
    tuned = provider.status(ref).tuned_model
    assert tuned
    with pytest.raises(ProviderError, match="only from a deployment"):
        list(provider.chat_stream(tuned, hi, ChatOptions()))
    deploying = FireworksProvider(deploy=True, sleep=clock.sleep, clock=clock)
    deploying.consent_hourly()
    clock.on_sleep = fake.advance
    dep_name = f"accounts/{ACCOUNT}/deployments/{deployment_id(tuned)}"
    text = "".join(deploying.chat_stream(tuned, hi, ChatOptions()))
    assert text == f"echo[{tuned}#{dep_name}]: one two three"


def test_the_fakes_stream_is_what_the_sdks_chunk_type_describes(fake: FakeFireworks) -> None:
    """Each event of the fake's stream validates as fireworks-ai's ``ChatCompletionChunk``;
    the stream ends with ``[DONE]`` and its last chunk carries the finish reason and usage."""
    import httpx
    from fireworks.types.chat import ChatCompletionChunk

    body = {"model": MODEL, "messages": [{"role": "user", "content": "a b"}], "stream": True}
    answer = httpx.post(
        f"{fake.base_url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert answer.headers["content-type"] == "text/event-stream"
    data = [line.removeprefix("data: ") for line in answer.text.splitlines() if line]
    assert data[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(d) for d in data[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == f"echo[{MODEL}]: a b"
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is not None


def test_a_stream_answered_with_one_json_reply_is_read_whole(
    fake: FakeFireworks, provider: FireworksProvider
) -> None:
    """A server (a proxy at FIREWORKS_BASE_URL) that ignores stream=True and sends one
    chat.completion: the SDK would read it as an event stream without events, an empty reply.
    The reply is read whole instead, by the Fireworks SDK's own reply type."""
    fake.stream_as_json = True
    hi = [Message(role="user", content="hello there")]
    assert list(provider.chat_stream(MODEL, hi, ChatOptions())) == [f"echo[{MODEL}]: hello there"]
    assert fake.chats[-1]["stream"] is True


def test_a_connection_dropped_mid_reply_is_one_line_and_not_resent(
    fake: FakeFireworks, provider: FireworksProvider
) -> None:
    """The pieces already shown stay shown; the drop is one line saying to send the message
    again, and tuneport does not send it again by itself (a second reply would repeat it)."""
    fake.mangle("POST", r"chat/completions$", "truncated")
    pieces: list[str] = []
    with pytest.raises(ProviderError) as info:
        pieces.extend(
            provider.chat_stream(MODEL, [Message(role="user", content="hi")], ChatOptions())
        )
    assert "dropped mid-reply" in info.value.one_line() and "send the message again" in (
        info.value.hint or ""
    )
    assert "Fireworks at http://127.0.0.1:" in info.value.one_line()
    assert len(fake.calls("POST", r"chat/completions$")) == 1


def test_not_found_names_the_job(provider: FireworksProvider) -> None:
    with pytest.raises(NotFoundError):
        provider.status(
            JobRef(
                provider="fireworks",
                remote_id=f"accounts/{ACCOUNT}/supervisedFineTuningJobs/tp-missing",
                run_id="r",
            )
        )
    with pytest.raises(NotFoundError) as info:
        provider.status(JobRef(provider="fireworks", remote_id="nonsense", run_id="r"))
    assert "is not a Fireworks fine-tuning job name" in info.value.one_line()


# --- descriptor --------------------------------------------------------------------------------


def test_rules_and_counter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tuneport.jobs.quote import ignored_settings
    from tuneport.providers import fireworks
    from tuneport.schemas import Example
    from tuneport.tokens import hf
    from tuneport.validation.rules import Finding

    msgs = [
        Message(role="user", content="q"),
        Message(role="system", content="late"),
        Message(role="assistant", content="a"),
    ]
    found: list[Finding] = []
    for check in BACKEND.rules.chat:
        found += check(Example(messages=msgs))
    assert [f.kind for f in found] == ["system_position"]
    assert BACKEND.rules.min_examples == 3 and BACKEND.limit_for(MODEL) == 8192
    assert ignored_settings(BACKEND, _cfg(tmp_path, seed=1, batch_size=8, suffix="s")) == [
        "--seed is ignored by Fireworks AI: its fine-tuning jobs take no seed"
    ]
    asked: list[str] = []
    monkeypatch.setattr(hf, "load_hf_tokenizer", lambda name: asked.append(name))
    approx = fireworks.counter(MODEL, {})
    assert not approx.exact and approx.error_band == 0.3
    assert asked == [MODEL, "meta-llama/Llama-3.1-8B-Instruct"]


@pytest.mark.parametrize(
    ("base_url", "chat_url"),
    [
        (None, "https://api.fireworks.ai/inference/v1/chat/completions"),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9/v1/chat/completions"),
    ],
)
def test_chat_goes_to_the_sdks_inference_path_unless_a_base_url_is_set(
    monkeypatch: pytest.MonkeyPatch, base_url: str | None, chat_url: str
) -> None:
    """fireworks-ai 1.2 posts chat to https://api.fireworks.ai/inference/v1/chat/completions
    unless the client's base URL was overridden, then to ``/v1/chat/completions`` on it
    (fireworks/resources/chat/completions.py); tuneport passes a base URL only when one is set.
    The SDK's own request is captured by an httpx transport: no network."""
    import httpx

    monkeypatch.delenv("FIREWORKS_BASE_URL", raising=False)
    monkeypatch.setenv("FIREWORKS_API_KEY", KEY)
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", ACCOUNT)
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        reply = {"role": "assistant", "content": "hello"}
        body = {"id": "c", "object": "chat.completion", "created": 0, "model": MODEL,
                "choices": [{"index": 0, "message": reply, "finish_reason": "stop"}]}  # fmt: skip
        return httpx.Response(200, json=body)

    provider = FireworksProvider(base_url=base_url)
    built = provider.client  # as tuneport builds it
    assert built._base_url_overridden is (base_url is not None)  # the SDK's routing switch
    provider._client = built.with_options(
        http_client=httpx.Client(transport=httpx.MockTransport(answer))
    )
    reply = provider.chat(MODEL, [Message(role="user", content="hi")], ChatOptions())
    assert reply.content == "hello"
    assert seen == [chat_url]
