"""Google Cloud Storage staging for Vertex AI tuning datasets.

Objects are content-addressed: ``gs://BUCKET/PREFIX/<sha256>/<filename>`` (``PREFIX`` defaults
to ``tuneport``), so a re-run with the same bytes finds the object and skips the upload, and a
different file can never silently replace one a job already points at. Every upload goes
through the resumable path with ``if_generation_match=0`` (create-only) and is checked against
the local MD5 and CRC32C afterwards.

``STORAGE_EMULATOR_HOST`` (honoured by ``google-cloud-storage`` itself) points all of this at an
emulator; tests use ``gcp-storage-emulator``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import google_crc32c

from tuneport.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    ProviderError,
    QuotaError,
    TuneportError,
)
from tuneport.progress import NullProgress, Progress
from tuneport.providers.errormap import ErrorRule, apply_rules
from tuneport.providers.vertex.errors import ADC_HINT, api_disabled_rule, billing_rule
from tuneport.retry import announce_retry

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud import storage

T = TypeVar("T")

DEFAULT_PREFIX = "tuneport"
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024  # resumable chunk; must be a multiple of 256 KiB
_CHUNK_UNIT = 256 * 1024
_READ_SIZE = 1 << 20

# Bucket names: 3-63 chars of lowercase letters, digits, dashes, underscores and dots.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class GcsLocation:
    """Where tuneport stages files: a bucket and an object-name prefix (no slashes at ends)."""

    bucket: str
    prefix: str = DEFAULT_PREFIX

    def object_name(self, sha256: str, filename: str) -> str:
        parts = [p for p in (self.prefix, sha256, filename) if p]
        return "/".join(parts)

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"


def parse_location(value: str) -> GcsLocation:
    """``NAME``, ``gs://NAME`` or ``gs://NAME/some/prefix`` → :class:`GcsLocation`."""
    text = value.strip()
    rest = text[len("gs://") :] if text.startswith("gs://") else text
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"invalid GCS bucket {value!r}",
            hint="pass --bucket NAME or gs://NAME/prefix (3-63 lowercase letters, digits, -_.)",
        )
    if text.startswith("gs://") and prefix:
        return GcsLocation(bucket, prefix)
    return GcsLocation(bucket, DEFAULT_PREFIX)


@dataclass(frozen=True)
class Digests:
    """The three digests of one local file, GCS-style (base64) for md5/crc32c."""

    sha256: str
    md5_b64: str
    crc32c_b64: str
    size: int


def file_digests(path: Path) -> Digests:
    """SHA-256 (hex), MD5 and CRC32C (base64, as GCS reports them) in one read."""
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    crc = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_READ_SIZE):
            sha.update(chunk)
            md5.update(chunk)
            crc.update(chunk)  # type: ignore[no-untyped-call]
            size += len(chunk)
    crc_digest: bytes = crc.digest()  # type: ignore[no-untyped-call]
    return Digests(
        sha256=sha.hexdigest(),
        md5_b64=base64.b64encode(md5.digest()).decode("ascii"),
        crc32c_b64=base64.b64encode(crc_digest).decode("ascii"),
        size=size,
    )


@dataclass(frozen=True)
class UploadResult:
    uri: str
    reused: bool  # an identical object was already there
    size: int


def _same_content(blob: Any, digests: Digests) -> bool:
    """True when the remote object's checksums equal the local ones (all that both report)."""
    checks = [
        (getattr(blob, "md5_hash", None), digests.md5_b64),
        (getattr(blob, "crc32c", None), digests.crc32c_b64),
    ]
    compared = [(remote, local) for remote, local in checks if remote]
    if not compared:
        return False
    size = getattr(blob, "size", None)
    if size is not None and int(size) != digests.size:
        return False
    return all(remote == local for remote, local in compared)


