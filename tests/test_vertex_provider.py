"""VertexProvider driven through the REAL google-genai client against a local fake server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.vertex_server import (
    BILLABLE_TOKENS,
    DEFAULT_EPOCHS,
    FakeVertex,
    running_fake_vertex,
)
from tuneport.errors import ConfigError
from tuneport.providers.base import ChatOptions, OnlineCounting, Provider, UploadedData
from tuneport.providers.vertex.jobs import RUN_ID_LABEL, run_id_label
from tuneport.providers.vertex.provider import VertexProvider
from tuneport.schemas import (
    Example,
    JobConfig,
    JobRef,
    JobState,
    Message,
    PreferenceExample,
)

pytestmark = pytest.mark.timeout(60)

UPLOADED = UploadedData(training="gs://b/tuneport/abc/train.jsonl")


@pytest.fixture
def fake() -> Iterator[FakeVertex]:
    with running_fake_vertex() as server:
        yield server


def fake_credentials() -> Any:
    import google.oauth2.credentials

    return google.oauth2.credentials.Credentials(token="fake")


def make(fake: FakeVertex, sleeps: list[float] | None = None, **settings: Any) -> VertexProvider:
    settings.setdefault("project", "p")
    settings.setdefault("location", "us-central1")
    settings.setdefault("base_url", fake.url)
    return VertexProvider(
        credentials=fake_credentials(),
        sleep=(sleeps.append if sleeps is not None else lambda _s: None),
        **settings,
    )


def cfg(**kw: Any) -> JobConfig:
    kw.setdefault("model", "gemini-2.5-flash")
    return JobConfig(provider="vertex", data=Path("train.jsonl"), **kw)


def test_is_a_provider_with_online_counting() -> None:
    provider = VertexProvider(project="p")
    assert isinstance(provider, Provider)
    assert isinstance(provider, OnlineCounting)


def test_unknown_setting_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'buckt'.*allowed options: .*bucket"):
        VertexProvider(buckt="x")


def test_create_request_body_carries_every_mapped_field(fake: FakeVertex) -> None:
    provider = make(fake, adapter_size=4, labels={"team": "ml"}, description="demo")
    uploaded = UploadedData(training="gs://b/t/train.jsonl", validation="gs://b/t/val.jsonl")
    config = cfg(epochs=3, learning_rate_multiplier=0.5, suffix="support-bot")
    ref = provider.launch(uploaded, config, "Run-42")
    assert ref == JobRef(
        provider="vertex",
        remote_id="projects/p/locations/us-central1/tuningJobs/1001",
        run_id="Run-42",
    )
    (create,) = fake.calls("POST", r"tuningJobs$")
    assert create.version == "v1beta1"
    assert create.path == "projects/p/locations/us-central1/tuningJobs"
    assert create.headers["authorization"] == "Bearer fake"
    assert create.body == {
        "baseModel": "gemini-2.5-flash",
        "supervisedTuningSpec": {
            "trainingDatasetUri": "gs://b/t/train.jsonl",
            "validationDatasetUri": "gs://b/t/val.jsonl",
            "hyperParameters": {
                "epochCount": 3,
                "learningRateMultiplier": 0.5,
                "adapterSize": "ADAPTER_SIZE_FOUR",
            },
        },
        "tunedModelDisplayName": "support-bot",
        "description": "demo",
        "labels": {"team": "ml", RUN_ID_LABEL: "run-42"},
    }


def test_auto_hyperparameters_are_left_to_the_service(fake: FakeVertex) -> None:
    make(fake).launch(UPLOADED, cfg(), "r1")
    (create,) = fake.calls("POST", r"tuningJobs$")
    assert create.body["supervisedTuningSpec"] == {"trainingDatasetUri": UPLOADED.training}
    assert create.body["tunedModelDisplayName"] == "tuneport-r1"


def test_preference_tuning_sends_beta(fake: FakeVertex) -> None:
    make(fake, beta=0.2).launch(UPLOADED, cfg(method="dpo", epochs=2), "r1")
    (create,) = fake.calls("POST", r"tuningJobs$")
    assert "supervisedTuningSpec" not in create.body
    assert create.body["preferenceOptimizationSpec"] == {
        "trainingDatasetUri": UPLOADED.training,
        "hyperParameters": {"epochCount": 2, "beta": 0.2},
    }


def test_beta_without_dpo_is_refused(fake: FakeVertex) -> None:
    with pytest.raises(ConfigError, match="beta applies to preference tuning only"):
        make(fake, beta=0.2).launch(UPLOADED, cfg(), "r1")
    assert not fake.calls("POST", r"tuningJobs$")


def test_status_goes_to_success_and_reads_back_epochs_and_billing(fake: FakeVertex) -> None:
    provider = make(fake)
    ref = provider.launch(UPLOADED, cfg(), "r1")
    running = provider.status(ref)
    assert running.state == JobState.RUNNING
    assert running.raw_state == "JOB_STATE_RUNNING"
    assert running.epochs == DEFAULT_EPOCHS  # read back, not assumed
    assert running.progress == pytest.approx(1 / DEFAULT_EPOCHS)
    assert running.tuned_model is None
    done = provider.status(ref)
    assert done.state == JobState.SUCCEEDED
    assert done.tuned_model is not None and "/endpoints/" in done.tuned_model
    assert done.raw["billable_dataset_tokens"] == BILLABLE_TOKENS  # int64 sent as a string
    assert done.trained_tokens == BILLABLE_TOKENS * DEFAULT_EPOCHS
    assert done.progress == 1.0
    assert done.run_id == "r1"
    assert done.model == "gemini-2.5-flash"
    assert done.created_at is not None and done.created_at.year == 2026


def test_failed_job_reports_the_server_error(fake: FakeVertex) -> None:
    fake.outcome = "fail"
    provider = make(fake)
    ref = provider.launch(UPLOADED, cfg(), "r1")
    provider.status(ref)
    failed = provider.status(ref)
    assert failed.state == JobState.FAILED
    assert failed.error == "Dataset line 3: contents must end with model (code 3)"
    events = list(provider.events(ref))
    assert events[-1].level == "error" and "contents must end with model" in events[-1].message


def test_cancel(fake: FakeVertex) -> None:
    provider = make(fake)
    ref = provider.launch(UPLOADED, cfg(), "r1")
    provider.cancel(ref)
    assert fake.calls("POST", r"tuningJobs/1001:cancel$")
    assert provider.status(ref).state == JobState.CANCELLED


@pytest.mark.parametrize(
    ("raw", "detail", "state"),
    [
        ("JOB_STATE_QUEUED", None, JobState.QUEUED),
        ("JOB_STATE_PENDING", None, JobState.QUEUED),
        ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_PROCESSING_DATASET", JobState.VALIDATING),
        ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING", JobState.RUNNING),
        ("JOB_STATE_CANCELLING", None, JobState.RUNNING),
        ("JOB_STATE_CANCELLED", None, JobState.CANCELLED),
        ("JOB_STATE_EXPIRED", None, JobState.FAILED),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", None, JobState.SUCCEEDED),
        ("JOB_STATE_PAUSED", None, JobState.QUEUED),
    ],
)
def test_state_table(raw: str, detail: str | None, state: JobState) -> None:
    from google.genai import types

    job = types.TuningJob.model_validate(
        {"name": "projects/p/locations/l/tuningJobs/1", "state": raw, "tuningJobState": detail}
    )
    assert VertexProvider._status(job).state == state


def test_list_jobs_newest_first_with_limit(fake: FakeVertex) -> None:
    provider = make(fake)
    refs = [provider.launch(UPLOADED, cfg(), f"r{i}") for i in range(3)]
    listed = provider.list_jobs(limit=2)
    assert [s.remote_id for s in listed] == [refs[2].remote_id, refs[1].remote_id]
    assert fake.calls("GET", r"tuningJobs$")[-1].query["pageSize"] == ["2"]


def test_relaunch_of_the_same_run_finds_the_job(fake: FakeVertex) -> None:
    provider = make(fake)
    first = provider.launch(UPLOADED, cfg(), "run-1")
    again = make(fake).launch(UPLOADED, cfg(), "run-1")
    assert again.remote_id == first.remote_id
    assert len(fake.calls("POST", r"tuningJobs$")) == 1
    lookup = fake.calls("GET", r"tuningJobs$")[-1]
    assert lookup.query["filter"] == [f'labels.{RUN_ID_LABEL}="run-1"']


def test_dropped_connection_after_create_does_not_duplicate_the_job(fake: FakeVertex) -> None:
    fake.drop("POST", r"tuningJobs$")  # created, then the connection closes: no reply
    sleeps: list[float] = []
    ref = make(fake, sleeps).launch(UPLOADED, cfg(), "run-1")
    assert len(fake.jobs) == 1
    assert ref.remote_id == next(iter(fake.jobs))
    assert len(fake.calls("POST", r"tuningJobs$")) == 1  # found by label, not re-sent
    assert len(sleeps) == 1


def test_server_error_after_create_reconciles_even_if_list_ignores_filter(
    fake: FakeVertex,
) -> None:
    provider = make(fake)
    other = provider.launch(UPLOADED, cfg(), "someone-else")
    fake.list_ignores_filter = True
    fake.fail("POST", r"tuningJobs$", status=503, grpc_status="UNAVAILABLE", after=True)
    ref = provider.launch(UPLOADED, cfg(), "run-2")
    assert ref.remote_id != other.remote_id
    assert fake.jobs[ref.remote_id].data["labels"][RUN_ID_LABEL] == "run-2"
    assert len(fake.jobs) == 2


def test_rate_limit_then_create(fake: FakeVertex) -> None:
    fake.fail("POST", r"tuningJobs$", status=429, grpc_status="RESOURCE_EXHAUSTED", times=2)
    sleeps: list[float] = []
    make(fake, sleeps).launch(UPLOADED, cfg(), "r1")
    assert len(fake.calls("POST", r"tuningJobs$")) == 3
    assert len(fake.jobs) == 1
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)


def test_events_are_incremental(fake: FakeVertex) -> None:
    provider = make(fake)
    ref = provider.launch(UPLOADED, cfg(epochs=2), "r1")
    first = list(provider.events(ref))  # RUNNING, 1 epoch done
    assert [e.id for e in first] == [
        "0010-created",
        "0024-tuning_job_state_tuning",
        "0030-started",
        "0101-epoch-1",
    ]
    more = list(provider.events(ref, after=first[-1].id))  # SUCCEEDED
    assert [e.id for e in more] == ["0102-epoch-2", "9000-succeeded"]
    assert more[0].step == 2 and more[0].message == "epoch 2/2 completed"
    assert "endpoint projects/p/locations/us-central1/endpoints/" in more[1].message
    assert list(provider.events(ref, after=more[-1].id)) == []


def test_chat_sends_system_instruction_and_roles(fake: FakeVertex) -> None:
    provider = make(fake)
    endpoint = "projects/p/locations/us-central1/endpoints/77"
    fake.endpoints[endpoint] = {"name": endpoint, "deployedModels": []}
    reply = provider.chat(
        endpoint,
        [
            Message(role="system", content="Answer briefly."),
            Message(role="user", content="hello"),
            Message(role="assistant", content="hi!"),
            Message(role="user", content="how are you"),
        ],
        ChatOptions(temperature=0.2, max_tokens=64),
    )
    assert reply == Message(role="assistant", content="[77] echo: how are you")
    (call,) = fake.calls("POST", r":generateContent$")
    assert call.path == f"{endpoint}:generateContent"
    assert call.body["systemInstruction"]["parts"] == [{"text": "Answer briefly."}]
    assert [c["role"] for c in call.body["contents"]] == ["user", "model", "user"]
    assert call.body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 64}


def test_online_counter_uses_count_tokens(fake: FakeVertex) -> None:
    counter = make(fake).online_counter("gemini-2.5-flash")
    assert counter.exact and counter.error_band is None
    example = Example(
        messages=[
            Message(role="system", content="be short"),
            Message(role="user", content="one two three"),
            Message(role="assistant", content="four five"),
        ]
    )
    assert counter.count(example) == 7  # the fake counts words
    (call,) = fake.calls("POST", r":countTokens$")
    assert (
        call.path
        == "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:countTokens"
    )
    assert [c["role"] for c in call.body["contents"]] == ["user", "model"]
    assert call.body["systemInstruction"]["parts"] == [{"text": "be short"}]
    pair = PreferenceExample(
        prompt=[Message(role="user", content="a b")],
        chosen=Message(role="assistant", content="c"),
        rejected=Message(role="assistant", content="d e"),
    )
    # Vertex bills preference tuning as 2 x prompt + completions: 2 x 2 + 1 + 2
    assert counter.count(pair) == 7
    assert counter.count_text("x y z") == 3
    assert counter.count_text("") == 0


def test_cleanup_undeploys_before_deleting_endpoint_then_model(fake: FakeVertex) -> None:
    provider = make(fake)
    ref = provider.launch(UPLOADED, cfg(), "r1")
    provider.status(ref)
    done = provider.status(ref)
    endpoint = done.tuned_model
    model = done.raw["tuned_model"].split("@")[0]
    assert endpoint in fake.endpoints and model in fake.models
    start = len(fake.requests)
    provider.cleanup(ref)
    rest = [(r.method, r.version, r.path) for r in fake.requests[start:] if r.version == "v1"]
    assert [(m, p.rsplit("/", 1)[-1]) for m, _v, p in rest if "operations" not in p] == [
        ("GET", endpoint.rsplit("/", 1)[-1]),
        ("POST", endpoint.rsplit("/", 1)[-1] + ":undeployModel"),
        ("DELETE", endpoint.rsplit("/", 1)[-1]),
        ("DELETE", model.rsplit("/", 1)[-1]),
    ]
    undeploy = fake.calls("POST", r":undeployModel$")[0]
    assert undeploy.body == {"deployedModelId": f"dm-{model.rsplit('/', 1)[-1]}"}
    assert undeploy.headers["authorization"] == "Bearer fake"
    assert endpoint not in fake.endpoints and model not in fake.models
    provider.cleanup(ref)  # idempotent: everything is already gone


def test_cleanup_of_a_job_without_tuned_model_does_nothing(fake: FakeVertex) -> None:
    provider = make(fake)
    ref = provider.launch(UPLOADED, cfg(), "r1")
    provider.cleanup(ref)
    assert not [r for r in fake.requests if r.version == "v1"]


def test_cleanup_waits_for_long_running_operations(fake: FakeVertex) -> None:
    provider = make(fake)
    ref = provider.launch(UPLOADED, cfg(), "r1")
    provider.status(ref)
    provider.status(ref)
    sleeps: list[float] = []
    provider._sleep = sleeps.append
    provider.cleanup(ref)
    assert len(fake.calls("GET", r"/operations/")) == 3
    assert len(sleeps) == 3


def test_project_location_url_and_token_from_environment(
    fake: FakeVertex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", fake.url)
    monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.secret-token-value")
    provider = VertexProvider(sleep=lambda _s: None)
    provider.launch(UPLOADED, cfg(), "r1")
    (create,) = fake.calls("POST", r"tuningJobs$")
    assert create.path == "projects/env-proj/locations/europe-west4/tuningJobs"
    assert create.headers["authorization"] == "Bearer ya29.secret-token-value"


def test_flags_win_over_environment(fake: FakeVertex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    make(fake, project="flag-proj", location="us-east5").launch(UPLOADED, cfg(), "r1")
    (create,) = fake.calls("POST", r"tuningJobs$")
    assert create.path == "projects/flag-proj/locations/us-east5/tuningJobs"


def _service_account_key(path: Path, token_uri: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "sa-proj",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "tuner@sa-proj.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )


def test_service_account_file_gives_project_and_token(
    fake: FakeVertex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "key.json"
    _service_account_key(key, f"{fake.url}/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    provider = VertexProvider(base_url=fake.url, sleep=lambda _s: None)
    provider.launch(UPLOADED, cfg(), "r1")
    (token,) = fake.calls("POST", r"^token$")
    assert "assertion" in token.body  # google-auth posted a signed JWT
    (create,) = fake.calls("POST", r"tuningJobs$")
    assert create.path == "projects/sa-proj/locations/us-central1/tuningJobs"
    assert create.headers["authorization"] == f"Bearer {fake.issued_token}"


def test_run_id_label_is_a_valid_label_value() -> None:
    assert run_id_label("20261123T101500-AbC.9") == "20261123t101500-abc-9"
    assert len(run_id_label("x" * 100)) == 63


def test_a_watch_poll_costs_one_get(fake: FakeVertex) -> None:
    provider = make(fake)
    ref = provider.launch(UPLOADED, cfg(), "r1")
    before = len(fake.calls("GET", r"tuningJobs/"))
    status = provider.status(ref)
    events = list(provider.events(ref))
    assert len(fake.calls("GET", r"tuningJobs/")) == before + 1
    assert status.state == JobState.RUNNING and events[-1].id == "0101-epoch-1"
    list(provider.events(ref))  # no fresh status: fetches again
    assert len(fake.calls("GET", r"tuningJobs/")) == before + 2


def test_batch_size_and_seed_are_warned_not_fatal(tmp_path: Path) -> None:
    from tests.test_gcs import RecordingProgress

    records = [
        Example(
            messages=[
                Message(role="user", content=f"q{i}"),
                Message(role="assistant", content=f"a{i}"),
            ]
        )
        for i in range(3)
    ]
    progress = RecordingProgress()
    prepared = VertexProvider(project="p").prepare(
        records, cfg(batch_size=8, seed=1), tmp_path, progress
    )
    assert prepared.examples == 3  # warned about once, in the estimate (the descriptor's job)
    from tuneport.jobs.quote import ignored_settings
    from tuneport.providers.vertex import BACKEND

    warnings = " ".join(ignored_settings(BACKEND, cfg(batch_size=8, seed=1)))
    assert "--batch-size is ignored by Vertex" in warnings and "--seed is ignored" in warnings
    assert not progress.notes()
    rows = [json.loads(line) for line in prepared.training.read_text().splitlines()]
    assert rows[0] == {
        "contents": [
            {"role": "user", "parts": [{"text": "q0"}]},
            {"role": "model", "parts": [{"text": "a0"}]},
        ]
    }
    assert prepared.examples == 3


def test_other_providers_models_are_refused(fake: FakeVertex) -> None:
    with pytest.raises(ConfigError, match="belongs to the openai provider"):
        make(fake).launch(UPLOADED, cfg(model="ft:gpt-4.1-mini:org::abc"), "r1")
    assert not fake.requests


def test_chat_returns_function_calls_as_tool_calls(fake: FakeVertex) -> None:
    endpoint = "projects/p/locations/us-central1/endpoints/77"
    fake.endpoints[endpoint] = {"name": endpoint, "deployedModels": []}
    fake.reply_parts = [
        {"thought": True, "text": "thinking..."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
    ]
    reply = make(fake).chat(endpoint, [Message(role="user", content="weather?")], ChatOptions())
    assert reply.content is None
    assert reply.tool_calls is not None
    (call,) = reply.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
