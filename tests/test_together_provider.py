"""The Together backend driving the real ``together`` SDK against tests/fakes/together_server.py.

Request bodies are checked against the SDK's own types (contract tests), and the trust cases
(lost replies, re-runs after a crash) are checked to make one upload and one paid job.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ConfigDict, ValidationError

from tests.fakes.together_server import FakeTogether
from tests.hosted_helpers import Clock, Recorder, prepared, rows, strict, write_rows
from tuneport.errors import AuthError, ConfigError, NotFoundError, ProviderError
from tuneport.jobs.store import JobStore
from tuneport.providers import registry
from tuneport.providers.base import ChatOptions, PreparedData, Provider
from tuneport.providers.together import BACKEND, estimate_extras
from tuneport.providers.together.jobs import STATES, event_level, run_tag
from tuneport.providers.together.provider import TogetherProvider
from tuneport.providers.together.quote import QuotedCounts, scale_to_total
from tuneport.schemas import JobConfig, JobRef, JobState, Message

KEY = "tg-test-SECRET-0123456789"
MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTogether]:
    with FakeTogether(api_key=KEY) as server:
        monkeypatch.setenv("TOGETHER_API_KEY", KEY)
        monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
        yield server


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs.db")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(fake: FakeTogether, store: JobStore, clock: Clock) -> TogetherProvider:
    return TogetherProvider(sleep=clock.sleep, clock=clock, store=store)


def _cfg(tmp_path: Path, **kw: Any) -> JobConfig:
    return JobConfig(provider="together", model=MODEL, data=tmp_path / "data.jsonl", **kw)


def _prepared(
    tmp_path: Path, rows: int = 6, name: str = "train.jsonl", dpo: bool = False
) -> PreparedData:
    return prepared(tmp_path, rows, name, dpo)


def _put_count(fake: FakeTogether) -> int:
    return len(fake.calls("PUT", r"^/_upload/"))


# --- registry, descriptor, import weight ------------------------------------------------------


def test_registry_builds_the_backend_and_it_satisfies_the_protocol(fake: FakeTogether) -> None:
    backend = registry.get("together", {"base_url": fake.base_url})
    assert isinstance(backend, Provider)
    assert registry.backend("together") is BACKEND
    assert BACKEND.options and "lora_r" in BACKEND.options


def test_importing_the_cli_and_the_descriptor_loads_no_sdk() -> None:
    import subprocess

    code = (
        "import sys, tuneport.cli.app;"
        "from tuneport.providers import registry;"
        "registry.backend('together'); registry.backend('fireworks');"
        "print(','.join(m for m in ('together', 'fireworks') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_missing_sdk_is_one_error_naming_the_extra(
    fake: FakeTogether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "together", None)  # import together -> ImportError
    with pytest.raises(ConfigError) as info:
        _ = TogetherProvider().client
    assert "pip install 'tuneport[together]'" in info.value.one_line()


def test_doctor_names_the_missing_sdk_and_asks_no_server_without_it(
    fake: FakeTogether, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = TogetherProvider().doctor(5.0)
    assert [(c.name, c.status) for c in checks] == [
        ("API key", "ok"),
        ("SDK", "ok"),
        ("server", "ok"),
    ]
    assert fake.calls("GET", r"^/v1/fine-tunes/models/limits$")[-1].query == {"model_name": [MODEL]}
    monkeypatch.setitem(sys.modules, "together", None)  # import together -> ImportError
    before = len(fake.requests)
    checks = TogetherProvider().doctor(5.0)
    assert [(c.name, c.status) for c in checks] == [("API key", "ok"), ("SDK", "fail")]
    assert "pip install 'tuneport[together]'" in (checks[1].fix or "")
    assert len(fake.requests) == before


# --- preflight ----------------------------------------------------------------------------------


def test_preflight_lists_every_settings_problem_without_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    backend = TogetherProvider(base_url="http://127.0.0.1:9/v1", dpo_beta=0.1)
    with pytest.raises(ConfigError) as info:
        backend.preflight(_cfg(tmp_path, suffix="x" * 30))
    text = info.value.one_line()
    assert "TOGETHER_API_KEY is not set" in text
    assert "ends with /v1" in text and "the SDK adds /v1" in text
    assert "suffix is 30 characters" in text and "shorten --suffix to 27" in text
    assert "dpo_beta applies to --method dpo only" in text


def test_preflight_checks_settings_against_the_models_limits(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    backend = TogetherProvider(lora_r=128, n_checkpoints=50)
    with pytest.raises(ConfigError) as info:
        backend.preflight(_cfg(tmp_path, batch_size=64, epochs=30))
    text = info.value.one_line()
    # the fake's limits: batch 1..8, 20 epochs, rank 64, 10 checkpoints
    for part in ("batch_size 64", "epochs 30", "lora_r 128", "n_checkpoints 50"):
        assert part in text
    assert [c.path for c in fake.requests] == ["/v1/fine-tunes/models/limits"]
    provider.preflight(_cfg(tmp_path, batch_size=8, epochs=3))  # within range: fine


def test_preflight_refuses_an_untunable_model_before_anything_is_uploaded(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    fake.tunable_models = {"some/other-model"}
    with pytest.raises(NotFoundError) as info:
        provider.preflight(_cfg(tmp_path))
    assert f"model {MODEL} cannot be fine-tuned on Together" in info.value.one_line()
    assert not fake.calls("POST", r"^/v1/files$")


def test_a_bad_key_is_an_auth_error_that_never_shows_the_key(
    fake: FakeTogether, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "tg-wrong-key-987654321"
    monkeypatch.setenv("TOGETHER_API_KEY", wrong)
    with pytest.raises(AuthError) as info:
        TogetherProvider(sleep=lambda _s: None).preflight(_cfg(tmp_path))
    assert "Together rejected the API key" in info.value.one_line()
    assert wrong not in info.value.one_line() and KEY not in info.value.one_line()


# --- upload ------------------------------------------------------------------------------------


def test_upload_sends_bytes_once_and_waits_for_validation(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    prepared = _prepared(tmp_path)
    progress = Recorder()
    first = provider.upload(prepared, _cfg(tmp_path), progress)
    assert not first.reused
    assert fake.files[first.training]["processing_status"] == "COMPLETED"
    assert fake.file_bytes[first.training] == prepared.training.read_bytes()
    assert progress.advanced == prepared.training.stat().st_size
    # the presigned PUT carries no key
    (put,) = fake.calls("PUT", r"^/_upload/")
    assert "authorization" not in put.headers
    # same bytes again: the store remembers them, nothing is sent
    again = provider.upload(prepared, _cfg(tmp_path), Recorder())
    assert again.training == first.training and again.reused
    assert _put_count(fake) == 1


def test_upload_reuses_identical_bytes_known_to_together_but_not_to_the_store(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    prepared = _prepared(tmp_path)
    first = provider.upload(prepared, _cfg(tmp_path), Recorder())
    fresh = TogetherProvider(sleep=lambda _s: None)  # another machine: empty upload index
    progress = Recorder()
    again = fresh.upload(prepared, _cfg(tmp_path), progress)
    assert again.training == first.training and again.reused
    assert any("identical bytes already uploaded" in n for n in progress.notes)
    assert _put_count(fake) == 1


def test_a_lost_upload_reply_leaves_no_empty_file_behind(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    prepared = _prepared(tmp_path)
    # the server registers the checksum, the reply is lost: a retry meets 409 + an empty file
    fake.drop("POST", r"^/v1/files$")
    uploaded = provider.upload(prepared, _cfg(tmp_path), Recorder())
    assert list(fake.files) == [uploaded.training]  # the empty file was deleted
    assert fake.files[uploaded.training]["processing_status"] == "COMPLETED"
    assert fake.file_bytes[uploaded.training] == prepared.training.read_bytes()
    assert _put_count(fake) == 1


def test_a_file_together_refuses_is_a_provider_error(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"messages": []}\n{"text": "plain"}\n')
    prepared = PreparedData(
        training=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), examples=2
    )
    with pytest.raises(ProviderError) as info:
        provider.upload(prepared, _cfg(tmp_path), Recorder())
    assert "Together refused mixed.jsonl (INVALID_FORMAT)" in info.value.one_line()


# --- create: body, contract, idempotency ---------------------------------------------------------


def test_create_arguments_and_request_body_match_the_sdk_types(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    from together.lib.types.fine_tuning import FinetuneRequest
    from together.types.fine_tuning_estimate_price_params import (
        FineTuningEstimatePriceParams,
    )

    class StrictRequest(FinetuneRequest):
        model_config = ConfigDict(extra="forbid")

    provider = TogetherProvider(
        lora_r=8, lora_alpha=16, n_checkpoints=2, warmup_ratio=0.1, max_seq_length=4096
    )
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    cfg = _cfg(
        tmp_path, epochs=3, batch_size=4, suffix="demo", seed=7, learning_rate_multiplier=2.0
    )
    kwargs = provider.job_kwargs(uploaded, cfg, "run-contract")
    inspect.signature(provider.client.fine_tuning.create).bind(**kwargs, model_limits=None)
    provider.launch(uploaded, cfg, "run-contract")

    (call,) = fake.calls("POST", r"^/v1/fine-tunes$")
    body = StrictRequest.model_validate(call.body)
    assert body.model == MODEL and body.training_file == uploaded.training
    assert body.n_epochs == 3 and body.batch_size == 4 and body.random_seed == 7
    assert body.learning_rate == pytest.approx(2e-5)  # multiplier x the SDK default 1e-5
    assert body.suffix == f"demo-{run_tag('run-contract')}"
    assert call.body["training_type"] == {
        "type": "Lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_trainable_modules": "all-linear",
    }
    assert call.body["training_method"] == {"method": "sft", "train_on_inputs": "auto"}
    assert call.body["n_checkpoints"] == 2 and call.body["max_seq_length"] == 4096
    (estimate,) = fake.calls("POST", r"estimate-price$")
    strict(FineTuningEstimatePriceParams).validate_python(estimate.body)


def test_dpo_and_an_explicit_learning_rate(
    fake: FakeTogether, tmp_path: Path, store: JobStore
) -> None:
    provider = TogetherProvider(learning_rate=3e-6, dpo_beta=0.2, lora=False, store=store)
    prepared = _prepared(tmp_path, dpo=True)
    cfg = _cfg(tmp_path, method="dpo", learning_rate_multiplier=5.0)
    provider.launch(provider.upload(prepared, cfg, Recorder()), cfg, "run-dpo")
    (call,) = fake.calls("POST", r"^/v1/fine-tunes$")
    assert call.body["learning_rate"] == pytest.approx(3e-6)  # the option wins
    assert call.body["training_method"]["method"] == "dpo"
    assert call.body["training_method"]["dpo_beta"] == 0.2
    assert call.body["training_type"] == {"type": "Full"}
    assert "train_on_inputs" not in call.body["training_method"]


@pytest.mark.parametrize("fault", ["drop", "garble", "500"])
def test_a_create_whose_outcome_is_unknown_makes_one_job(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path, fault: str
) -> None:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    if fault == "drop":  # created, reply lost
        fake.drop("POST", r"^/v1/fine-tunes$")
    elif fault == "garble":  # created, reply not JSON
        fake.garble("POST", r"^/v1/fine-tunes$")
    else:  # refused before acting: the retry creates it
        fake.fail("POST", r"^/v1/fine-tunes$", 500)
    ref = provider.launch(uploaded, _cfg(tmp_path), "run-lost")
    assert list(fake.jobs) == [ref.remote_id]
    sent = len(fake.calls("POST", r"^/v1/fine-tunes$"))
    assert sent == (2 if fault == "500" else 1)  # looked up, not sent again


def test_a_rerun_after_a_crash_finds_the_job_instead_of_creating_another(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    first = provider.launch(uploaded, _cfg(tmp_path, suffix="s"), "run-crash")
    # a new process (nothing in memory) launches the same run again
    again = TogetherProvider(sleep=lambda _s: None).launch(
        uploaded, _cfg(tmp_path, suffix="s"), "run-crash"
    )
    assert again.remote_id == first.remote_id
    assert len(fake.jobs) == 1
    # another run id is another job
    other = provider.launch(uploaded, _cfg(tmp_path, suffix="s"), "run-other")
    assert other.remote_id != first.remote_id and len(fake.jobs) == 2


def test_the_sdk_never_retries_by_itself(
    fake: FakeTogether, tmp_path: Path, store: JobStore
) -> None:
    provider = TogetherProvider(max_attempts=1, store=store)
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    fake.fail("POST", r"^/v1/fine-tunes$", 503, times=5)
    with pytest.raises(ProviderError) as info:
        provider.launch(uploaded, _cfg(tmp_path), "run-once")
    assert "Together server error 503" in info.value.one_line()
    assert len(fake.calls("POST", r"^/v1/fine-tunes$")) == 1  # max_retries=0 in the SDK


# --- status, events, checkpoints, list, cancel ---------------------------------------------------


def test_every_status_maps_to_a_tuneport_state() -> None:
    from together.lib.types.fine_tuning import FinetuneJobStatus

    assert {s.value for s in FinetuneJobStatus} == set(STATES)
    assert STATES["user_error"] is JobState.FAILED
    assert STATES["completed"] is JobState.SUCCEEDED
    assert STATES["cancel_requested"] is JobState.RUNNING


def test_status_events_checkpoints_and_metrics_through_a_run(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    ref = provider.launch(uploaded, _cfg(tmp_path, epochs=2), "run-watch")
    status = provider.status(ref)
    assert status.state is JobState.QUEUED and status.raw_state == "pending"
    assert status.tuned_model is None
    first = list(provider.events(ref))
    assert [e.message for e in first] == ["Fine tune request created"]
    fake.advance(2)  # queued -> running (one training step, a checkpoint, a metric)
    fresh = list(provider.events(ref, after=first[-1].id))
    assert [e.message for e in fresh] == ["Training started", "Checkpoint saved at step 1"]
    assert fresh[-1].step == 1 and fresh[-1].loss == pytest.approx(2.0)
    assert list(provider.events(ref, after=fresh[-1].id)) == []
    fake.advance()
    done = provider.status(ref)
    assert done.state is JobState.SUCCEEDED
    assert done.tuned_model == fake.jobs[ref.remote_id].data["model_output_name"]
    assert done.trained_tokens == fake.jobs[ref.remote_id].data["token_count"] > 0
    assert done.progress == 1.0 and done.epochs == 2
    points = provider.checkpoints(ref)
    assert [(c.id, c.model) for c in points] == [
        (f"{ref.remote_id}:1", None),
        (ref.remote_id, done.tuned_model),
    ]
    assert points[0].metrics == {"train_loss": 2.0}
    assert [j.remote_id for j in provider.list_jobs()] == [ref.remote_id]


def test_a_failed_job_reports_the_servers_reason(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    fake.fail_next_job = "CUDA out of memory at step 3"
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    ref = provider.launch(uploaded, _cfg(tmp_path), "run-fail")
    fake.advance(3)
    status = provider.status(ref)
    assert status.state is JobState.FAILED and status.raw_state == "error"
    assert status.error == "CUDA out of memory at step 3"


def test_the_documented_status_flow_with_uploading_ends_in_a_tuned_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """docs.together.ai quickstart: pending -> queued -> running -> uploading -> completed."""
    flow = ("pending", "queued", "running", "uploading", "completed")
    with FakeTogether(api_key=KEY, script=flow) as fake:
        monkeypatch.setenv("TOGETHER_API_KEY", KEY)
        monkeypatch.setenv("TOGETHER_BASE_URL", fake.base_url)
        provider = TogetherProvider()
        uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
        ref = provider.launch(uploaded, _cfg(tmp_path), "run-flow")
        seen = [provider.status(ref)]
        for _ in flow[1:]:
            fake.advance()
            seen.append(provider.status(ref))
    assert [s.raw_state for s in seen] == list(flow)
    assert [s.state for s in seen] == [
        JobState.QUEUED,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.SUCCEEDED,
    ]
    assert seen[-1].tuned_model and not any(s.tuned_model for s in seen[:-1])


def test_capitalised_event_levels_still_carry_the_failure_reason(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    """The SDK's own enum has levels ``Info``/``Error`` and types ``JOB_ERROR`` (the spec lists
    lowercase names): an error event in either case is the failure reason and an error event."""
    fake.fail_next_job = "CUDA out of memory at step 3"
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    ref = provider.launch(uploaded, _cfg(tmp_path), "run-fail-upper")
    fake.advance(3)
    for job in fake.jobs.values():
        for event in job.events:
            event["level"] = str(event["level"]).capitalize()
            event["type"] = str(event["type"]).upper()
    status = provider.status(ref)
    assert status.state is JobState.FAILED and status.error == "CUDA out of memory at step 3"
    levels = {e.message: e.level for e in provider.events(ref)}
    assert levels["CUDA out of memory at step 3"] == "error"
    assert {event_level(v) for v in ("Info", "info", "Warning", "ERROR", None)} == {
        "info",
        "warning",
        "error",
    }


def test_chat_goes_to_the_sdks_inference_host_unless_a_base_url_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """together 3.x sends chat to api-inference.together.ai unless base_url was given
    (together/resources/chat/completions.py); tuneport passes one only when the user set it."""
    monkeypatch.delenv("TOGETHER_BASE_URL", raising=False)
    monkeypatch.setenv("TOGETHER_API_KEY", "tg-test-HOST-0123456789")
    default = TogetherProvider().client
    assert default._base_url_overridden is False  # the SDK's routing switch
    assert str(default.base_url).rstrip("/") == "https://api.together.ai"
    proxied = TogetherProvider(base_url="http://127.0.0.1:9/").client
    assert proxied._base_url_overridden is True
    assert str(proxied.base_url).rstrip("/") == "http://127.0.0.1:9"


def test_cancel(fake: FakeTogether, provider: TogetherProvider, tmp_path: Path) -> None:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    ref = provider.launch(uploaded, _cfg(tmp_path), "run-cancel")
    provider.cancel(ref)
    assert provider.status(ref).raw_state == "cancel_requested"
    fake.advance()
    assert provider.status(ref).state is JobState.CANCELLED


# --- chat and cleanup --------------------------------------------------------------------------


def test_chat_with_a_tuned_model_that_no_endpoint_serves_says_what_to_do(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    ref = provider.launch(uploaded, _cfg(tmp_path), "run-chat")
    fake.advance(3)
    tuned = provider.status(ref).tuned_model
    assert tuned
    hi = [Message(role="user", content="hi")]
    with pytest.raises(ProviderError) as info:
        provider.chat(tuned, hi, ChatOptions())
    text = info.value.one_line()
    assert f"Together serves {tuned} only from a dedicated endpoint" in text
    assert "tg beta endpoints deploy" in text and "bills per minute" in text
    fake.deploy(tuned)  # the user started an endpoint
    reply = provider.chat(tuned, hi, ChatOptions(temperature=0.2, max_tokens=20))
    assert reply.content == f"echo[{tuned}]: hi"
    assert fake.chats[-1]["temperature"] == 0.2 and fake.chats[-1]["max_tokens"] == 20


def test_chat_streams_the_reply_as_together_sends_it(
    fake: FakeTogether, provider: TogetherProvider
) -> None:
    hi = [Message(role="user", content="one two three")]
    pieces = list(provider.chat_stream(MODEL, hi, ChatOptions(max_tokens=20)))
    assert len(pieces) > 3 and "".join(pieces) == f"echo[{MODEL}]: one two three"
    assert fake.chats[-1]["stream"] is True and fake.chats[-1]["max_tokens"] == 20


def test_a_chat_stream_opens_like_a_chat_and_maps_its_errors(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    """Refused before the stream opens: the same one line as a plain chat (the dedicated
    endpoint rule); a server error is retried until the stream opens."""
    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    ref = provider.launch(uploaded, _cfg(tmp_path), "run-stream")
    fake.advance(3)
    tuned = provider.status(ref).tuned_model
    assert tuned
    hi = [Message(role="user", content="hi")]
    with pytest.raises(ProviderError) as info:
        list(provider.chat_stream(tuned, hi, ChatOptions()))
    assert f"Together serves {tuned} only from a dedicated endpoint" in info.value.one_line()
    fake.deploy(tuned)
    fake.fail("POST", r"^/v1/chat/completions$", 503)
    assert "".join(provider.chat_stream(tuned, hi, ChatOptions())) == f"echo[{tuned}]: hi"
    assert len(fake.calls("POST", r"^/v1/chat/completions$")) == 3


@pytest.mark.parametrize("finish_reason", ["stop", "eos"])
def test_a_stream_answered_with_one_json_reply_is_read_whole(
    fake: FakeTogether, provider: TogetherProvider, finish_reason: str
) -> None:
    """A server (a proxy at TOGETHER_BASE_URL) that ignores stream=True and sends one
    chat.completion: read whole with Together's own type, whose finish reasons include "eos"
    (OpenAI's type refuses it, so the reply was called unreadable)."""
    fake.stream_as_json = True
    fake.finish_reason = finish_reason
    hi = [Message(role="user", content="hello there")]
    assert list(provider.chat_stream(MODEL, hi, ChatOptions())) == [f"echo[{MODEL}]: hello there"]
    assert fake.chats[-1]["stream"] is True


def test_a_connection_dropped_mid_reply_is_one_line_and_never_resent(
    fake: FakeTogether, provider: TogetherProvider
) -> None:
    fake.mangle("POST", r"^/v1/chat/completions$", "truncated")
    hi = [Message(role="user", content="one two three four five six")]
    shown: list[str] = []
    with pytest.raises(ProviderError) as info:
        for piece in provider.chat_stream(MODEL, hi, ChatOptions()):
            shown.append(piece)
    assert shown  # the first half of the reply arrived before the drop
    assert info.value.message == (
        f"the connection to Together at {fake.base_url} dropped mid-reply"
    )
    assert info.value.hint == "send the message again"
    assert len(fake.calls("POST", r"^/v1/chat/completions$")) == 1  # pieces were shown


def test_chat_sends_the_name_of_a_tool_result_as_together_takes_it(
    fake: FakeTogether, provider: TogetherProvider
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    history = [
        Message(role="user", content="hi"),
        Message.model_validate({"role": "assistant", "tool_calls": [call]}),
        Message(role="tool", content="42", tool_call_id="c1", name="f"),
    ]
    provider.chat(MODEL, history, ChatOptions())
    assert fake.chats[-1]["messages"][2] == {
        "role": "tool",
        "content": "42",
        "tool_call_id": "c1",
        "name": "f",
    }


def test_cleanup_deletes_the_files_of_a_finished_job_only(
    fake: FakeTogether, provider: TogetherProvider, store: JobStore, tmp_path: Path
) -> None:
    prepared = _prepared(tmp_path)
    uploaded = provider.upload(prepared, _cfg(tmp_path), Recorder())
    ref = provider.launch(uploaded, _cfg(tmp_path), "run-clean")
    with pytest.raises(ConfigError) as info:
        provider.cleanup(ref)
    assert "still pending" in info.value.one_line()
    fake.advance(3)
    provider.cleanup(ref)
    assert uploaded.training not in fake.files
    assert store.upload_get(provider.store_key, prepared.sha256) is None


# --- tokens and price --------------------------------------------------------------------------


def test_scale_to_total_keeps_the_total_exact() -> None:
    assert scale_to_total([1, 1, 1], 10) == [4, 3, 3]
    assert sum(scale_to_total([5, 7, 11, 2], 1001)) == 1001
    assert scale_to_total([0, 0], 3) == [2, 1]
    assert scale_to_total([], 5) == []


def test_online_counts_come_from_estimate_price_and_the_upload_is_reused_by_train(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    from tuneport.data.records import load_records

    data = write_rows(tmp_path / "data.jsonl", rows(5))
    counter = registry.counter_for("together", MODEL, online=True)
    assert counter.exact and counter.label == f"Together estimate-price ({MODEL})"
    # through the one counting path
    from tuneport.tokens.measure import count_path

    counts = count_path(data, counter)
    assert isinstance(counts, QuotedCounts) and counts.quote is not None
    (file_id,) = fake.files
    assert counts.total == counts.quote.tokens == fake.file_bytes[file_id].__len__() // 4
    assert counts.examples == 5 and list(counts.lines) == [1, 2, 3, 4, 5]
    # train prepares the same bytes: Together's checksum answers with the same file
    prepared = provider.prepare(load_records(data), _cfg(tmp_path), tmp_path / "run", Recorder())
    assert provider.upload(prepared, _cfg(tmp_path), Recorder()).training == file_id
    assert _put_count(fake) == 1


def test_train_reuses_the_exact_count_of_an_earlier_online_estimate(
    fake: FakeTogether, tmp_path: Path
) -> None:
    """`estimate --online` then `train` (and `estimate`) of the same file: Together's count, not
    the ±30 % approximation; once the file changes, the approximation again."""
    from tuneport.jobs import quote
    from tuneport.tokens.measure import count_path

    data = write_rows(tmp_path / "data.jsonl", rows(5))
    before = quote.estimate(_cfg(tmp_path))  # what train computes, nothing asked online yet
    assert not before.exact
    online = count_path(data, registry.counter_for("together", MODEL, online=True))
    after = quote.estimate(_cfg(tmp_path))  # train's estimate: the offline counter
    assert after.exact and after.tokens == online.total != before.tokens
    offline = quote.quote_for("together", MODEL)
    assert quote.counted_with(offline, after) == (
        f"Together estimate-price ({MODEL}), remembered from `estimate --online` of this file"
    )
    assert not any("approximate" in w for w in after.warnings)
    assert len(fake.calls("POST", r"^/v1/fine-tunes/estimate-price$")) == 1  # not asked again
    write_rows(data, rows(6))
    assert not quote.estimate(_cfg(tmp_path)).exact


def test_the_estimate_shows_togethers_own_quote(tmp_path: Path) -> None:
    from tuneport.pricing.table import load_prices
    from tuneport.providers.together.quote import ServerQuote

    price = load_prices().lookup("together", MODEL)
    counts = QuotedCounts(
        quote=ServerQuote(tokens=2_000, price_usd=0.00096, allowed=False, user_limit=5.0)
    )
    counts.tokens.extend([1_000, 1_000])
    extras = estimate_extras(counts, _cfg(tmp_path, epochs=3), price)
    assert extras.notes == [  # information, not a warning
        "Together's own estimate (estimate-price): $0.0029 for 6,000 tokens (3 epochs), "
        "i.e. $0.48/1M"
    ]
    assert extras.warnings == ["Together says this job exceeds your credit limit ($5.00)"]
    full = estimate_extras(counts, _cfg(tmp_path, options={"lora": False, "n_evals": 2}), price)
    assert any("full fine-tuning" in w for w in full.warnings)
    assert any("n_evals=2" in w for w in full.warnings)


def test_offline_counts_use_the_base_models_tokenizer_when_it_is_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuneport.providers import together
    from tuneport.tokens import hf

    asked: list[str] = []

    class Tok:
        chat_template = "x"

        def apply_chat_template(self, messages: Any, **_kw: Any) -> list[int]:
            return [0] * (10 * len(messages))

        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [0] * len(text)

    def fake_load(name: str) -> Any:
        asked.append(name)
        return Tok() if name == "meta-llama/Llama-3.1-8B-Instruct" else None

    monkeypatch.setattr(hf, "load_hf_tokenizer", fake_load)
    counter = together.counter(MODEL, {})
    assert counter.exact and "meta-llama/Llama-3.1-8B-Instruct tokenizer" in counter.label
    assert asked[0] == MODEL  # the id itself first (a local folder or a cached repo)
    monkeypatch.setattr(hf, "load_hf_tokenizer", lambda name: None)
    approx = together.counter("Qwen/Qwen3-8B", {})
    assert not approx.exact and approx.error_band == 0.3
    assert "base model's tokenizer not in the local Hugging Face cache" in approx.label
    # each template family adds its own tokens per message (core/tokens/templates.py)
    assert "chatml chat template" in approx.label
    assert "llama-3.1 chat template" in together.counter(MODEL, {}).label


def test_unknown_option_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        TogetherProvider(bucket="x")
    assert "unknown option 'bucket' for provider together" in info.value.one_line()
    assert "lora_r" in info.value.one_line()


def test_rules_follow_togethers_conversation_format() -> None:
    from tuneport.schemas import Example
    from tuneport.validation.rules import Finding

    def kinds(*roles: str) -> list[str]:
        msgs = [Message(role=r, content="x") for r in roles]  # type: ignore[arg-type]
        found: list[Finding] = []
        for check in BACKEND.rules.chat:
            found += check(Example(messages=msgs))
        return [f.kind for f in found]

    assert kinds("system", "user", "assistant", "user", "assistant") == []
    assert kinds("assistant", "user", "assistant") == ["role_order"]
    assert kinds("user", "user", "assistant") == ["role_order"]
    assert kinds("user", "assistant", "system") == ["system_position"]
    assert BACKEND.limit_for("openai/gpt-oss-20b") == 16_384
    assert BACKEND.limit_for(MODEL) is None


def test_job_ref_of_another_provider_is_not_needed(provider: TogetherProvider) -> None:
    # JobRef is provider-tagged; the backend only reads remote_id
    ref = JobRef(provider="together", remote_id="ft-missing", run_id="r")
    with pytest.raises(NotFoundError) as info:
        provider.status(ref)
    assert "Together: not found" in info.value.one_line()


def test_strict_adapter_rejects_unknown_keys() -> None:
    from together.types.fine_tuning_estimate_price_params import FineTuningEstimatePriceParams

    with pytest.raises(ValidationError):
        strict(FineTuningEstimatePriceParams).validate_python({"training_file": "f", "unknown": 1})


def test_a_file_still_validating_is_waited_for_then_reported(
    fake: FakeTogether, provider: TogetherProvider, clock: Clock, tmp_path: Path
) -> None:
    prepared = _prepared(tmp_path)
    uploaded = provider.upload(prepared, _cfg(tmp_path), Recorder())
    fake.files[uploaded.training]["processing_status"] = "RUNNING"
    waiting = TogetherProvider(sleep=clock.sleep, clock=clock, processing_timeout=60)
    with pytest.raises(ProviderError) as info:
        waiting.upload(prepared, _cfg(tmp_path), Recorder())
    assert "Together is still validating train.jsonl" in info.value.one_line()
    assert clock.slept and clock.now > 60
    assert len(fake.calls("GET", rf"^/v1/files/{uploaded.training}$")) >= 2


def test_replies_that_are_not_json_are_retried_then_reported(
    fake: FakeTogether, provider: TogetherProvider, tmp_path: Path
) -> None:
    fake.garble("GET", r"^/v1/fine-tunes/ft-x$", times=1)
    with pytest.raises(NotFoundError):  # one garbled reply, then the real answer (404)
        provider.status(JobRef(provider="together", remote_id="ft-x", run_id="r"))
    fake.garble("GET", r"^/v1/fine-tunes/ft-x$", times=10)
    with pytest.raises(ProviderError) as info:
        provider.status(JobRef(provider="together", remote_id="ft-x", run_id="r"))
    assert "sent a reply that is not JSON" in info.value.one_line()


def test_rules_flag_parallel_tool_calls_together_has_no_column_for() -> None:
    """Conversational rows carry `messages` + `tools`, preference rows nest `tools` in `input`
    (docs.together.ai fine-tuning data preparation / function calling; SDK lib/constants.py)."""
    from tuneport.schemas import Example, PreferenceExample

    msgs = [Message(role="user", content="u"), Message(role="assistant", content="a")]
    chat = Example(messages=msgs, parallel_tool_calls=True)
    pair = PreferenceExample(
        prompt=msgs[:1],
        chosen=Message(role="assistant", content="a"),
        rejected=Message(role="assistant", content="b"),
        parallel_tool_calls=False,
    )
    found = [f for check in BACKEND.rules.chat for f in check(chat)]
    found += [f for check in BACKEND.rules.preference for f in check(pair)]
    assert [f.kind for f in found] == ["unsupported_field", "unsupported_field"]
    assert all("'parallel_tool_calls'" in f.message for f in found)
    assert BACKEND.target == "together"


def test_the_cost_after_the_job_is_together_s_own_total_price(
    fake: FakeTogether, provider: TogetherProvider, store: JobStore, tmp_path: Path
) -> None:
    """Together documents its bill as epochs x training tokens (+ evaluations), but not whether
    the job's `token_count` is one epoch or all of them; its `total_price` (nano-dollars) is the
    bill itself. A job whose `token_count` reads as one epoch of two is still costed whole."""
    from datetime import UTC, datetime

    from tuneport.jobs.cost import job_cost
    from tuneport.jobs.watch import poll_once
    from tuneport.schemas import JobRecord

    uploaded = provider.upload(_prepared(tmp_path), _cfg(tmp_path), Recorder())
    ref = provider.launch(uploaded, _cfg(tmp_path, epochs=2), "run-price")
    fake.advance(3)
    data = fake.jobs[ref.remote_id].data
    data["token_count"] //= 2  # the reading where token_count is one epoch's dataset count
    now = datetime.now(UTC)
    record = store.add(
        JobRecord(
            id="tp-price001",
            run_id=ref.run_id,
            provider="together",
            model=data["model"],
            dataset_sha256="0" * 64,
            remote_id=ref.remote_id,
            created_at=now,
            updated_at=now,
        )
    )
    record = poll_once(store, record, provider).record
    cost = job_cost(record)
    assert record.billed_usd == pytest.approx(data["total_price"] / 1e9)
    assert cost.cost_usd == pytest.approx(data["total_price"] / 1e9)
    assert cost.cost_source == "provider"
    # tokens x the table's price would have been half the bill
    assert cost.price_per_million_usd is not None and record.billed_tokens is not None
    halved = record.billed_tokens * cost.price_per_million_usd / 1e6
    assert cost.cost_usd != pytest.approx(halved)
