"""Azure OpenAI (Microsoft Foundry) as a service over the OpenAI protocol: its settings, error
rules, client and :data:`SERVICE` (what a new OpenAI-compatible backend takes).

Facts (sources in ../shared/PROVIDERS.md, "Azure OpenAI"; Microsoft's docs D1-D10, the REST
specs S1-S3, the ``openai`` SDK P1):

* the v1 data plane ``https://{resource}.openai.azure.com/openai/v1/`` takes the plain OpenAI
  client, no api-version (D1, S2); a key travels as ``api-key`` (and, with the OpenAI client, as
  a bearer token, which v1 accepts), or an Entra ID token for
  ``https://cognitiveservices.azure.com/.default`` (D1) through ``azure-identity``, which
  tuneport does not depend on: it is used when installed;
* jobs take an extra ``trainingType`` (Standard / GlobalStandard / Developer; the official
  sample: omitting it "may lead to unsupported behavior", A1), sent in the request body;
* files start ``pending`` and a job is created only on a ``processed`` file (A1, S1);
* statuses pending, running, pausing, paused, resuming, succeeded, cancelled, failed (S1);
  running jobs can be paused and resumed (D2);
* a tuned model answers chat only from a deployment, created through the ARM management plane
  with a management token (D3, D4, S3); Standard and Global deployments bill $1.70 an hour while
  they exist, Developer ones none but are deleted after 24 h, and any deployment idle for 15
  days is deleted (D5, D6, D7).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from tuneport.errors import ConfigError, NotFoundError, ProviderError
from tuneport.providers.errormap import refused_file, rule, untunable_model
from tuneport.providers.openai_api import Bounds, FileLimits, ProtocolOptions, Service
from tuneport.providers.sdk import Service as ApiService
from tuneport.schemas import JobConfig, JobState

if TYPE_CHECKING:
    from openai import OpenAI

NAME = "azure"
DATA_SCOPE = "https://cognitiveservices.azure.com/.default"  # D1
IDENTITY_HINT = "pip install azure-identity (for Entra ID sign-in), or set AZURE_OPENAI_API_KEY"
TIERS = ("Standard", "GlobalStandard", "Developer")
DEFAULT_TIER = "GlobalStandard"
# tunable base models and the versions Azure's create takes (D8)
MODELS: dict[str, str] = {
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
}

STATES: dict[str, JobState] = {  # S1 FineTuningState
    "created": JobState.QUEUED,
    "pending": JobState.QUEUED,
    "running": JobState.RUNNING,
    "pausing": JobState.RUNNING,
    "paused": JobState.QUEUED,
    "resuming": JobState.QUEUED,
    "succeeded": JobState.SUCCEEDED,
    "cancelled": JobState.CANCELLED,
    "failed": JobState.FAILED,
}


class AzureOptions(ProtocolOptions):
    """Settings of the Azure OpenAI backend (``--set key=value`` or ``options:``)."""

    endpoint: str | None = None  # default: $AZURE_OPENAI_ENDPOINT (https://RES.openai.azure.com)
    auth: Literal["key", "entra"] | None = None  # default: key when one is set, else Entra ID
    training_type: str = DEFAULT_TIER  # Standard | GlobalStandard | Developer
    file_timeout: float = Field(default=1800.0, gt=0)  # wait for an upload to be processed
    # chat through a deployment (the ARM management plane)
    deploy: bool = False  # create a deployment of the tuned model for chat (asks first)
    deployment: str | None = None  # chat through this existing deployment instead
    subscription: str | None = None  # default: $AZURE_SUBSCRIPTION_ID
    resource_group: str | None = None  # default: $AZURE_RESOURCE_GROUP
    account: str | None = None  # default: $AZURE_OPENAI_ACCOUNT, else the endpoint's resource
    management_token: SecretStr | None = None  # default: $AZURE_MANAGEMENT_TOKEN, else Entra ID
    management_url: str | None = None  # default: $AZURE_MANAGEMENT_URL, else management.azure.com
    deploy_capacity: int = Field(default=1, ge=1)
    deploy_timeout: float = Field(default=1800.0, gt=0)

    @field_validator("training_type")
    @classmethod
    def _tier(cls, value: str) -> str:
        """Microsoft's docs spell the tiers in several cases (D2, D3, A1)."""
        aliases = {t.lower(): t for t in TIERS} | {
            "global": "GlobalStandard",
            "developertier": "Developer",
        }
        tier = aliases.get(value.strip().lower())
        if tier is None:
            raise ValueError(f"training_type {value!r} is not one of {', '.join(TIERS)}")
        return tier