# (HTTP code, message fragments) -> error class, one-line message and fix; ``message``/``hint``
# may use ``{msg}``, ``{status}``, ``{bucket}`` and ``{project}``.
STORAGE_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        AuthError,
        "Google credentials were rejected by Cloud Storage: {msg}",
        ADC_HINT,
        status=frozenset({401}),
    ),
    billing_rule("billing is not enabled for project {project}: {msg}", frozenset({403})),
    api_disabled_rule("Cloud Storage", "storage.googleapis.com"),
    ErrorRule(
        AuthError,
        "no access to gs://{bucket}: {msg}",
        "grant roles/storage.admin (gcloud storage buckets add-iam-policy-binding gs://{bucket} "
        "--member=user:YOU --role=roles/storage.admin) or choose another --bucket",
        status=frozenset({403}),
    ),
    ErrorRule(
        ConfigError,
        "bucket name {bucket!r} is taken by another project",
        "bucket names are global: choose another --bucket",
        status=frozenset({409}),
    ),
    ErrorRule(
        QuotaError,
        "Cloud Storage rate limit: {msg}",
        "wait a minute and run the command again",
        status=frozenset({429}),
    ),
    ErrorRule(
        ProviderError,
        "Cloud Storage request failed ({status}): {msg}",
        "check --bucket and --project, then run the command again",
    ),
)


def storage_error(exc: Exception, *, bucket: str, project: str | None) -> TuneportError:
    """Map a ``google.api_core`` error from GCS onto tuneport's hierarchy (one line + fix)."""
    raw = getattr(exc, "code", None)
    code = raw if isinstance(raw, int) else None
    values = {
        "status": code if code is not None else type(exc).__name__,
        "bucket": bucket,
        "project": project or "PROJECT",
    }
    text = str(getattr(exc, "message", None) or exc)
    return apply_rules(STORAGE_RULES, status=code, code=None, message=text, values=values)


