"""The OpenAI backend driving the real ``openai`` SDK against the local fake server."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tests.hosted_helpers import Recorder
from tuneport.errors import AuthError, ConfigError, NotFoundError, ProviderError, QuotaError
from tuneport.jobs.store import JobStore
from tuneport.providers import registry
from tuneport.providers.base import ChatOptions, PreparedData, Provider, UploadedData
from tuneport.providers.openai import NOTICE, OpenAIProvider
from tuneport.schemas import JobConfig, JobRef, JobState, Message

KEY = "sk-test-SECRET123456"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY) as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs.db")


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def provider(fake: FakeOpenAI, store: JobStore, slept: list[float]) -> OpenAIProvider:
    return OpenAIProvider(sleep=slept.append, store=store)


def _prepared(tmp_path: Path, rows: int = 12, name: str = "train.jsonl") -> PreparedData:
    path = tmp_path / name
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"question {i}"},
                    {"role": "assistant", "content": f"answer {i}"},
                ]
            }
        )
        for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return PreparedData(training=path, sha256=digest, examples=rows)


def _cfg(tmp_path: Path, **extra: Any) -> JobConfig:
    return JobConfig.model_validate(
        {"provider": "openai", "model": "gpt-4.1-mini", "data": tmp_path / "d.jsonl", **extra}
    )


def _launch(provider: OpenAIProvider, tmp_path: Path, run_id: str = "run-1", **cfg: Any) -> JobRef:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path, **cfg), Recorder())
    return provider.launch(uploaded, _cfg(tmp_path, **cfg), run_id)


def test_registry_builds_it_and_it_is_a_provider() -> None:
    made = registry.get("openai", {})
    assert isinstance(made, OpenAIProvider)
    assert isinstance(made, Provider)
    assert "winding down" in NOTICE
    assert registry.provider_for_model("ft:gpt-4.1-mini:org::abc") == "openai"


def test_unknown_option_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        OpenAIProvider(bucket="gs://b", epochs="x")
    text = info.value.one_line()
    assert "unknown option 'bucket'" in text and "unknown option 'epochs'" in text
    assert "api_key" in text and "base_url" in text


def test_missing_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIProvider().list_jobs()


def test_upload_sends_multipart_with_progress_and_skips_identical_bytes(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path, store: JobStore
) -> None:
    prepared = _prepared(tmp_path)
    progress = Recorder()
    uploaded = provider.upload(prepared, _cfg(tmp_path), progress)
    assert not uploaded.reused
    (post,) = fake.calls("POST", "/files")
    assert post.body["fields"] == {"purpose": "fine-tune"}
    filename, content = post.body["files"]["file"]
    assert filename == f"tuneport-{prepared.sha256[:16]}.jsonl"
    assert content == prepared.training.read_bytes()
    size = prepared.training.stat().st_size
    assert progress.started[-1] == (f"upload {prepared.training.name}", size)
    assert progress.advanced == size
    assert store.upload_get("openai@" + fake.base_url, prepared.sha256) == uploaded.training

    again = provider.upload(prepared, _cfg(tmp_path), Recorder())
    assert again.reused and again.training == uploaded.training
    assert len(fake.calls("POST", "/files")) == 1
    assert fake.calls("GET", f"/files/{uploaded.training}")  # confirmed with the provider


def test_upload_reuse_survives_a_lost_store_and_a_deleted_file(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    prepared = _prepared(tmp_path)
    first = OpenAIProvider(store=JobStore(tmp_path / "a.db")).upload(
        prepared, _cfg(tmp_path), Recorder()
    )
    # another machine (empty store) finds the content-named file in the provider's list
    other = OpenAIProvider(store=JobStore(tmp_path / "b.db"))
    found = other.upload(prepared, _cfg(tmp_path), Recorder())
    assert found.reused and found.training == first.training
    # the remote file was deleted: the cached id is not trusted, the bytes go up again
    del fake.files[first.training]
    fresh = other.upload(prepared, _cfg(tmp_path), Recorder())
    assert not fresh.reused and fresh.training != first.training
    assert len(fake.calls("POST", "/files")) == 2


def test_sft_job_body_is_exact(provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path) -> None:
    valid = _prepared(tmp_path, rows=3, name="valid.jsonl")
    prepared = _prepared(tmp_path).model_copy(
        update={"validation": valid.training, "validation_sha256": valid.sha256}
    )
    cfg = _cfg(
        tmp_path,
        epochs=2,
        batch_size=4,
        learning_rate_multiplier=0.5,
        suffix="support",
        seed=7,
        validation=tmp_path / "v.jsonl",
    )
    uploaded = provider.upload(prepared, cfg, Recorder())
    ref = provider.launch(uploaded, cfg, "run-abc")
    (post,) = fake.calls("POST", "/fine_tuning/jobs")
    assert post.body == {
        "model": "gpt-4.1-mini",
        "training_file": uploaded.training,
        "validation_file": uploaded.validation,
        "suffix": "support",
        "seed": 7,
        "metadata": {"tuneport_run_id": "run-abc"},
        "method": {
            "type": "supervised",
            "supervised": {
                "hyperparameters": {
                    "n_epochs": 2,
                    "batch_size": 4,
                    "learning_rate_multiplier": 0.5,
                }
            },
        },
    }
    assert ref == JobRef(
        provider="openai", remote_id=fake.jobs[ref.remote_id]["id"], run_id="run-abc"
    )


def test_dpo_job_body_carries_beta_and_metadata(
    fake: FakeOpenAI, store: JobStore, tmp_path: Path
) -> None:
    provider = OpenAIProvider(store=store, beta=0.2, metadata={"team": "search"})
    _launch(provider, tmp_path, method="dpo", model="gpt-4.1")
    (post,) = fake.calls("POST", "/fine_tuning/jobs")
    assert post.body == {
        "model": "gpt-4.1",
        "training_file": next(iter(fake.files)),
        "metadata": {"team": "search", "tuneport_run_id": "run-1"},
        "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}},
    }


def test_poll_to_success(provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path) -> None:
    ref = _launch(provider, tmp_path, suffix="s1")
    seen = []
    while True:
        status = provider.status(ref)
        seen.append((status.state, status.raw_state))
        if status.state.terminal:
            break
    assert seen == [
        (JobState.QUEUED, "queued"),
        (JobState.RUNNING, "running"),
        (JobState.RUNNING, "running"),
        (JobState.SUCCEEDED, "succeeded"),
    ]
    assert status.tuned_model is not None and status.tuned_model.startswith("ft:gpt-4.1-mini:")
    assert status.trained_tokens and status.trained_tokens > 0
    assert status.epochs == 3 and status.run_id == "run-1"
    assert status.error is None and status.raw["id"] == ref.remote_id


def test_poll_to_failure_keeps_the_provider_message(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.fail_next_job = "Training file has 3 examples with no assistant message"
    ref = _launch(provider, tmp_path)
    while not (status := provider.status(ref)).state.terminal:
        pass
    assert status.state is JobState.FAILED and status.raw_state == "failed"
    assert status.error == (
        "Training file has 3 examples with no assistant message (invalid_training_file)"
    )


def test_cancel(provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path) -> None:
    ref = _launch(provider, tmp_path)
    provider.cancel(ref)
    assert provider.status(ref).state is JobState.CANCELLED
    assert fake.calls("POST", f"/fine_tuning/jobs/{ref.remote_id}/cancel")


def test_events_paginate_with_after_and_come_oldest_first(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path
) -> None:
    ref = _launch(provider, tmp_path)
    for i in range(250):
        fake._event(
            ref.remote_id,
            "info",
            f"Step {i}: loss={1 / (i + 1):.3f}",
            {"step": i, "train_loss": 1 / (i + 1)},
        )
    events = list(provider.events(ref))
    assert len(events) == 251
    assert events[0].message.startswith("Created fine-tuning job")
    assert [e.step for e in events[1:4]] == [0, 1, 2]
    assert events[-1].loss == pytest.approx(1 / 250)
    pages = fake.calls("GET", f"/fine_tuning/jobs/{ref.remote_id}/events")
    assert len(pages) == 3 and "after" in pages[1].query

    newer = list(provider.events(ref, after=events[200].id))
    assert [e.id for e in newer] == [e.id for e in events[201:]]
    assert list(provider.events(ref, after=events[-1].id)) == []


def test_checkpoints_and_list(provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path) -> None:
    ref = _launch(provider, tmp_path)
    for _ in range(4):
        provider.status(ref)
    checkpoints = provider.checkpoints(ref)
    assert [c.step for c in checkpoints] == [1, 2]
    assert checkpoints[0].metrics["train_loss"] == 2.0
    assert checkpoints[0].model and checkpoints[0].model.startswith("ft:")
    listed = provider.list_jobs()
    assert [s.remote_id for s in listed] == [ref.remote_id]


def test_chat_with_a_tuned_model(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    reply = provider.chat(
        "ft:gpt-4.1-mini:org::abc",
        [Message(role="system", content="be brief"), Message(role="user", content="hi")],
        ChatOptions(temperature=0.0, max_tokens=20),
    )
    assert reply == Message(role="assistant", content="echo[ft:gpt-4.1-mini:org::abc]: hi")
    assert fake.chats[0] == {
        "model": "ft:gpt-4.1-mini:org::abc",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.0,
        "max_completion_tokens": 20,
    }


def test_rate_limit_then_success_retries_without_sleeping_long(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path, slept: list[float]
) -> None:
    fake.fail("POST", "/fine_tuning/jobs", 429, headers={"retry-after-ms": "1"}, times=2)
    ref = _launch(provider, tmp_path)
    assert len(fake.jobs) == 1 and ref.remote_id in fake.jobs
    assert slept == [0.001, 0.001]


def test_500_after_the_server_created_the_job_never_duplicates(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path, slept: list[float]
) -> None:
    fake.fail("POST", "/fine_tuning/jobs", 500, after=True)
    ref = _launch(provider, tmp_path, run_id="run-once")
    assert len(fake.jobs) == 1
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 1  # reconciled, not re-sent
    assert fake.jobs[ref.remote_id]["metadata"] == {"tuneport_run_id": "run-once"}
    lookup = fake.calls("GET", "/fine_tuning/jobs")[-1]
    assert lookup.query["metadata[tuneport_run_id]"] == ["run-once"]  # filtered server side
    assert len(slept) == 1
    # launching the same run again (e.g. after a crash) finds the job too
    again = provider.launch(UploadedData(training="file-x"), _cfg(tmp_path), "run-once")
    assert again.remote_id == ref.remote_id and len(fake.jobs) == 1


def test_reconcile_scans_recent_jobs_when_the_server_ignores_the_filter(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.filter_metadata = False
    for run_id in ("run-other-1", "run-other-2"):
        _launch(provider, tmp_path, run_id=run_id)
    fake.fail("POST", "/fine_tuning/jobs", 502, after=True)
    ref = _launch(provider, tmp_path, run_id="run-mine")
    assert len(fake.jobs) == 3
    assert fake.jobs[ref.remote_id]["metadata"] == {"tuneport_run_id": "run-mine"}


def test_connection_error_on_create_is_reconciled(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path, slept: list[float]
) -> None:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    calls = 0
    real = provider.client.fine_tuning.jobs.create

    def flaky(**body: Any) -> Any:
        nonlocal calls
        calls += 1
        real(**body)  # created server side ...
        import httpx2
        import openai

        # ... reply lost. The SDK types `request` as its own httpx2.Request and reads its headers:
        # give it a real one, as the SDK itself would (openai 3.63 refuses None).
        request = httpx2.Request("POST", f"{fake.base_url}/fine_tuning/jobs")
        raise openai.APIConnectionError(request=request)

    provider.client.fine_tuning.jobs.create = flaky  # type: ignore[method-assign]
    ref = provider.launch(uploaded, _cfg(tmp_path), "run-conn")
    assert calls == 1 and len(fake.jobs) == 1 and ref.remote_id in fake.jobs


def test_base_url_option_works_without_the_env(
    fake: FakeOpenAI, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    provider = OpenAIProvider(store=store, base_url=fake.base_url, api_key=KEY)
    assert provider.list_jobs() == []
    assert fake.calls("GET", "/fine_tuning/jobs")


@pytest.mark.parametrize(
    ("status", "code", "message", "kind", "expected"),
    [
        (429, "insufficient_quota", "You exceeded your current quota", QuotaError, "billing"),
        (400, "model_not_available", "Model gpt-9 is not available", NotFoundError, "gpt-4.1-mini"),
        (404, None, "Model gpt-9 cannot be fine-tuned", NotFoundError, "tunable base model"),
        (
            400,
            "invalid_file",
            "File has 3 lines missing messages",
            ProviderError,
            "tuneport validate",
        ),
        (
            403,
            None,
            "Fine-tuning is not available for new users",
            AuthError,
            "winding down",
        ),
        (503, None, "overloaded", ProviderError, "status.openai.com"),
    ],
)
def test_api_errors_become_one_line_with_the_fix(
    provider: OpenAIProvider,
    fake: FakeOpenAI,
    tmp_path: Path,
    status: int,
    code: str | None,
    message: str,
    kind: type[ProviderError],
    expected: str,
) -> None:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    fake.fail("POST", "/fine_tuning/jobs", status, message=message, code=code, times=99)
    with pytest.raises(ProviderError) as info:
        provider.launch(uploaded, _cfg(tmp_path, model="gpt-9"), "run-e")
    assert type(info.value) is kind
    line = info.value.one_line()
    assert expected in line and "\n" not in line
    assert not fake.jobs


def test_quota_exhaustion_is_not_retried(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path, slept: list[float]
) -> None:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    fake.fail("POST", "/fine_tuning/jobs", 429, code="insufficient_quota", times=99)
    with pytest.raises(QuotaError):
        provider.launch(uploaded, _cfg(tmp_path), "run-q")
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 1 and slept == []


def test_bad_key_never_leaks(
    fake: FakeOpenAI, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-test-SECRET123456-wrong"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    provider = OpenAIProvider(store=store)
    with pytest.raises(AuthError) as info:
        provider.list_jobs()
    assert fake.requests[-1].headers["authorization"] == f"Bearer {wrong}"
    text = f"{info.value} {info.value!r} {info.value.one_line()}"
    assert "SECRET123456" not in text and "OPENAI_API_KEY" in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_cleanup_deletes_uploaded_files(
    provider: OpenAIProvider, fake: FakeOpenAI, tmp_path: Path, store: JobStore
) -> None:
    ref = _launch(provider, tmp_path)
    training = fake.jobs[ref.remote_id]["training_file"]
    provider.cleanup(ref)
    assert training not in fake.files
    assert fake.calls("DELETE", f"/files/{training}")
    provider.cleanup(ref)  # idempotent: already gone is fine


def test_preflight_reports_every_problem_before_anything_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = OpenAIProvider(beta=0.1, metadata={f"k{i}": "v" for i in range(16)})
    with pytest.raises(ConfigError) as info:
        provider.preflight(_cfg(tmp_path, suffix="s" * 65))
    text = info.value.one_line()
    for part in ("OPENAI_API_KEY is not set", "suffix is 65 characters", "metadata", "beta"):
        assert part in text, part
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    OpenAIProvider().preflight(_cfg(tmp_path, suffix="ok"))
