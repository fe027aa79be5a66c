"""Google credentials for Vertex AI: an access token, a key file or Application Default
Credentials, loaded once per backend (google-auth is imported only when they are needed)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneport.errors import AuthError, ConfigError, redact, register_secret
from tuneport.providers.errormap import one_line
from tuneport.providers.vertex.errors import ADC_HINT
from tuneport.providers.vertex.options import TOKEN_ENV, VertexOptions

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def load_credentials(options: VertexOptions) -> tuple[Credentials, str | None]:
    """The credentials ``options`` name (an access token, a key file, else Application Default
    Credentials) and the project they come with, if any."""
    import google.auth
    import google.auth.exceptions
    import google.oauth2.credentials

    token = (
        options.access_token.get_secret_value()
        if options.access_token
        else os.environ.get(TOKEN_ENV)
    )
    if token:
        register_secret(token)
        if not token.isascii() or any(c.isspace() or not c.isprintable() for c in token):
            source = "the access_token setting" if options.access_token else TOKEN_ENV
            raise ConfigError(
                f"{source} contains a space, line break, control or non-ASCII character "
                "(a copy-paste slip?)",
                hint="print a fresh token (gcloud auth print-access-token) and copy it again",
            )
        token_creds = google.oauth2.credentials.Credentials(token=token)  # type: ignore[no-untyped-call]
        return token_creds, None
    path = options.credentials_file or (
        Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"])
        if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        else None
    )
    try:
        if path is not None:
            creds, project = credentials_from_file(path)
        else:
            creds, project = google.auth.default(scopes=list(SCOPES))
    except google.auth.exceptions.DefaultCredentialsError as exc:
        where = f" in {path}" if path is not None else ""
        raise ConfigError(
            f"no usable Google credentials{where}: {one_line(str(exc), 160)}",
            hint=ADC_HINT,
        ) from None
    result: Credentials = creds
    return result, project


def credentials_from_file(path: Path) -> tuple[Any, str | None]:
    """Credentials (and project) from a service-account key or an ``authorized_user`` file."""
    import google.auth
    import google.oauth2.credentials
    from google.oauth2 import service_account

    fix = (
        "set GOOGLE_APPLICATION_CREDENTIALS (or --set credentials_file=) to a service-account "
        "JSON key, or run `gcloud auth application-default login`"
    )
    if not path.is_file():
        raise ConfigError(f"Google credentials file {path} does not exist", hint=fix)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"{path} is not a readable JSON credentials file: {exc}", hint=fix
        ) from None
    if not isinstance(info, dict):
        raise ConfigError(f"{path} is not a JSON credentials file", hint=fix)
    kind = info.get("type")
    scopes = list(SCOPES)
    try:  # a damaged key (bad PEM, missing fields) fails here, not as "a reply Vertex sent"
        if kind == "service_account":
            creds: Any = service_account.Credentials.from_service_account_info(info, scopes=scopes)  # type: ignore[no-untyped-call]
            return creds, info.get("project_id")
        if kind == "authorized_user":
            creds = google.oauth2.credentials.Credentials.from_authorized_user_info(info, scopes)  # type: ignore[no-untyped-call]
            return creds, info.get("quota_project_id")
    except (ValueError, KeyError, TypeError) as exc:
        detail = one_line(redact(str(exc)), 160)
        raise ConfigError(
            f"{path}: the {kind} credentials in it cannot be used ({type(exc).__name__}: {detail})",
            hint="download a new key for the service account (IAM > Service accounts > Keys), "
            "or " + fix.split(", or ")[-1],
        ) from None
    with warnings.catch_warnings():  # other types (external_account, ...): google-auth decides
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded: tuple[Any, str | None] = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            str(path), scopes=scopes
        )
    return loaded


def setup_source(options: VertexOptions) -> str | None:
    """Where the backend's credentials would come from, or ``None`` when nothing is set
    up (no token, key file, ADC file or project)."""
    adc_file = (
        Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
        / "application_default_credentials.json"
    )
    sources = [
        (options.access_token is not None, "the access_token setting"),
        (bool(os.environ.get(TOKEN_ENV)), TOKEN_ENV),
        (options.credentials_file is not None, "the credentials_file setting"),
        (
            bool(os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")),
            "GOOGLE_APPLICATION_CREDENTIALS",
        ),
        (adc_file.is_file(), "gcloud application-default credentials"),
        (
            bool(options.project or os.environ.get("GOOGLE_CLOUD_PROJECT")),
            "application default credentials",
        ),
    ]
    return next((name for present, name in sources if present), None)


def request_headers(creds: Credentials) -> dict[str, str]:
    """The headers that authorize a REST call with ``creds`` (refreshed first if stale)."""
    if not creds.valid:
        import google.auth.exceptions
        from google.auth.transport.requests import Request

        try:
            creds.refresh(Request())  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as exc:
            raise AuthError(
                f"Google credentials could not be refreshed: {one_line(str(exc), 160)}",
                hint=ADC_HINT,
            ) from None
    headers: dict[str, str] = {}
    creds.apply(headers)  # type: ignore[no-untyped-call]
    quota_project = getattr(creds, "quota_project_id", None)
    if quota_project:
        headers["x-goog-user-project"] = str(quota_project)
    return headers


__all__ = [
    "SCOPES",
    "credentials_from_file",
    "load_credentials",
    "request_headers",
    "setup_source",
]