class AnnouncedRetry:
    """google-cloud-storage's own retry (``DEFAULT_RETRY``: the same errors, backoff and
    deadline), each retry told to tuneport's retry notes the way tuneport's own are
    (:func:`tuneport.retry.announce_retry`), so a slow upload is never silent."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, func: Callable[..., T]) -> Callable[..., T]:
        from google.cloud.storage.retry import DEFAULT_RETRY

        def run(*args: Any, **kwargs: Any) -> T:
            tries = 1

            def note(exc: Exception) -> None:
                nonlocal tries
                tries += 1
                announce_retry(self.where, exc, attempt=tries)

            result: T = DEFAULT_RETRY(func, on_error=note)(*args, **kwargs)
            return result

        return run


class GcsStager:
    """Creates the bucket if needed and uploads files content-addressed and verified."""

    def __init__(
        self,
        location: GcsLocation,
        *,
        project: str | None,
        region: str,
        credentials: Credentials | None = None,
        client: storage.Client | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if chunk_size <= 0 or chunk_size % _CHUNK_UNIT:
            raise ConfigError(
                f"GCS chunk size {chunk_size} is not a multiple of 256 KiB",
                hint="use e.g. 8388608 (8 MiB)",
            )
        self.location = location
        self.project = project
        self.region = region
        self.chunk_size = chunk_size
        self._credentials = credentials
        self._client = client
        self._bucket_checked = False
        self.retry = AnnouncedRetry(f"Cloud Storage at gs://{location.bucket}")

    @property
    def client(self) -> storage.Client:
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client(project=self.project, credentials=self._credentials)
        return self._client

    def _call(self, fn: Callable[[], Any]) -> Any:
        from google.api_core import exceptions as gexc

        try:
            return fn()
        except gexc.GoogleAPICallError as exc:
            raise storage_error(exc, bucket=self.location.bucket, project=self.project) from exc

    def download(self, name: str, out: Path) -> None:
        """Object ``name`` of the bucket written to ``out``."""
        from google.api_core import exceptions as gexc

        uri = self.location.uri(name)
        blob = self.client.bucket(self.location.bucket).blob(name)
        try:
            blob.download_to_filename(str(out), retry=self.retry)
        except gexc.NotFound:
            raise NotFoundError(
                f"Cloud Storage no longer holds {uri} (deleted?)",
                hint="port from a copy of the data instead: `tuneport train` with the file",
            ) from None
        except gexc.GoogleAPICallError as exc:
            raise storage_error(exc, bucket=self.location.bucket, project=self.project) from None

    def ensure_bucket(self, progress: Progress | None = None) -> bool:
        """Create the bucket (job's region, uniform access) unless it exists; True if created."""
        if self._bucket_checked:
            return False
        from google.cloud import storage

        name = self.location.bucket
        existing = self._call(lambda: self.client.lookup_bucket(name, retry=self.retry))
        created = False
        if existing is None:
            bucket = storage.Bucket(self.client, name=name)
            bucket.iam_configuration.uniform_bucket_level_access_enabled = True
            self._call(
                lambda: self.client.create_bucket(
                    bucket, project=self.project, location=self.region, retry=self.retry
                )
            )
            created = True
            (progress or NullProgress()).note(f"created bucket gs://{name} in {self.region}")
        self._bucket_checked = True
        return created

    def upload(
        self,
        path: Path,
        *,
        progress: Progress | None = None,
        digests: Digests | None = None,
        content_type: str = "application/jsonl",
    ) -> UploadResult:
        """Upload ``path`` under its SHA-256; reuse an identical object, refuse a different one."""
        progress = progress or NullProgress()
        digests = digests or file_digests(path)
        self.ensure_bucket(progress)
        name = self.location.object_name(digests.sha256, path.name)
        uri = self.location.uri(name)
        bucket = self.client.bucket(self.location.bucket)

        existing = self._call(lambda: bucket.get_blob(name, retry=self.retry))
        if existing is not None:
            return self._reuse_or_refuse(existing, digests, uri, progress)

        from google.api_core import exceptions as gexc
        from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

        blob = bucket.blob(name)
        progress.start(f"upload {path.name}", total=digests.size)
        unreadable: Exception | None = None
        try:
            with (
                path.open("rb") as src,
                blob.open(
                    "wb",
                    chunk_size=self.chunk_size,
                    if_generation_match=0,
                    content_type=content_type,
                    retry=self.retry,
                ) as dst,
            ):
                while chunk := src.read(self.chunk_size):
                    dst.write(chunk)
                    progress.advance(len(chunk))
        except gexc.PreconditionFailed:
            # Someone created the same name between our check and our upload.
            progress.finish()
            raced = self._call(lambda: bucket.get_blob(name, retry=self.retry))
            if raced is None:
                raise ProviderError(
                    f"upload to {uri} was refused (precondition failed)",
                    hint="run the command again",
                ) from None
            return self._reuse_or_refuse(raced, digests, uri, progress)
        except gexc.GoogleAPICallError as exc:
            progress.finish()
            raise storage_error(exc, bucket=self.location.bucket, project=self.project) from exc
        except (InvalidResponse, DataCorruption, json.JSONDecodeError) as exc:
            # a reply to a chunk that could not be read: the object may have arrived whole
            unreadable = exc
        progress.finish()

        uploaded = self._call(lambda: bucket.get_blob(name, retry=self.retry))
        if uploaded is None and unreadable is not None:
            raise ProviderError(
                f"the upload of {path.name} to {uri} got a reply tuneport cannot read "
                f"({type(unreadable).__name__}) and the object is not there",
                hint="run the command again (an object that arrived whole is reused)",
            )
        if uploaded is None or not _same_content(uploaded, digests):
            if uploaded is not None:
                generation = uploaded.generation
                self._call(
                    lambda: uploaded.delete(if_generation_match=generation, retry=self.retry)
                )
            raise ProviderError(
                f"checksum mismatch after uploading {path.name} to {uri}",
                hint="the upload was corrupted in transit; run the command again",
            )
        return UploadResult(uri=uri, reused=False, size=digests.size)

    def _reuse_or_refuse(
        self, blob: Any, digests: Digests, uri: str, progress: Progress
    ) -> UploadResult:
        if _same_content(blob, digests):
            progress.note(f"{uri} already uploaded (same checksum); skipping")
            return UploadResult(uri=uri, reused=True, size=digests.size)
        raise ProviderError(
            f"{uri} already exists with different content; refusing to overwrite it",
            hint="delete that object or use another --bucket gs://BUCKET/PREFIX",
        )
