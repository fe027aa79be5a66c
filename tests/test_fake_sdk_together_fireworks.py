"""The real ``together`` and ``fireworks`` SDKs against the offline fakes in tests/fakes.

Clients use ``_strict_response_validation=True`` so every response is validated by the SDK's own
pydantic models (not just ``construct``-ed), and ``max_retries=0`` unless a test is about retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fireworks
import httpx
import pytest
import together
from fireworks.lib.dataset_upload import DatasetUploadError, upload_dataset_shards
from fireworks.types import Dataset, SupervisedFineTuningJob
from together.lib.resources.files import FileAlreadyExistsError
from together.types import FinetuneResponse, FineTuningListResponse
from together.types.fine_tuning_estimate_price_response import (
    AvailableEstimate,
    UnavailableEstimate,
)

from tests.fakes.fireworks_server import FakeFireworks
from tests.fakes.together_server import FakeTogether, sha256

TG_KEY = "tg-fake-key"
FW_KEY = "fw-fake-key"
BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
FW_BASE = "accounts/fireworks/models/llama-v3p1-8b-instruct"


def sft_rows(n: int = 5) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(n)
    ]


def dpo_rows(n: int = 4) -> list[dict[str, Any]]:
    return [
        {
            "input": {"messages": [{"role": "user", "content": f"q{i}"}]},
            "preferred_output": [{"role": "assistant", "content": "good"}],
            "non_preferred_output": [{"role": "assistant", "content": "bad"}],
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


PROVIDER_VARS = (  # read by the SDK constructors (together/_client.py, fireworks/_client.py)
    "TOGETHER_API_KEY",
    "TOGETHER_BASE_URL",
    "TOGETHER_PROJECT_ID",
    "TOGETHER_CUSTOM_HEADERS",
    "TOGETHER_ALLOW_INSECURE_UPLOAD_REDIRECTS",
    "FIREWORKS_API_KEY",
    "FIREWORKS_ACCOUNT_ID",
    "FIREWORKS_BASE_URL",
    "FIREWORKS_CUSTOM_HEADERS",
)


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)


def no_retry_sleep(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    monkeypatch.setattr(client, "_calculate_retry_timeout", lambda *a, **k: 0.0)


# --- Together ------------------------------------------------------------------------------------


@pytest.fixture
def together_fake() -> Iterator[FakeTogether]:
    with FakeTogether(api_key=TG_KEY) as fake:
        yield fake


@pytest.fixture
def tg(together_fake: FakeTogether) -> together.Together:
    return together.Together(
        api_key=TG_KEY,
        base_url=together_fake.base_url,
        max_retries=0,
        _strict_response_validation=True,
    )


@pytest.fixture
def sft_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", sft_rows())


def test_together_upload_is_post_put_preprocess(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    uploaded = tg.files.upload(sft_file, purpose="fine-tune")

    assert uploaded.processing_status == "COMPLETED"
    assert uploaded.bytes == sft_file.stat().st_size
    start, put, pre = together_fake.requests
    assert (start.method, start.path) == ("POST", "/v1/files")
    assert start.body["fields"] == {
        "purpose": "fine-tune",
        "file_name": "train.jsonl",
        "file_type": "jsonl",
        "checksum": sha256(sft_file.read_bytes()),
    }
    assert put.method == "PUT" and put.path.startswith("/_upload/")
    assert put.body == sft_file.read_bytes()
    assert "authorization" not in put.headers  # the presigned PUT carries no API key
    assert (pre.method, pre.path) == ("POST", f"/v1/files/{uploaded.id}/preprocess")
    report = tg.files.retrieve(uploaded.id).validation_report  # upload() drops the report
    assert report is not None and report.valid and report.dataset_format == "conversation"
    assert report.nlines == 5


def test_together_same_checksum_gets_409_with_the_file_id(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    first = tg.files.upload(sft_file, purpose="fine-tune")
    again = tg.files.upload(sft_file, purpose="fine-tune")  # 409 -> files.retrieve(file_id)

    assert again.id == first.id
    assert len(together_fake.calls("PUT", "^/_upload/")) == 1
    assert [r.method for r in together_fake.requests[3:]] == ["POST", "GET"]
    with pytest.raises(FileAlreadyExistsError) as exc:
        tg.files.upload(sft_file, purpose="fine-tune", raise_if_already_exists=True)
    assert exc.value.file_id == first.id


def test_together_files_list_retrieve_delete(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    uploaded = tg.files.upload(sft_file)

    assert [f.id for f in tg.files.list().data] == [uploaded.id]
    assert tg.files.retrieve(uploaded.id).filename == "train.jsonl"
    assert tg.files.content(uploaded.id).read() == sft_file.read_bytes()
    deleted = tg.files.delete(uploaded.id)
    assert deleted.deleted and deleted.id == uploaded.id
    with pytest.raises(together.NotFoundError):
        tg.files.retrieve(uploaded.id)
    assert tg.files.upload(sft_file).id != uploaded.id  # checksum freed by the delete


def test_together_invalid_rows_are_reported_after_preprocess(
    tg: together.Together, tmp_path: Path
) -> None:
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [*sft_rows(2), {"text": "plain"}])
    uploaded = tg.files.upload(mixed)  # the SDK only checks JSON objects per line now

    assert uploaded.processing_status == "INVALID_FORMAT"
    estimate = tg.fine_tuning.estimate_price(training_file=uploaded.id, model=BASE)
    assert isinstance(estimate, UnavailableEstimate)
    assert estimate.unavailable_reason == "train_file_invalid"
    with pytest.raises(together.BadRequestError):
        tg.fine_tuning.create(training_file=uploaded.id, model=BASE)


def test_together_sft_job_lifecycle(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    uploaded = tg.files.upload(sft_file)
    size = sft_file.stat().st_size
    limits = tg.fine_tuning.model_limits(model_name=BASE)
    assert limits.api_model_name == BASE and limits.lora_training.default_rank == 16

    estimate = tg.fine_tuning.estimate_price(
        training_file=uploaded.id,
        model=BASE,
        n_epochs=2,
        training_method={"method": "sft", "train_on_inputs": "auto"},
    )
    assert isinstance(estimate, AvailableEstimate)
    assert estimate.estimated_train_token_count == size // 4 * 2
    assert estimate.allowed_to_proceed is True

    job = tg.fine_tuning.create(training_file=uploaded.id, model=BASE, n_epochs=2, suffix="run-7")
    assert len(together_fake.calls("POST", "^/v1/fine-tunes$")) == 1
    sent = together_fake.calls("POST", "^/v1/fine-tunes$")[0].body
    assert (
        sent["suffix"] == "run-7" and sent["training_file"] == uploaded.id and sent["model"] == BASE
    )
    assert job.status == "pending" and job.output_name and job.output_name.endswith(job.id[-8:])

    seen = []
    for _ in range(3):
        together_fake.advance()
        got = tg.fine_tuning.retrieve(job.id)
        seen.append(got.status)
    assert seen == ["queued", "running", "completed"]
    assert isinstance(got, FinetuneResponse)
    assert got.x_model_output_name == job.output_name and got.training_file == uploaded.id
    assert got.model == BASE and got.n_epochs == 2
    assert got.token_count == size // 4 * 2
    assert got.total_price == round(got.token_count / 1e6 * 0.48 * 1e9)  # nanodollars
    assert got.training_type is not None and got.training_type.type == "Lora"

    # Together has no metadata: find the run again by suffix / output name / training file.
    listed = FineTuningListResponse.model_validate(tg.fine_tuning.list().model_dump(by_alias=True))
    mine = [j for j in listed.data if j.suffix == "run-7" and j.training_file == uploaded.id]
    assert [j.id for j in mine] == [job.id]

    events = tg.fine_tuning.list_events(job.id).data
    assert (events[0].type, events[-1].type) == ("job_pending", "job_complete")
    checkpoints = tg.fine_tuning.list_checkpoints(job.id).data
    assert [c.checkpoint_type for c in checkpoints] == ["Final", "Intermediate"]
    metrics = tg.fine_tuning.list_metrics(job.id).metrics
    assert metrics == [{"global_step": 1.0, "train_loss": 2.0}]


def test_together_dpo_job_uses_preference_rows(
    tg: together.Together, together_fake: FakeTogether, tmp_path: Path
) -> None:
    uploaded = tg.files.upload(write_jsonl(tmp_path / "prefs.jsonl", dpo_rows()))
    assert tg.files.retrieve(uploaded.id).validation_report.dataset_format == "preference_openai"  # type: ignore[union-attr]

    job = tg.fine_tuning.create(
        training_file=uploaded.id, model=BASE, training_method="dpo", dpo_beta=0.1
    )

    sent = together_fake.calls("POST", "^/v1/fine-tunes$")[0].body
    assert sent["training_method"]["method"] == "dpo" and sent["training_method"]["dpo_beta"] == 0.1
    priced = together_fake.calls("POST", "estimate-price$")[0].body
    assert priced["training_method"]["method"] == "dpo"
    together_fake.advance(3)
    done = tg.fine_tuning.retrieve(job.id)
    assert done.status == "completed"
    assert done.total_price == round(done.token_count / 1e6 * 1.2 * 1e9)  # type: ignore[operator]


def test_together_cancel_and_failure(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    uploaded = tg.files.upload(sft_file)
    job = tg.fine_tuning.create(training_file=uploaded.id, model=BASE)
    together_fake.advance()

    assert tg.fine_tuning.cancel(job.id).status == "cancel_requested"
    together_fake.advance()
    assert tg.fine_tuning.retrieve(job.id).status == "cancelled"
    with pytest.raises(together.BadRequestError):
        tg.fine_tuning.cancel(job.id)

    together_fake.fail_next_job = "Training data has no assistant turns"
    bad = tg.fine_tuning.create(training_file=uploaded.id, model=BASE)
    together_fake.advance(3, job_id=bad.id)
    failed = tg.fine_tuning.retrieve(bad.id)
    assert failed.status == "error"
    assert failed.events and failed.events[-1].message == "Training data has no assistant turns"
    assert tg.fine_tuning.delete(bad.id).message


def test_together_chat_with_tuned_model_needs_serving(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    base = tg.chat.completions.create(model=BASE, messages=[{"role": "user", "content": "hi"}])
    assert base.choices[0].message.content == f"echo[{BASE}]: hi"  # type: ignore[union-attr]
    job = tg.fine_tuning.create(training_file=tg.files.upload(sft_file).id, model=BASE)
    together_fake.advance(3)
    tuned = tg.fine_tuning.retrieve(job.id).x_model_output_name
    assert tuned

    with pytest.raises(together.BadRequestError) as exc:
        tg.chat.completions.create(model=tuned, messages=[{"role": "user", "content": "hi"}])
    assert exc.value.body["error"]["code"] == "model_not_available"  # type: ignore[index]
    together_fake.deploy(tuned)
    reply = tg.chat.completions.create(model=tuned, messages=[{"role": "user", "content": "hi"}])
    assert reply.model == tuned and together_fake.chats[-1]["model"] == tuned


def test_together_streamed_chat_is_the_sdks_chunk_stream(
    tg: together.Together, together_fake: FakeTogether
) -> None:
    """``stream=True`` returns the SDK's ``Stream`` (its ``response`` is the open HTTP reply)
    of chunks the strict client validates as ``ChatCompletionChunk``."""
    from together._streaming import Stream

    hi: Any = [{"role": "user", "content": "one two three"}]
    stream = tg.chat.completions.create(model=BASE, messages=hi, stream=True)
    assert isinstance(stream, Stream)
    assert stream.response.headers["content-type"] == "text/event-stream"
    chunks = list(stream)
    assert all(c.choices[0].delta.role == "assistant" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == f"echo[{BASE}]: one two three"
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is not None
    assert together_fake.chats[-1]["stream"] is True
    together_fake.finish_reason = "eos"  # in Together's Literal, not in OpenAI's
    *_, last = tg.chat.completions.create(model=BASE, messages=hi, stream=True)
    assert last.choices[0].finish_reason == "eos"


def test_together_untunable_model_and_advance_on_get(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    together_fake.tunable_models = {BASE}
    with pytest.raises(together.NotFoundError):
        tg.fine_tuning.model_limits(model_name="acme/not-tunable")
    job = tg.fine_tuning.create(training_file=tg.files.upload(sft_file).id, model=BASE)

    together_fake.advance_on_get = True  # for poll loops that never call advance()
    polled = [tg.fine_tuning.retrieve(job.id).status for _ in range(4)]
    assert polled == ["queued", "running", "completed", "completed"]


def test_together_bad_key_and_wrong_base_url(together_fake: FakeTogether, sft_file: Path) -> None:
    bad = together.Together(api_key="nope", base_url=together_fake.base_url, max_retries=0)
    with pytest.raises(together.AuthenticationError) as exc:
        bad.fine_tuning.list()
    assert exc.value.body["error"]["code"] == "invalid_api_key"  # type: ignore[index]
    with pytest.raises(together.AuthenticationError, match="free trial credits"):
        bad.files.upload(sft_file)  # the SDK rewrites any 401 on upload into this message

    v1 = together.Together(api_key=TG_KEY, base_url=f"{together_fake.base_url}/v1", max_retries=0)
    with pytest.raises(together.NotFoundError):
        v1.fine_tuning.list()  # paths already carry /v1: this asks for /v1/v1/fine-tunes
    assert together_fake.requests[-1].path == "/v1/v1/fine-tunes"


def test_together_injected_errors(tg: together.Together, together_fake: FakeTogether) -> None:
    together_fake.fail("GET", "^/v1/fine-tunes$", 500)
    with pytest.raises(together.InternalServerError):
        tg.fine_tuning.list()
    together_fake.fail("GET", "^/v1/fine-tunes$", 429, headers={"retry-after": "7"})
    with pytest.raises(together.RateLimitError) as exc:
        tg.fine_tuning.list()
    assert exc.value.response.headers["retry-after"] == "7"
    together_fake.garble("GET", "^/v1/fine-tunes$")
    with pytest.raises(json.JSONDecodeError):  # not wrapped by the SDK
        tg.fine_tuning.list()
    assert tg.fine_tuning.list().data == []


def test_together_lost_create_reply_is_found_again_by_listing(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    uploaded = tg.files.upload(sft_file)
    together_fake.drop("POST", "^/v1/fine-tunes$")  # created, then the reply is lost

    with pytest.raises(together.APIConnectionError):
        tg.fine_tuning.create(training_file=uploaded.id, model=BASE, suffix="run-9")

    assert len(together_fake.jobs) == 1
    found = [
        j
        for j in tg.fine_tuning.list().data
        if j.suffix == "run-9" and j.training_file == uploaded.id
    ]
    assert len(found) == 1 and found[0].status == "pending"

    together_fake.drop("POST", "^/v1/fine-tunes$", after=False)  # dropped before acting
    with pytest.raises(together.APIConnectionError):
        tg.fine_tuning.create(training_file=uploaded.id, model=BASE, suffix="run-10")
    assert len(together_fake.jobs) == 1


def test_together_sdk_retries_duplicate_a_lost_create(
    together_fake: FakeTogether, sft_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = together.Together(api_key=TG_KEY, base_url=together_fake.base_url)  # default retries
    no_retry_sleep(monkeypatch, client)
    uploaded = client.files.upload(sft_file)
    together_fake.drop("POST", "^/v1/fine-tunes$")

    client.fine_tuning.create(training_file=uploaded.id, model=BASE, suffix="dup")

    assert len(together_fake.jobs) == 2  # why backends must pass max_retries=0 on creates


def test_together_lost_upload_reply_leaves_an_empty_file(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    together_fake.drop("POST", "^/v1/files$")  # file id + checksum registered, reply lost
    with pytest.raises(together.APIConnectionError):
        tg.files.upload(sft_file)

    stale = tg.files.upload(sft_file)  # 409 -> retrieve: the id of a file with no bytes
    assert stale.processing_status == "PENDING" and stale.bytes == 0
    tg.files.delete(stale.id)
    fresh = tg.files.upload(sft_file)
    assert fresh.processing_status == "COMPLETED" and fresh.id != stale.id


def test_together_strict_validation_rejects_user_error_status(
    tg: together.Together, together_fake: FakeTogether, sft_file: Path
) -> None:
    job = tg.fine_tuning.create(training_file=tg.files.upload(sft_file).id, model=BASE)
    together_fake.jobs[job.id].data["status"] = "user_error"  # sent by the API, not in the Literal

    with pytest.raises(together.APIResponseValidationError):
        tg.fine_tuning.retrieve(job.id)
    lax = together.Together(api_key=TG_KEY, base_url=together_fake.base_url, max_retries=0)
    assert str(lax.fine_tuning.retrieve(job.id).status) == "user_error"


# --- Fireworks -----------------------------------------------------------------------------------


@pytest.fixture
def fireworks_fake() -> Iterator[FakeFireworks]:
    with FakeFireworks(api_key=FW_KEY, account_id="acme") as fake:
        yield fake


@pytest.fixture
def fw(fireworks_fake: FakeFireworks) -> fireworks.Fireworks:
    return fireworks.Fireworks(
        api_key=FW_KEY,
        account_id="acme",
        base_url=fireworks_fake.base_url,
        max_retries=0,
        _strict_response_validation=True,
    )


def ready_dataset(fw: fireworks.Fireworks, path: Path, dataset_id: str = "ds-1") -> Dataset:
    fw.datasets.create(dataset_id=dataset_id, dataset={"user_uploaded": {}, "format": "CHAT"})
    fw.datasets.upload(dataset_id, file=path)
    return fw.datasets.get(dataset_id)


def test_fireworks_dataset_create_upload_get_list_delete(
    fw: fireworks.Fireworks, fireworks_fake: FakeFireworks, sft_file: Path
) -> None:
    created = fw.datasets.create(
        dataset_id="ds-1", dataset={"user_uploaded": {}, "example_count": "5"}
    )
    assert created.name == "accounts/acme/datasets/ds-1" and created.state == "UPLOADING"
    assert fireworks_fake.requests[0].body == {
        "datasetId": "ds-1",
        "dataset": {"userUploaded": {}, "exampleCount": "5"},
    }
    with pytest.raises(fireworks.ConflictError) as exc:
        fw.datasets.create(dataset_id="ds-1", dataset={"user_uploaded": {}})
    assert exc.value.status_code == 409 and exc.value.body["code"] == 6  # type: ignore[index]
    with pytest.raises(fireworks.BadRequestError):
        fw.datasets.create(dataset_id="Bad_Id", dataset={})

    uploaded = fw.datasets.upload("ds-1", file=sft_file)
    assert uploaded.bytes == sft_file.stat().st_size
    upload_req = fireworks_fake.calls("POST", ":upload$")[0]
    assert upload_req.body["files"]["file"] == ("train.jsonl", sft_file.read_bytes())
    got = fw.datasets.get("ds-1")
    assert got.state == "READY" and got.example_count == "5"

    fw.datasets.create(dataset_id="ds-2", dataset={"user_uploaded": {}})
    names = [d.name for d in fw.datasets.list(page_size=1)]  # auto-paginates on nextPageToken
    assert names == ["accounts/acme/datasets/ds-1", "accounts/acme/datasets/ds-2"]
    assert fireworks_fake.calls("GET", "/datasets$")[-1].query["pageToken"] == ["1"]

    fw.datasets.delete("ds-2")
    with pytest.raises(fireworks.NotFoundError):
        fw.datasets.get("ds-2")


def test_fireworks_signed_url_upload_flow(
    fw: fireworks.Fireworks, fireworks_fake: FakeFireworks, sft_file: Path
) -> None:
    fw.datasets.create(dataset_id="big", dataset={"user_uploaded": {}})
    data = sft_file.read_bytes()
    urls = fw.datasets.get_upload_endpoint("big", filename_to_size={"train.jsonl": str(len(data))})
    assert urls.filename_to_signed_urls is not None
    with pytest.raises(fireworks.BadRequestError):
        fw.datasets.validate_upload("big", body={})  # nothing PUT yet: FAILED_PRECONDITION

    put = httpx.put(
        urls.filename_to_signed_urls["train.jsonl"],
        content=data,
        headers={
            "Content-Type": "application/octet-stream",
            "X-Goog-Content-Length-Range": f"{len(data)},{len(data)}",
        },
    )
    assert put.status_code == 200
    assert "authorization" not in fireworks_fake.calls("PUT", "^/_signed/")[0].headers
    fw.datasets.validate_upload("big", body={})
    assert fw.datasets.get("big").state == "READY"

    fw.datasets.create(dataset_id="shards", dataset={"user_uploaded": {}})
    with pytest.raises(DatasetUploadError, match="non-https"):
        upload_dataset_shards(fw, "shards", str(sft_file))  # the SDK helper insists on https


def test_fireworks_sft_job_lifecycle(
    fw: fireworks.Fireworks, fireworks_fake: FakeFireworks, sft_file: Path
) -> None:
    dataset = ready_dataset(fw, sft_file)
    job = fw.supervised_fine_tuning_jobs.create(
        dataset=str(dataset.name),
        supervised_fine_tuning_job_id="tp-run-1",
        base_model=FW_BASE,
        display_name="tuneport run 1",
        epochs=2,
        lora_rank=16,
        output_model="tp-run-1-model",
    )
    assert job.name == "accounts/acme/supervisedFineTuningJobs/tp-run-1"
    assert job.state == "JOB_STATE_CREATING"
    assert job.output_model == "accounts/acme/models/tp-run-1-model"
    create = fireworks_fake.calls("POST", "supervisedFineTuningJobs$")[0]
    assert create.query == {"supervisedFineTuningJobId": ["tp-run-1"]}
    assert create.body["baseModel"] == FW_BASE and create.body["loraRank"] == 16

    with pytest.raises(fireworks.ConflictError):
        fw.supervised_fine_tuning_jobs.create(
            dataset=str(dataset.name), supervised_fine_tuning_job_id="tp-run-1", base_model=FW_BASE
        )
    assert len(fireworks_fake.jobs) == 1

    states = []
    for _ in range(3):
        fireworks_fake.advance()
        states.append(fw.supervised_fine_tuning_jobs.get("tp-run-1").state)
    assert states == ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_COMPLETED"]
    done = fw.supervised_fine_tuning_jobs.get("tp-run-1")
    assert done.job_progress is not None and done.job_progress.percent == 100
    assert done.estimated_cost is not None and done.estimated_cost.currency_code == "USD"
    model = fw.models.get("tp-run-1-model")
    assert model.kind == "HF_PEFT_ADDON" and model.state == "READY"
    assert model.fine_tuning_job == done.name
    listed = list(fw.supervised_fine_tuning_jobs.list())
    assert [SupervisedFineTuningJob.model_validate(j.to_dict()).name for j in listed] == [done.name]


def test_fireworks_job_needs_ready_dataset_and_cancel(
    fw: fireworks.Fireworks, fireworks_fake: FakeFireworks, sft_file: Path
) -> None:
    fw.datasets.create(dataset_id="empty", dataset={"user_uploaded": {}})
    with pytest.raises(fireworks.BadRequestError):
        fw.supervised_fine_tuning_jobs.create(
            dataset="accounts/acme/datasets/empty", base_model=FW_BASE
        )

    dataset = ready_dataset(fw, sft_file)
    fw.supervised_fine_tuning_jobs.create(
        dataset=str(dataset.name), supervised_fine_tuning_job_id="c1", base_model=FW_BASE
    )
    fireworks_fake.advance()
    assert fw.supervised_fine_tuning_jobs.cancel("c1", body={}) == {}
    assert fw.supervised_fine_tuning_jobs.get("c1").state == "JOB_STATE_CANCELLING"
    fireworks_fake.advance()
    assert fw.supervised_fine_tuning_jobs.get("c1").state == "JOB_STATE_CANCELLED"
    with pytest.raises(fireworks.BadRequestError):
        fw.supervised_fine_tuning_jobs.cancel("c1", body={})
    fw.supervised_fine_tuning_jobs.delete("c1")
    with pytest.raises(fireworks.NotFoundError):
        fw.supervised_fine_tuning_jobs.get("c1")

    fireworks_fake.fail_next_job = "line 2: assistant message missing"
    fw.supervised_fine_tuning_jobs.create(
        dataset=str(dataset.name), supervised_fine_tuning_job_id="f1", base_model=FW_BASE
    )
    fireworks_fake.advance(3)
    failed = fw.supervised_fine_tuning_jobs.get("f1")
    assert failed.state == "JOB_STATE_FAILED" and failed.status is not None
    assert failed.status.message == "line 2: assistant message missing"


def test_fireworks_dpo_jobs(
    fw: fireworks.Fireworks, fireworks_fake: FakeFireworks, tmp_path: Path
) -> None:
    dataset = ready_dataset(fw, write_jsonl(tmp_path / "prefs.jsonl", dpo_rows()), "prefs")
    assert dataset.status is not None and dataset.status.code == "OK"
    job = fw.dpo_jobs.create(
        dataset=str(dataset.name),
        dpo_job_id="dpo-1",
        training_config={"base_model": FW_BASE, "epochs": 1, "output_model": "dpo-1-model"},
        loss_config={"method": "DPO"},
    )
    assert job.name == "accounts/acme/dpoJobs/dpo-1" and job.state == "JOB_STATE_CREATING"
    sent = fireworks_fake.calls("POST", "dpoJobs$")[0]
    assert sent.query == {"dpoJobId": ["dpo-1"]}
    assert sent.body["trainingConfig"] == {
        "baseModel": FW_BASE,
        "epochs": 1,
        "outputModel": "dpo-1-model",
    }
    with pytest.raises(fireworks.ConflictError):
        fw.dpo_jobs.create(
            dataset=str(dataset.name), dpo_job_id="dpo-1", training_config={"base_model": FW_BASE}
        )

    assert [j.name for j in fw.dpo_jobs.list()] == [job.name]
    fireworks_fake.advance(3)
    assert fw.dpo_jobs.get("dpo-1").state == "JOB_STATE_COMPLETED"
    assert fw.models.get("dpo-1-model").peft_details.base_model == FW_BASE  # type: ignore[union-attr]

    fw.dpo_jobs.create(
        dataset=str(dataset.name), dpo_job_id="dpo-2", training_config={"base_model": FW_BASE}
    )
    fw.dpo_jobs.cancel("dpo-2", body={})
    fireworks_fake.advance()
    assert fw.dpo_jobs.get("dpo-2").state == "JOB_STATE_CANCELLED"
    fw.dpo_jobs.delete("dpo-2")
    with pytest.raises(fireworks.NotFoundError):
        fw.dpo_jobs.get("dpo-2")
    fireworks_fake.advance_on_get = True
    fw.dpo_jobs.create(
        dataset=str(dataset.name), dpo_job_id="dpo-3", training_config={"base_model": FW_BASE}
    )
    assert [fw.dpo_jobs.get("dpo-3").state for _ in range(3)] == [
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_COMPLETED",
    ]


def test_fireworks_chat_needs_a_deployment_for_tuned_models(
    fw: fireworks.Fireworks, fireworks_fake: FakeFireworks, sft_file: Path
) -> None:
    hi = [{"role": "user", "content": "hi"}]
    base = fw.chat.completions.create(model=FW_BASE, messages=hi)  # type: ignore[arg-type]
    assert base.choices[0].message.content == f"echo[{FW_BASE}]: hi"
    assert fireworks_fake.requests[-1].path == "/v1/chat/completions"  # not /inference/v1

    dataset = ready_dataset(fw, sft_file)
    fw.supervised_fine_tuning_jobs.create(
        dataset=str(dataset.name), supervised_fine_tuning_job_id="j", base_model=FW_BASE
    )
    fireworks_fake.advance(3)
    tuned = "accounts/acme/models/j"
    with pytest.raises(fireworks.NotFoundError):
        fw.chat.completions.create(model=tuned, messages=hi)  # type: ignore[arg-type]

    deployment = fw.deployments.create(base_model=tuned, deployment_id="j-live")  # live merge
    assert deployment.state == "CREATING"
    assert not fireworks_fake.served(tuned)
    fireworks_fake.advance()
    assert fw.deployments.get("j-live").state == "READY"
    reply = fw.chat.completions.create(model=tuned, messages=hi)  # type: ignore[arg-type]
    assert reply.model == tuned
    fw.deployments.delete("j-live")
    assert not fireworks_fake.served(tuned)

    shared = fw.deployments.create(base_model=FW_BASE, deployment_id="multi-lora")
    loaded = fw.lora.load(model=tuned, deployment=str(shared.name))
    assert (
        loaded.state == "DEPLOYED"
        and fw.lora.get(str(loaded.name).rsplit("/", 1)[-1]).model == tuned
    )
    assert fw.chat.completions.create(model=tuned, messages=hi).model == tuned  # type: ignore[arg-type]
    fw.lora.unload(str(loaded.name).rsplit("/", 1)[-1])
    assert not fireworks_fake.served(tuned)


def test_fireworks_auth_account_and_injected_errors(
    fw: fireworks.Fireworks, fireworks_fake: FakeFireworks
) -> None:
    bad = fireworks.Fireworks(
        api_key="nope", account_id="acme", base_url=fireworks_fake.base_url, max_retries=0
    )
    with pytest.raises(fireworks.AuthenticationError) as exc:
        bad.datasets.get("x")
    assert exc.value.body["code"] == 16  # type: ignore[index]
    with pytest.raises(fireworks.PermissionDeniedError):
        fw.datasets.get("x", account_id="someone-else")

    fireworks_fake.fail("GET", "/datasets$", 503)
    with pytest.raises(fireworks.InternalServerError):
        list(fw.datasets.list())
    fireworks_fake.fail("POST", "/datasets$", 429, headers={"retry-after": "3"})
    with pytest.raises(fireworks.RateLimitError):
        fw.datasets.create(dataset_id="later", dataset={})
    assert fireworks_fake.datasets == {}
    fireworks_fake.garble("POST", "/datasets$")  # created, then a broken body
    with pytest.raises(json.JSONDecodeError):
        fw.datasets.create(dataset_id="garbled", dataset={})
    assert "accounts/acme/datasets/garbled" in fireworks_fake.datasets


def test_fireworks_lost_create_reply_then_conflict_then_get(
    fw: fireworks.Fireworks, fireworks_fake: FakeFireworks, sft_file: Path
) -> None:
    dataset = ready_dataset(fw, sft_file)
    fireworks_fake.drop("POST", "supervisedFineTuningJobs$")

    def create() -> SupervisedFineTuningJob:
        return fw.supervised_fine_tuning_jobs.create(
            dataset=str(dataset.name), supervised_fine_tuning_job_id="tp-run-2", base_model=FW_BASE
        )

    with pytest.raises(fireworks.APIConnectionError):
        create()
    with pytest.raises(fireworks.ConflictError):
        create()  # the id is the idempotency key: the job exists
    assert fw.supervised_fine_tuning_jobs.get("tp-run-2").dataset == dataset.name
    assert len(fireworks_fake.jobs) == 1
    assert len(fireworks_fake.calls("POST", "supervisedFineTuningJobs$")) == 2


def test_fireworks_sdk_retries_a_409(
    fireworks_fake: FakeFireworks, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = fireworks.Fireworks(
        api_key=FW_KEY, account_id="acme", base_url=fireworks_fake.base_url
    )
    no_retry_sleep(monkeypatch, client)
    client.datasets.create(dataset_id="d", dataset={})

    with pytest.raises(fireworks.ConflictError):
        client.datasets.create(dataset_id="d", dataset={})

    assert len(fireworks_fake.calls("POST", "/datasets$")) == 1 + 3  # 409 counts as retryable
