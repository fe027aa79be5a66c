"""Vertex error mapping: each failure is ONE line naming the command or setting that fixes it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.vertex_server import FakeVertex, running_fake_vertex
from tuneport.errors import (
    EXIT_CONFIG,
    EXIT_PROVIDER,
    AuthError,
    ConfigError,
    NotFoundError,
    ProviderError,
    QuotaError,
    TuneportError,
)
from tuneport.providers.base import UploadedData
from tuneport.providers.vertex.errors import ERROR_RULES, map_status
from tuneport.providers.vertex.provider import VertexProvider
from tuneport.schemas import JobConfig, JobRef

pytestmark = pytest.mark.timeout(60)

UPLOADED = UploadedData(training="gs://b/tuneport/abc/train.jsonl")
CFG = JobConfig(provider="vertex", model="gemini-2.5-flash", data=Path("t.jsonl"))


@pytest.fixture
def fake() -> Iterator[FakeVertex]:
    with running_fake_vertex() as server:
        yield server


def make(base_url: str, **settings: Any) -> VertexProvider:
    import google.oauth2.credentials

    return VertexProvider(
        project="proj-1",
        location="us-central1",
        base_url=base_url,
        credentials=google.oauth2.credentials.Credentials(token="fake"),
        sleep=lambda _s: None,
        max_attempts=2,
        **settings,
    )


# (HTTP code, gRPC status, server message) -> (error class, fragment of message, fragment of fix)
CASES: list[tuple[int, str, str, type[TuneportError], str, str]] = [
    (
        403,
        "PERMISSION_DENIED",
        "Vertex AI API has not been used in project proj-1 before or it is disabled. "
        "Enable it by visiting https://console.developers.google.com/apis/api/"
        "aiplatform.googleapis.com/overview?project=proj-1",
        ConfigError,
        "not enabled for project proj-1",
        "gcloud services enable aiplatform.googleapis.com --project proj-1",
    ),
    (
        403,
        "PERMISSION_DENIED",
        "This API method requires billing to be enabled. Please enable billing on project #proj-1",
        ConfigError,
        "billing is not enabled for project proj-1",
        "gcloud billing projects link proj-1",
    ),
    (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for aiplatform.googleapis.com/tuning_jobs_per_region",
        QuotaError,
        "quota exhausted in us-central1",
        "gcloud alpha services quota list --service=aiplatform.googleapis.com",
    ),
    (
        400,
        "INVALID_ARGUMENT",
        "Tuning is not supported in region asia-east2.",
        ConfigError,
        "tuning is not available in us-central1",
        "--location us-central1",
    ),
    (
        400,
        "INVALID_ARGUMENT",
        "Invalid dataset: line 7 is missing 'contents'.",
        ProviderError,
        "rejected the request: Invalid dataset: line 7 is missing 'contents'.",
        "tuneport validate DATA --provider vertex --model gemini-2.5-flash",
    ),
    (
        403,
        "PERMISSION_DENIED",
        "Permission 'aiplatform.tuningJobs.create' denied on resource",
        AuthError,
        "permission denied in project proj-1",
        "--role=roles/aiplatform.user",
    ),
    (
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials.",
        AuthError,
        "credentials were rejected",
        "gcloud auth application-default login",
    ),
    (
        400,
        "INVALID_ARGUMENT",
        "Base model gemini-1.0-pro is not supported for tuning.",
        NotFoundError,
        "base model gemini-2.5-flash cannot be tuned",
        "--model gemini-2.5-flash",
    ),
    (
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        ProviderError,
        "server error 503",
        "retry later",
    ),
]


@pytest.mark.parametrize(("code", "status", "message", "kind", "what", "fix"), CASES)
def test_launch_errors_through_the_sdk(
    fake: FakeVertex,
    code: int,
    status: str,
    message: str,
    kind: type[TuneportError],
    what: str,
    fix: str,
) -> None:
    fake.fail("POST", r"tuningJobs$", status=code, grpc_status=status, message=message, times=5)
    with pytest.raises(TuneportError) as info:
        make(fake.url).launch(UPLOADED, CFG, "r1")
    err = info.value
    assert type(err) is kind
    line = err.one_line()
    assert "\n" not in line
    assert what.lower() in err.message.lower()
    assert err.hint is not None and fix in err.hint
    assert not fake.jobs


def test_retryable_errors_are_retried_up_to_the_policy(fake: FakeVertex) -> None:
    fake.fail("POST", r"tuningJobs$", status=429, grpc_status="RESOURCE_EXHAUSTED", times=5)
    with pytest.raises(QuotaError):
        make(fake.url).launch(UPLOADED, CFG, "r1")
    assert len(fake.calls("POST", r"tuningJobs$")) == 2  # max_attempts=2


def test_client_errors_are_not_retried(fake: FakeVertex) -> None:
    fake.fail("POST", r"tuningJobs$", status=400, grpc_status="INVALID_ARGUMENT", times=5)
    with pytest.raises(ProviderError):
        make(fake.url).launch(UPLOADED, CFG, "r1")
    assert len(fake.calls("POST", r"tuningJobs$")) == 1


def test_unknown_job_is_not_found(fake: FakeVertex) -> None:
    ref = JobRef(
        provider="vertex", remote_id="projects/proj-1/locations/x/tuningJobs/9", run_id="r"
    )
    with pytest.raises(NotFoundError, match="tuneport jobs list"):
        make(fake.url).status(ref)


def test_unreachable_server_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ProviderError) as info:
        make(url).list_jobs()
    assert info.value.exit_code == EXIT_PROVIDER
    assert f"cannot reach Vertex AI at {url}" in info.value.message
    assert "GOOGLE_VERTEX_BASE_URL" in (info.value.hint or "")


def test_cleanup_errors_are_mapped(fake: FakeVertex) -> None:
    provider = make(fake.url)
    ref = provider.launch(UPLOADED, CFG, "r1")
    provider.status(ref)
    provider.status(ref)
    fake.fail("GET", r"/endpoints/", status=403, grpc_status="PERMISSION_DENIED", message="no")
    with pytest.raises(AuthError, match="permission denied in project proj-1"):
        provider.cleanup(ref)


def test_missing_project(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.oauth2.credentials

    provider = VertexProvider(
        credentials=google.oauth2.credentials.Credentials(token="fake"), base_url="http://x"
    )
    with pytest.raises(ConfigError) as info:
        provider.list_jobs()
    assert info.value.exit_code == EXIT_CONFIG
    assert "--project" in (info.value.hint or "") and "GOOGLE_CLOUD_PROJECT" in (
        info.value.hint or ""
    )


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from google.auth.compute_engine import _metadata

    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud ADC file
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)  # = NO_GCE_CHECK=true: not on GCE
    provider = VertexProvider(project="p", base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError) as info:
        provider.list_jobs()
    assert "no usable Google credentials" in info.value.message
    assert "gcloud auth application-default login" in (info.value.hint or "")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in (info.value.hint or "")


def test_missing_credentials_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match=r"nope.json does not exist"):
        VertexProvider(project="p", base_url="http://127.0.0.1:9").list_jobs()


def test_missing_bucket_names_the_flag() -> None:
    with pytest.raises(ConfigError) as info:
        VertexProvider(project="p").stager()
    assert "--bucket" in (info.value.hint or "")


def test_access_token_never_appears_in_errors(fake: FakeVertex) -> None:
    token = "ya29.a0-very-secret-token-123456"
    fake.fail(
        "POST", r"tuningJobs$", status=400, grpc_status="INVALID_ARGUMENT", message=f"bad {token}"
    )
    provider = VertexProvider(
        project="p", base_url=fake.url, access_token="plain-secret-abcdef", sleep=lambda _s: None
    )
    fake.fail(
        "GET",
        r"tuningJobs$",
        status=400,
        grpc_status="INVALID_ARGUMENT",
        message="token plain-secret-abcdef leaked",
    )
    with pytest.raises(ProviderError) as info:
        provider.launch(UPLOADED, CFG, "r1")
    assert "plain-secret-abcdef" not in info.value.one_line()
    with pytest.raises(ProviderError) as info2:
        provider.launch(UPLOADED, CFG, "r1")
    assert token not in info2.value.one_line()
    assert fake.calls("GET", r"tuningJobs$")[0].headers["authorization"] == (
        "Bearer plain-secret-abcdef"
    )


def test_rule_table_ends_with_a_catch_all() -> None:
    last = ERROR_RULES[-1]
    assert not last.status and not last.codes and not last.contains
    err = map_status(418, "TEAPOT", "odd", project="p")
    assert type(err) is ProviderError and "(418)" in err.message


def test_preflight_reports_every_problem_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.oauth2.credentials

    from tuneport.providers.base import Provider

    provider = VertexProvider(
        beta=0.1, credentials=google.oauth2.credentials.Credentials(token="fake")
    )
    assert isinstance(provider, Provider)
    cfg = CFG.model_copy(update={"model": "gpt-4.1-mini"})
    with pytest.raises(ConfigError) as info:
        provider.preflight(cfg)
    text = info.value.one_line()
    for fragment in (
        "belongs to the openai provider",
        "beta applies to preference tuning only",
        "no bucket is set",
        "no Google Cloud project set",
        "--model gemini-2.5-flash",
        "--bucket NAME",
        "--project PROJECT_ID",
    ):
        assert fragment in text
    assert "\n" not in text


def test_preflight_passes_with_good_settings() -> None:
    import google.oauth2.credentials

    VertexProvider(
        project="p",
        bucket="gs://tp-bucket/x",
        credentials=google.oauth2.credentials.Credentials(token="fake"),
    ).preflight(CFG)
