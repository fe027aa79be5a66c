"""GCS staging against a real gcp-storage-emulator on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gcs_emulator import GcsProxy, gcs_emulator, gcs_env, gcs_proxy  # noqa: F401
from tuneport.errors import ConfigError, ProviderError
from tuneport.providers.vertex.gcs import (
    DEFAULT_PREFIX,
    GcsLocation,
    GcsStager,
    file_digests,
    parse_location,
)

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("gcs_env")]


class RecordingProgress:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def start(self, task: str, total: int | None = None) -> None:
        self.events.append(("start", (task, total)))

    def advance(self, amount: int = 1) -> None:
        self.events.append(("advance", amount))

    def note(self, text: str) -> None:
        self.events.append(("note", text))

    def finish(self) -> None:
        self.events.append(("finish", None))

    def advanced(self) -> int:
        return sum(int(a) for kind, a in self.events if kind == "advance")  # type: ignore[call-overload]

    def notes(self) -> list[str]:
        return [str(t) for kind, t in self.events if kind == "note"]


def _client():  # type: ignore[no-untyped-def]
    from google.cloud import storage

    return storage.Client(project="p")


def _stager(bucket: str = "tp-bucket", **kw: object) -> GcsStager:
    return GcsStager(
        parse_location(bucket), project="p", region="us-central1", client=_client(), **kw
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "bucket", "prefix"),
    [
        ("my-bucket", "my-bucket", DEFAULT_PREFIX),
        ("gs://my-bucket", "my-bucket", DEFAULT_PREFIX),
        ("gs://my-bucket/", "my-bucket", DEFAULT_PREFIX),
        ("gs://my-bucket/team/runs/", "my-bucket", "team/runs"),
    ],
)
def test_parse_location(value: str, bucket: str, prefix: str) -> None:
    assert parse_location(value) == GcsLocation(bucket, prefix)


@pytest.mark.parametrize("value", ["", "gs://", "UPPER", "a", "gs://bad..name/x", "s3://x"])
def test_parse_location_rejects_bad_names(value: str) -> None:
    with pytest.raises(ConfigError, match="--bucket"):
        parse_location(value)


def test_digests_match_gcs_encoding(tmp_path: Path) -> None:
    data = b'{"contents": []}\n' * 1000
    path = tmp_path / "train.jsonl"
    path.write_bytes(data)
    d = file_digests(path)
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.md5_b64 == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert d.size == len(data)


def test_creates_bucket_in_region_then_uploads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}\n')
    client = _client()
    assert client.lookup_bucket("tp-new") is None
    created: list[tuple[bool, dict[str, object]]] = []
    real_create = client.create_bucket

    def spy(bucket: Any, **kw: object) -> object:  # the emulator ignores location/IAM: spy
        created.append((bucket.iam_configuration.uniform_bucket_level_access_enabled, kw))
        return real_create(bucket, **kw)

    monkeypatch.setattr(client, "create_bucket", spy)
    progress = RecordingProgress()
    stager = GcsStager(
        parse_location("gs://tp-new/exp1"), project="p", region="europe-west4", client=client
    )
    result = stager.upload(path, progress=progress)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.uri == f"gs://tp-new/exp1/{sha}/train.jsonl"
    assert not result.reused
    assert client.lookup_bucket("tp-new") is not None
    assert any("created bucket gs://tp-new in europe-west4" in n for n in progress.notes())
    ((uniform_access, kwargs),) = created
    assert kwargs["location"] == "europe-west4" and kwargs["project"] == "p"
    assert uniform_access is True
    blob = client.bucket("tp-new").get_blob(f"exp1/{sha}/train.jsonl")
    assert blob.download_as_bytes() == path.read_bytes()
    assert progress.advanced() == path.stat().st_size
    # A second stager does not create it again.
    again = GcsStager(
        parse_location("gs://tp-new/exp1"), project="p", region="europe-west4", client=client
    )
    assert again.ensure_bucket() is False


def test_ten_mb_resumable_round_trip_with_progress(tmp_path: Path) -> None:
    data = os.urandom(10 * 1024 * 1024 + 123)
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    progress = RecordingProgress()
    stager = _stager(chunk_size=1024 * 1024)
    result = stager.upload(path, progress=progress)
    assert not result.reused and result.size == len(data)
    # 11 chunk writes reported, summing to the file size.
    advances = [a for kind, a in progress.events if kind == "advance"]
    assert len(advances) == 11
    assert progress.advanced() == len(data)
    assert ("start", ("upload big.jsonl", len(data))) in progress.events
    assert progress.events[-1] == ("finish", None)
    name = result.uri.removeprefix("gs://tp-bucket/")
    assert _client().bucket("tp-bucket").blob(name).download_as_bytes() == data


def test_identical_object_is_not_uploaded_twice(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"same bytes\n" * 100)
    first = _stager().upload(path)
    blob = _client().bucket("tp-bucket").get_blob(first.uri.removeprefix("gs://tp-bucket/"))
    generation = blob.generation
    progress = RecordingProgress()
    second = _stager().upload(path, progress=progress)
    assert second.reused and second.uri == first.uri
    assert progress.advanced() == 0
    assert any("already uploaded" in n for n in progress.notes())
    blob = _client().bucket("tp-bucket").get_blob(first.uri.removeprefix("gs://tp-bucket/"))
    assert blob.generation == generation  # the emulator bumps it on every write


def test_refuses_to_overwrite_a_different_object(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"mine\n")
    stager = _stager()
    stager.ensure_bucket()
    sha = hashlib.sha256(b"mine\n").hexdigest()
    name = f"{DEFAULT_PREFIX}/{sha}/train.jsonl"
    _client().bucket("tp-bucket").blob(name).upload_from_string(b"someone else's\n")
    with pytest.raises(ProviderError, match="different content; refusing to overwrite"):
        stager.upload(path)
    assert _client().bucket("tp-bucket").blob(name).download_as_bytes() == b"someone else's\n"


def test_checksum_mismatch_after_upload_deletes_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"original\n")
    stale = file_digests(path)
    path.write_bytes(b"changed after prepare\n")  # the bytes no longer match the digests
    with pytest.raises(ProviderError, match="checksum mismatch"):
        _stager().upload(path, digests=stale)
    name = f"{DEFAULT_PREFIX}/{stale.sha256}/train.jsonl"
    assert _client().bucket("tp-bucket").get_blob(name) is None


def test_chunk_size_must_be_a_multiple_of_256k() -> None:
    with pytest.raises(ConfigError, match="256 KiB"):
        GcsStager(GcsLocation("b"), project="p", region="us-central1", chunk_size=1000)


@pytest.mark.parametrize(
    ("exc_name", "message", "kind", "fragment", "fix"),
    [
        ("Unauthorized", "Invalid Credentials", "AuthError", "rejected", "application-default"),
        ("Forbidden", "The billing account is disabled", "ConfigError", "billing", "billing"),
        (
            "Forbidden",
            "tuner@p.iam does not have storage.buckets.get access",
            "AuthError",
            "no access to gs://tp-bucket",
            "roles/storage.admin",
        ),
        (
            "Forbidden",
            "Cloud Storage JSON API has not been used in project p before or it is disabled",
            "ConfigError",
            "not enabled",
            "gcloud services enable storage.googleapis.com --project p",
        ),
        (
            "Conflict",
            "Your previous request to create the named bucket succeeded",
            "ConfigError",
            "taken",
            "--bucket",
        ),
        ("TooManyRequests", "slow down", "QuotaError", "rate limit", "wait"),
        ("InternalServerError", "backend error", "ProviderError", "(500)", "--bucket"),
    ],
)
def test_storage_errors_map_to_one_line_with_a_fix(
    exc_name: str, message: str, kind: str, fragment: str, fix: str
) -> None:
    from google.api_core import exceptions as gexc

    from tuneport.providers.vertex.gcs import storage_error

    err = storage_error(getattr(gexc, exc_name)(message), bucket="tp-bucket", project="p")
    assert type(err).__name__ == kind
    assert fragment in err.message and fix in (err.hint or "")
    assert "\n" not in err.one_line()


def test_no_access_to_an_existing_bucket_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.api_core import exceptions as gexc

    from tuneport.errors import AuthError

    client = _client()

    def forbidden(name: str, **_kw: object) -> object:
        raise gexc.Forbidden("caller does not have storage.buckets.get access")

    monkeypatch.setattr(client, "lookup_bucket", forbidden)
    stager = GcsStager(
        parse_location("tp-bucket"), project="p", region="us-central1", client=client
    )
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"x\n")
    with pytest.raises(AuthError, match="no access to gs://tp-bucket"):
        stager.upload(path)


def test_the_storage_librarys_own_retries_are_announced(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """google-cloud-storage retries a 503 by itself (a JSON call or an upload chunk); each retry
    is told to tuneport's retry notes, which the CLI prints, as tuneport's own retries are."""
    from tuneport.retry import retry_notes

    proxy: GcsProxy = request.getfixturevalue("gcs_proxy")  # after gcs_env: it wins
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 100)
    busy = {"error": {"code": 503, "message": "backend error"}}
    proxy.faults.fail("GET", r"^/storage/v1/b/tp-bucket$", 503, busy, after=False)
    proxy.faults.fail("PUT", r"^/upload/", 503, busy, after=False)
    notes: list[str] = []
    with retry_notes(notes.append):
        result = _stager().upload(path)
    assert notes == ["Cloud Storage at gs://tp-bucket: HTTP 503; retrying (try 2)"] * 2
    assert not result.reused
    assert _client().bucket("tp-bucket").get_blob(result.uri.split("/", 3)[3]) is not None
