"""How Vertex AI's errors read: its rules (project, region, base model, a refused request) before
the generic ones, and a lost connection."""

from __future__ import annotations

from tuneport.errors import (
    ConfigError,
    NotFoundError,
    ProviderError,
    TuneportError,
    UnreachableError,
    redact,
)
from tuneport.providers.errormap import (
    ErrorRule,
    apply_rules,
    generic_rules,
    one_line,
    rule,
    validate_fix,
)
from tuneport.providers.vertex.options import BASE_URL_ENV, DEFAULT_LOCATION

ADC_HINT = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"


def api_disabled_rule(title: str, api: str) -> ErrorRule:
    """A 403 saying the project has not enabled ``api`` (Vertex AI's, Cloud Storage's)."""
    return ErrorRule(
        ConfigError,
        f"the {title} API is not enabled for project {{project}}",
        f"gcloud services enable {api} --project {{project}}",
        status=frozenset({403}),
        contains=("service_disabled", "has not been used in project", "it is disabled"),
    )


def billing_rule(message: str, status: frozenset[int]) -> ErrorRule:
    """A refusal because the project has no billing account."""
    return ErrorRule(
        ConfigError,
        message,
        "gcloud billing projects link {project} --billing-account=ACCOUNT_ID",
        status=status,
        contains=("billing",),
    )


ERROR_RULES: tuple[ErrorRule, ...] = (
    api_disabled_rule("Vertex AI", "aiplatform.googleapis.com"),
    billing_rule("billing is not enabled for project {project}", frozenset({403, 400})),
    ErrorRule(
        ConfigError,
        "Vertex AI tuning is not available in {location}: {msg}",
        "use --location us-central1 (or another tuning region such as europe-west4)",
        status=frozenset({400, 404}),
        contains=(
            "not supported in region",
            "not supported in location",
            "unsupported region",
            "unsupported location",
            "is not available in region",
            "is not available in location",
            "location is not supported",
            "region is not supported",
        ),
    ),
    rule(
        NotFoundError,
        "base model {model} cannot be tuned: {msg}",
        "choose a tunable Gemini model, e.g. --model gemini-2.5-flash",
        status=[400, 404],
        contains=["base model", "basemodel", "not tunable", "does not support tuning"],
    ),
    rule(
        ProviderError,
        "Vertex AI rejected the request: {msg}",
        validate_fix("vertex", flags=" --model {model}"),
        status=[400],
    ),
    *generic_rules(
        "Vertex AI",
        status_url="https://status.cloud.google.com",
        key_message="Google credentials were rejected: {msg}",
        key_fix=ADC_HINT,
        denied_message="permission denied in project {project}: {msg}",
        denied_fix="grant your account roles/aiplatform.user: gcloud projects "
        "add-iam-policy-binding {project} --member=user:YOU --role=roles/aiplatform.user",
        rate_message="Vertex AI quota exhausted in {location} (still after retries): {msg}",
        rate_fix="wait and run the command again, or request more quota: gcloud alpha services "
        "quota list --service=aiplatform.googleapis.com --consumer=projects/{project}",
        not_found_fix="check the job id, --project and --location (see `tuneport jobs list`)",
        refused_fix="check --project, --location and the job settings",
    ),
)


def map_status(
    code: int | None,
    status: str | None,
    message: str,
    *,
    project: str = "",
    location: str = "",
    model: str = "",
) -> TuneportError:
    """The tuneport error for an API error triple (HTTP code, gRPC status, message), by the
    first matching :data:`ERROR_RULES`."""
    values = {
        "project": project or "PROJECT",
        "location": location or DEFAULT_LOCATION,
        "model": model or "MODEL",
    }
    return apply_rules(
        ERROR_RULES,
        status=code,
        code=status,
        message=message,
        match_text=f"{status or ''} {message}",
        values=values,
    )


def connection_error(exc: BaseException, base_url: str) -> ProviderError:
    return UnreachableError(
        f"cannot reach Vertex AI at {base_url}: {one_line(redact(str(exc)), 200)}",
        hint=f"check the network (and {BASE_URL_ENV} if set), then run the command again",
    )


__all__ = [
    "ADC_HINT",
    "ERROR_RULES",
    "api_disabled_rule",
    "billing_rule",
    "connection_error",
    "map_status",
]
