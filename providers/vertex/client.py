"""The base of the Vertex backend: its settings (project, location, base URL), the credentials
and the google-genai client, each built once, the retrying call that reads Vertex's errors, the
Cloud Storage stager and doctor's checks.

The client is always built with ``vertexai=True`` and explicit project, location and
credentials. tuneport owns retries (:mod:`tuneport.retry`); the SDK's own are left off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tuneport.errors import (
    AuthError,
    ConfigError,
    ProviderError,
    TuneportError,
    redact,
    register_secret,
)
from tuneport.providers.base import Check, base_url_override
from tuneport.providers.errormap import one_line
from tuneport.providers.hosted import HostedBackend
from tuneport.providers.vertex import NAME
from tuneport.providers.vertex.auth import load_credentials, setup_source
from tuneport.providers.vertex.errors import ADC_HINT, connection_error, map_status
from tuneport.providers.vertex.options import BASE_URL_ENV, DEFAULT_LOCATION, VertexOptions
from tuneport.retry import is_connection_error, is_retryable

if TYPE_CHECKING:
    from google import genai
    from google.auth.credentials import Credentials

    from tuneport.providers.vertex.gcs import GcsLocation, GcsStager


def enum_name(value: Any) -> str | None:
    """The name of an SDK enum value (or the text the SDK left it as)."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def as_int(value: Any) -> int | None:
    """An SDK field as an int, ``None`` where it is missing or not a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class VertexClient(HostedBackend["genai.Client"]):
    """Settings, credentials, the client and the calls of the Vertex backend."""

    name = NAME
    options_model = VertexOptions
    options: VertexOptions

    def __init__(self, *, credentials: Credentials | None = None, **kwargs: Any) -> None:
        # the job store, if passed, goes unused: uploads are content-addressed in GCS
        super().__init__(**kwargs)
        if self.options.access_token is not None:
            register_secret(self.options.access_token.get_secret_value())
        self._credentials = credentials
        self._adc_project: str | None = None
        self._stager: GcsStager | None = None
        self._snapshot: tuple[str, float, Any] | None = None  # (job, when, TuningJob)
        # eval calls chat from several threads: the credentials are loaded once, under a lock
        # (the client is built once under the base's lock, and loads them inside it)
        self._credentials_lock = threading.Lock()

    # --- settings ----------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self.options.location or os.environ.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION

    @property
    def base_url(self) -> str | None:
        """The base-URL override (setting or ``$GOOGLE_VERTEX_BASE_URL``), if any."""
        return base_url_override(self.options.base_url, BASE_URL_ENV)

    @property
    def rest_base_url(self) -> str:
        return self.base_url or f"https://{self.location}-aiplatform.googleapis.com/"

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            with self._credentials_lock:
                if self._credentials is None:
                    self._credentials, self._adc_project = load_credentials(self.options)
        return self._credentials

    @property
    def project(self) -> str:
        project = self.options.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            _ = self.credentials  # ADC / key files may name a project
            project = self._adc_project
        if not project:
            raise ConfigError(
                "no Google Cloud project set for Vertex AI",
                hint="pass --project PROJECT_ID (or --set project=...) or export "
                "GOOGLE_CLOUD_PROJECT=PROJECT_ID",
            )
        return project

    def _known_project(self) -> str:
        """The project if already known (for error hints); never triggers a credentials lookup."""
        return (
            self.options.project
            or os.environ.get("GOOGLE_CLOUD_PROJECT")
            or self._adc_project
            or ""
        )

    # --- the client and its calls -------------------------------------------------------------

    def _make_client(self) -> genai.Client:
        from google import genai
        from google.genai import types

        project, location, creds = self.project, self.location, self.credentials
        return genai.Client(
            vertexai=True,
            project=project,
            location=location,
            credentials=creds,
            http_options=types.HttpOptions(
                base_url=self.base_url, timeout=int(self.options.timeout * 1000)
            ),
        )

    def _where(self) -> str:
        return f"Vertex AI at {self.rest_base_url}"

    def _retryable(self, exc: BaseException) -> bool:
        return is_retryable(exc)  # an unreadable reply is not sent again (see _translate)

    def _translate(self, exc: BaseException) -> TuneportError | None:
        import google.auth.exceptions
        from google.genai import errors as genai_errors

        if isinstance(exc, genai_errors.APIError):
            return map_status(
                exc.code,
                exc.status,
                exc.message or str(exc),
                project=self._known_project(),
                location=self.location,
                model=self._model,
            )
        if isinstance(exc, ValueError):  # a reply that is not JSON, or not a TuningJob
            error = ProviderError(
                f"Vertex AI sent a reply tuneport cannot read ({type(exc).__name__})",
                hint="run the same command again: tuneport checks what the service did before "
                "it repeats anything",
            )
            error.outcome_unknown = True
            return error
        if isinstance(exc, google.auth.exceptions.GoogleAuthError):
            return AuthError(
                f"Google credentials could not be used: {one_line(redact(str(exc)), 200)}",
                hint=ADC_HINT,
            )
        if is_connection_error(exc):
            error = connection_error(exc, self.base_url or "aiplatform.googleapis.com")
            error.outcome_unknown = True
            return error
        return None

    # --- Cloud Storage ------------------------------------------------------------------------

    def _gcs(self, location: GcsLocation, **kwargs: Any) -> GcsStager:
        """A stager for ``location`` with this backend's project, region and credentials
        (none on the emulator: ``$STORAGE_EMULATOR_HOST``)."""
        from tuneport.providers.vertex.gcs import GcsStager

        emulated = bool(os.environ.get("STORAGE_EMULATOR_HOST"))
        return GcsStager(
            location,
            project=self.project,
            region=self.location,
            credentials=None if emulated else self.credentials,
            **kwargs,
        )

    def stager(self) -> GcsStager:
        if self._stager is None:
            from tuneport.providers.vertex.gcs import parse_location

            if not self.options.bucket:
                raise ConfigError(
                    "Vertex AI reads training data from Cloud Storage, but no bucket is set",
                    hint="pass --bucket NAME (or gs://NAME/prefix, or --set bucket=...)",
                )
            self._stager = self._gcs(
                parse_location(self.options.bucket), chunk_size=self.options.chunk_size
            )
        return self._stager

    # --- doctor ------------------------------------------------------------------------------

    def doctor(self, timeout: float) -> list[Check]:
        """Credentials (never shown), project, location, bucket and the API reachable."""
        import httpx

        source = setup_source(self.options)
        if source is None:
            return [
                Check(
                    "credentials",
                    "skip",
                    "no Google credentials or project set: the Vertex backend is not configured",
                    fix="gcloud auth application-default login; export GOOGLE_CLOUD_PROJECT=ID",
                )
            ]
        checks: list[Check] = []

        def check(name: str, found: Callable[[], str]) -> None:
            try:
                checks.append(Check(name, "ok", found()))
            except TuneportError as exc:
                checks.append(Check(name, "fail", exc.message, exc.hint))
            except Exception as exc:  # google-auth: metadata server, broken files, ...
                text = one_line(redact(f"{type(exc).__name__}: {exc}"), 200)
                checks.append(Check(name, "fail", text, ADC_HINT))

        def credentials() -> str:
            _ = self.credentials
            return f"from {source}"

        check("credentials", credentials)
        check("project", lambda: self.project)
        checks.append(Check("location", "ok", self.location))
        if self.options.bucket:
            from tuneport.providers.vertex.gcs import parse_location

            check("bucket", lambda: f"{parse_location(self.options.bucket or '')}")
        else:
            checks.append(
                Check(
                    "bucket",
                    "warn",
                    "no bucket set: train needs one for the training data",
                    fix="pass --bucket NAME to train (or bucket: in the job file)",
                )
            )
        url = self.rest_base_url
        try:
            httpx.get(url, timeout=timeout)
            checks.append(Check("server", "ok", f"{url} reachable"))
        except httpx.HTTPError as exc:
            checks.append(
                Check(
                    "server",
                    "fail",
                    f"cannot reach {url}: {type(exc).__name__}",
                    fix=f"check the network (and {BASE_URL_ENV} if set)",
                )
            )
        return checks


__all__ = ["VertexClient", "as_int", "enum_name"]