API = ApiService.of(
    "Azure OpenAI",
    "AZURE_OPENAI",
    default_url="",  # from the endpoint (azure_base_url)
    key_url="the Azure portal (resource > Keys and Endpoint)",
    module="openai",
    url_hint="(https://RESOURCE.openai.azure.com/openai/v1)",
    status_url="https://azure.status.microsoft",
).with_rules(
    untunable_model(
        "choose a tunable model and region (gpt-4.1, gpt-4.1-mini, gpt-4.1-nano, gpt-4o, "
        "gpt-4o-mini) or another --set training_type",
        where=" on this resource with this training tier",
        contains=["does not support fine-tuning", "not support fine-tuning"],
    ),
    rule(
        NotFoundError,
        "Azure OpenAI has no deployment named {model}: {msg}",
        "create one with `tuneport chat JOB_ID --set deploy=true`, or name an existing one "
        "with --set deployment=NAME",
        status=[404],
        codes=["DeploymentNotFound"],
    ),
    refused_file(
        "Azure OpenAI",
        NAME,
        codes=["jsonlValidationFailed", "invalid_file", "invalidPayload"],
        contains=["training file", "training_file"],
    ),
    rule(
        ProviderError,
        "Azure OpenAI filtered the content: {msg}",
        "rephrase the message (Azure's content filter refused it)",
        status=[400],
        codes=["content_filter", "contentFilter"],
    ),
    key_message="Azure OpenAI rejected the credentials: {msg}",
    key_fix="set AZURE_OPENAI_API_KEY to a key of the resource (Azure portal: Keys and "
    "Endpoint), or sign in for Entra ID (az login) with azure-identity installed",
    denied_fix="fine-tuning needs the Cognitive Services OpenAI Contributor role on the resource",
    rate_message="Azure OpenAI rate limit or quota still hit after retries: {msg}",
    rate_fix="wait a few minutes, or raise the resource's quota in the Azure portal",
    not_found_fix="check the id (see `tuneport jobs list`) and AZURE_OPENAI_ENDPOINT",
)
ERROR_RULES = API.rules


def endpoint_of(options: AzureOptions) -> str | None:
    """The resource endpoint (setting, else $AZURE_OPENAI_ENDPOINT) without a trailing route."""
    url = options.endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
    if not url:
        return None
    url = url.strip().rstrip("/")
    for tail in ("/openai/v1", "/openai"):
        url = url.removesuffix(tail)
    return url


def azure_base_url(options: AzureOptions) -> str:
    """``base_url`` (setting, else $AZURE_OPENAI_BASE_URL) or ``{endpoint}/openai/v1``."""
    override = API.url_override(options.base_url)
    if override:
        return override
    endpoint = endpoint_of(options)
    if not endpoint:
        raise ConfigError(
            "AZURE_OPENAI_ENDPOINT is not set",
            hint="export AZURE_OPENAI_ENDPOINT=https://RESOURCE.openai.azure.com "
            "(Azure portal: Keys and Endpoint) or --set endpoint=...",
        )
    import httpx

    try:
        parsed = httpx.URL(endpoint)
        valid = parsed.scheme in ("http", "https") and bool(parsed.host)
    except (httpx.InvalidURL, ValueError, TypeError):
        valid = False
    if not valid:
        source = "the endpoint setting" if options.endpoint else "AZURE_OPENAI_ENDPOINT"
        raise ConfigError(
            f"{source} {endpoint!r} is not an https URL with a host",
            hint="set it to https://RESOURCE.openai.azure.com (Azure portal: Keys and Endpoint)",
        )
    return endpoint + "/openai/v1"


def azure_identity() -> Any:
    """``azure.identity`` when installed; else a one-line ConfigError naming the install."""
    try:
        import azure.identity as identity  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError(
            "no Azure OpenAI key is set and Entra ID sign-in needs azure-identity, which is "
            "not installed",
            hint=IDENTITY_HINT,
        ) from None
    return identity


def uses_entra(options: AzureOptions) -> bool:
    if options.auth is not None:
        return options.auth == "entra"
    return not API.api_key(options.api_key)


def build_client(options: AzureOptions) -> OpenAI:
    """The plain OpenAI client on the v1 data plane: the key as ``api-key`` (and bearer), or an
    Entra ID token provider; ``max_retries=0`` (tuneport's retries and create-once own it)."""
    from openai import OpenAI

    base_url = azure_base_url(options)
    if uses_entra(options):
        identity = azure_identity()
        provider = identity.get_bearer_token_provider(identity.DefaultAzureCredential(), DATA_SCOPE)
        return OpenAI(api_key=provider, base_url=base_url, timeout=options.timeout, max_retries=0)
    key = API.api_key(options.api_key)
    if not key:
        what, fix = API.key_problem()
        raise ConfigError(what, hint=fix)
    return OpenAI(
        api_key=key,
        base_url=base_url,
        default_headers={"api-key": key},
        timeout=options.timeout,
        max_retries=0,
    )


def credential_problems(options: AzureOptions) -> list[tuple[str, str]]:
    """The endpoint and a credential (a key, or azure-identity for Entra ID)."""
    problems: list[tuple[str, str]] = []
    try:
        azure_base_url(options)
    except ConfigError as exc:
        problems.append((exc.message, exc.hint or ""))
    if uses_entra(options):
        try:
            azure_identity()
        except ConfigError as exc:
            problems.append((exc.message, exc.hint or IDENTITY_HINT))
    return problems


def training_body(options: AzureOptions, cfg: JobConfig) -> dict[str, Any]:
    """Azure's extra create field: the training tier (D2, D3: ``extra_body``)."""
    return {"trainingType": options.training_type}


SERVICE = Service(
    name=NAME,
    api=API,
    options=AzureOptions,
    states=STATES,
    bounds=Bounds(
        source="Azure OpenAI v1 spec (S2: OpenAI's CreateFineTuningJobRequest); suffix at most "
        "40 characters of [a-zA-Z0-9-_] (S1, D2)",
        suffix=(1, 40),
        suffix_chars=r"[A-Za-z0-9_-]+",
    ),
    # POST /files takes up to 512 MB (D2); the v1 spec has no Uploads API (S2)
    limits=lambda: FileLimits(512 * 2**20, 512 * 2**20, 64 * 2**20),
    client=build_client,
    credential_problems=credential_problems,
    extra_body=training_body,
    wait_for_files=True,
    export_title="convert to Azure OpenAI JSONL",
    deleted_files=("error", "deleted", "deleting"),
)
