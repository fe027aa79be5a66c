"""Azure OpenAI (Microsoft Foundry) fine-tuning: a service over the OpenAI protocol.

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

import dataclasses
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from tuneport.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    ProviderError,
    QuotaError,
    redact,
    register_secret,
)
from tuneport.providers.base import Backend, ChatOptions, Check, HourlyResource
from tuneport.providers.errormap import ErrorRule
from tuneport.providers.openai import RULES as OPENAI_RULES
from tuneport.providers.openai import counter as openai_counter
from tuneport.providers.openai_api import (
    Bounds,
    FileLimits,
    OpenAIProtocol,
    ProtocolOptions,
    Service,
)
from tuneport.providers.sdk import Service as ApiService
from tuneport.retry import default_interval
from tuneport.schemas import JobConfig, JobRef, JobState, Message

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from openai import OpenAI

NAME = "azure"
DATA_SCOPE = "https://cognitiveservices.azure.com/.default"  # D1
ARM_SCOPE = "https://management.azure.com/.default"  # D4
ARM_URL = "https://management.azure.com"
ARM_API_VERSION = "2024-10-01"  # S3 stable; D3/D4 use it
IDENTITY_HINT = "pip install azure-identity (for Entra ID sign-in), or set AZURE_OPENAI_API_KEY"
TIERS = ("Standard", "GlobalStandard", "Developer")
DEFAULT_TIER = "GlobalStandard"
# the deployment SKU of each training tier (D3/D4 "standard", A1 "GlobalStandard", D5 REST
# "developertier"; ARM SKU names are matched without case [U])
DEPLOYMENT_SKUS = {
    "Standard": "standard",
    "GlobalStandard": "GlobalStandard",
    "Developer": "developertier",
}
HOURLY_USD = 1.70  # Standard / Global Standard fine-tuned deployment hosting (D6, 2026-02-11)
IDLE_DAYS = 15  # a customized deployment idle this long is deleted (D7)
DEVELOPER_HOURS = 24  # Developer-tier deployments are deleted after this long (D5, D6)
# tunable base models and the versions Azure's create takes (D8)
MODELS: dict[str, str] = {
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
}
TUNED = re.compile(r"\.ft-[0-9a-f]+$|^ftchkpt-")  # `<base>.ft-<hex>` (S1), checkpoints (D2)

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


ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        AuthError,
        "Azure OpenAI rejected the credentials: {msg}",
        "set AZURE_OPENAI_API_KEY to a key of the resource (Azure portal: Keys and Endpoint), "
        "or sign in for Entra ID (az login) with azure-identity installed",
        status=frozenset({401}),
    ),
    ErrorRule(
        AuthError,
        "Azure OpenAI denied access: {msg}",
        "fine-tuning needs the Cognitive Services OpenAI Contributor role on the resource",
        status=frozenset({403}),
    ),
    ErrorRule(
        QuotaError,
        "Azure OpenAI rate limit or quota still hit after retries: {msg}",
        "wait a few minutes, or raise the resource's quota in the Azure portal",
        status=frozenset({429}),
    ),
    ErrorRule(
        NotFoundError,
        "model {model} cannot be fine-tuned on this resource with this training tier: {msg}",
        "choose a tunable model and region (gpt-4.1, gpt-4.1-mini, gpt-4.1-nano, gpt-4o, "
        "gpt-4o-mini) or another --set training_type",
        status=frozenset({400, 404}),
        contains=("does not support fine-tuning", "not support fine-tuning"),
    ),
    ErrorRule(
        NotFoundError,
        "Azure OpenAI has no deployment named {model}: {msg}",
        "create one with `tuneport chat JOB_ID --set deploy=true`, or name an existing one "
        "with --set deployment=NAME",
        status=frozenset({404}),
        codes=frozenset({"DeploymentNotFound"}),
    ),
    ErrorRule(
        ProviderError,
        "Azure OpenAI refused the training file: {msg}",
        "run `tuneport validate DATA --provider azure` and fix what it reports",
        status=frozenset({400}),
        codes=frozenset({"jsonlValidationFailed", "invalid_file", "invalidPayload"}),
        contains=("training file", "training_file"),
    ),
    ErrorRule(
        ProviderError,
        "Azure OpenAI filtered the content: {msg}",
        "rephrase the message (Azure's content filter refused it)",
        status=frozenset({400}),
        codes=frozenset({"content_filter", "contentFilter"}),
    ),
    ErrorRule(
        NotFoundError,
        "Azure OpenAI: not found: {msg}",
        "check the id (see `tuneport jobs list`) and AZURE_OPENAI_ENDPOINT",
        status=frozenset({404}),
    ),
    ErrorRule(
        ProviderError,
        "Azure OpenAI server error {status} (still failing after retries): {msg}",
        "retry later; see https://azure.status.microsoft",
        status=frozenset(range(500, 600)),
    ),
    ErrorRule(
        ProviderError,
        "Azure OpenAI refused the request ({status}): {msg}",
        "check the flags and the job file",
    ),
)

API = ApiService(
    title="Azure OpenAI",
    module="openai",
    key_env="AZURE_OPENAI_API_KEY",
    url_env="AZURE_OPENAI_BASE_URL",
    default_url="",  # from the endpoint (azure_base_url)
    key_url="the Azure portal (resource > Keys and Endpoint)",
    rules=ERROR_RULES,
    url_hint="(https://RESOURCE.openai.azure.com/openai/v1)",
    status_url="https://azure.status.microsoft",
)


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


def _identity() -> Any:
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


def _uses_entra(options: AzureOptions) -> bool:
    if options.auth is not None:
        return options.auth == "entra"
    return not API.api_key(options.api_key)


def build_client(options: AzureOptions) -> OpenAI:
    """The plain OpenAI client on the v1 data plane: the key as ``api-key`` (and bearer), or an
    Entra ID token provider; ``max_retries=0`` (tuneport's retries and create-once own it)."""
    from openai import OpenAI

    base_url = azure_base_url(options)
    if _uses_entra(options):
        identity = _identity()
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
    if _uses_entra(options):
        try:
            _identity()
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


def deployment_name(model: str) -> str:
    """The deployment tuneport creates for ``model`` (found again by chat and cleanup)."""
    return "tp-" + hashlib.sha256(model.encode()).hexdigest()[:16]


class AzureProvider(OpenAIProtocol):
    """Fine-tune (SFT, DPO) on Azure OpenAI; chat through a deployment of the tuned model."""

    service = SERVICE
    name = NAME
    options: AzureOptions

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        if self.options.management_token is not None:
            register_secret(self.options.management_token.get_secret_value())
        self._clock = clock
        self._hourly_consent = False

    @property
    def base_url(self) -> str:
        return azure_base_url(self.options)

    def preflight(self, cfg: JobConfig) -> None:
        self._tiered(cfg)
        super().preflight(cfg)

    def _tiered(self, cfg: JobConfig) -> JobConfig:
        """``cfg`` for the dated base model (``gpt-4.1-mini`` → ``gpt-4.1-mini-2025-04-14``);
        a tier named in the model (``gpt-4.1@Developer``, as ``plan`` lists it) becomes the
        training tier."""
        base, _, tier = cfg.model.partition("@")
        if tier:
            try:
                self.options.training_type = AzureOptions.model_validate(
                    {"training_type": tier}
                ).training_type
            except ValueError:
                raise ConfigError(
                    f"model {cfg.model!r} names the training tier {tier!r}",
                    hint=f"use one of {', '.join(TIERS)} after '@', or --set training_type=...",
                ) from None
        return cfg.model_copy(update={"model": MODELS.get(base, base)})

    def launch(self, uploaded: Any, cfg: JobConfig, run_id: str) -> JobRef:
        return super().launch(uploaded, self._tiered(cfg), run_id)

    # --- pause / resume (D2) ----------------------------------------------------------------

    def pause(self, job: JobRef) -> None:
        self._call(lambda: self.client.fine_tuning.jobs.pause(job.remote_id))

    def resume(self, job: JobRef) -> JobRef:
        self._call(lambda: self.client.fine_tuning.jobs.resume(job.remote_id))
        return job

    # --- chat through a deployment ----------------------------------------------------------

    def hourly_resources(self, model: str) -> list[HourlyResource]:
        """The deployment chatting with ``model`` would create, billed by the hour (none for a
        base model, an existing deployment, or when deploy was not asked)."""
        if not self._needs_deployment(model) or not self.options.deploy:
            return []
        name = deployment_name(model)
        if self._arm().get(name) is not None:
            return []
        tier = self.options.training_type
        if tier == "Developer":
            what = (
                f"the Azure deployment {name} ({DEPLOYMENT_SKUS[tier]}) serving {model}: no "
                f"hosting fee, tokens at Global rates, deleted by Azure after {DEVELOPER_HOURS} "
                "hours"
            )
            rate = 0.0
        else:
            what = (
                f"the Azure deployment {name} ({DEPLOYMENT_SKUS[tier]}) serving {model}, plus "
                f"tokens at the base model's rates; Azure deletes it after {IDLE_DAYS} days "
                "without use"
            )
            rate = HOURLY_USD
        return [
            HourlyResource(
                what=what,
                per_hour_usd=rate,
                price_source="Azure OpenAI cost management docs (D6), unverified",
                delete="`tuneport jobs cleanup JOB_ID`",
            )
        ]

    def consent_hourly(self) -> None:
        """The user agreed to what :meth:`hourly_resources` listed (``--yes`` or y/N)."""
        self._hourly_consent = True

    def _needs_deployment(self, model: str) -> bool:
        return self.options.deployment is None and bool(TUNED.search(model))

    def _target(self, model: str) -> str:
        """The deployment name to send as ``model``."""
        if self.options.deployment is not None:
            return self.options.deployment
        if not TUNED.search(model):
            return model  # a base-model deployment's name
        name = deployment_name(model)
        arm = self._arm_or_none()
        if arm is None:
            raise ConfigError(
                f"{model} answers chat only from a deployment, and tuneport cannot look for one "
                "without the management settings",
                hint="name an existing deployment with --set deployment=NAME, or set "
                "AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and AZURE_MANAGEMENT_TOKEN and "
                "chat with --set deploy=true",
            )
        found = arm.get(name)
        if found is not None and found.get("provisioningState") == "Succeeded":
            return name
        if found is None:
            if not self.options.deploy:
                raise ConfigError(
                    f"{model} has no deployment yet (Azure serves tuned models only from one)",
                    hint="chat again with --set deploy=true (it shows the hourly price and asks)",
                )
            if not self._hourly_consent:
                raise ConfigError(
                    f"refusing to create the deployment {name} (billed by the hour) without "
                    "consent",
                    hint="chat again and answer y, or pass --yes",
                )
            arm.put(
                name,
                model,
                DEPLOYMENT_SKUS[self.options.training_type],
                self.options.deploy_capacity,
            )
        self._wait_deployed(arm, name, model)
        return name

    def _wait_deployed(self, arm: Arm, name: str, model: str) -> None:
        deadline = self._clock() + self.options.deploy_timeout
        while True:
            state = (arm.get(name) or {}).get("provisioningState", "missing")
            if state == "Succeeded":
                return
            if state in ("Failed", "Canceled", "Disabled", "missing", "Deleting"):
                raise ProviderError(
                    f"the Azure deployment {name} of {model} is {state}",
                    hint="see the deployment in the Azure portal, then `tuneport jobs cleanup "
                    "JOB_ID` and chat again",
                )
            if self._clock() >= deadline:
                raise ProviderError(
                    f"the Azure deployment {name} is still {state} after "
                    f"{self.options.deploy_timeout:g} s",
                    hint="chat again later: the deployment is reused, not created twice",
                )
            self._sleep(min(5.0, default_interval()))

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        return super().chat(self._target(model), messages, options)

    def chat_stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> Iterator[str]:
        return super().chat_stream(self._target(model), messages, options)

    def cleanup(self, job: JobRef) -> list[str]:
        """Delete the tuned model's deployment (billed by the hour) and the uploaded files."""
        remote = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job.remote_id))
        removed: list[str] = []
        tuned = remote.fine_tuned_model
        arm = self._arm_or_none()
        if tuned and arm is not None:
            name = deployment_name(tuned)
            if arm.delete(name):
                removed.append(f"deployment {name} of {tuned} (billed by the hour)")
        return removed + self._delete_uploads(remote.training_file, remote.validation_file)

    # --- the management plane ---------------------------------------------------------------

    def _arm_or_none(self) -> Arm | None:
        try:
            return self._arm()
        except ConfigError:
            return None

    def _arm(self) -> Arm:
        o = self.options
        sub = o.subscription or os.environ.get("AZURE_SUBSCRIPTION_ID")
        group = o.resource_group or os.environ.get("AZURE_RESOURCE_GROUP")
        account = o.account or os.environ.get("AZURE_OPENAI_ACCOUNT") or _resource_of(o)
        missing = [
            n
            for n, v in (
                ("AZURE_SUBSCRIPTION_ID", sub),
                ("AZURE_RESOURCE_GROUP", group),
                ("AZURE_OPENAI_ACCOUNT", account),
            )
            if not v
        ]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set (needed to manage deployments)",
                hint="export them, or --set subscription=... resource_group=... account=...",
            )
        root = (o.management_url or os.environ.get("AZURE_MANAGEMENT_URL") or ARM_URL).rstrip("/")
        path = (
            f"{root}/subscriptions/{sub}/resourceGroups/{group}/providers/"
            f"Microsoft.CognitiveServices/accounts/{account}/deployments"
        )
        return Arm(path, partial(_management_token, o), self.options.timeout)

    # --- doctor ------------------------------------------------------------------------------

    def doctor(self, timeout: float) -> list[Check]:
        """Endpoint and credential set (never shown), the server accepts them, and whether
        deployments can be managed for chat."""
        if not (self.options.base_url or os.environ.get(API.url_env) or endpoint_of(self.options)):
            return [
                Check(
                    "endpoint",
                    "skip",
                    "AZURE_OPENAI_ENDPOINT is not set: the Azure OpenAI backend is not configured",
                    fix="export AZURE_OPENAI_ENDPOINT=https://RESOURCE.openai.azure.com",
                )
            ]
        try:
            url = self.base_url
        except ConfigError as exc:
            return [Check("endpoint", "fail", exc.message, fix=exc.hint)]
        checks = [Check("endpoint", "ok", f"{url}")]
        if _uses_entra(self.options):
            try:
                _identity()
                checks.append(Check("credential", "ok", "Entra ID through azure-identity"))
            except ConfigError as exc:
                return [*checks, Check("credential", "fail", exc.message, fix=exc.hint)]
        else:
            checks.append(self.api.key_check(self.options.api_key))
            key = str(self.api.api_key(self.options.api_key))
            checks.append(self.api.probe(f"{url}/models", key, timeout))
        try:
            self._arm()
            checks.append(Check("deployments", "ok", "management settings set (chat can deploy)"))
        except ConfigError as exc:
            checks.append(
                Check(
                    "deployments",
                    "warn",
                    f"{exc.message}: chat needs --set deployment=NAME",
                    fix=exc.hint,
                )
            )
        return checks


def _resource_of(options: AzureOptions) -> str | None:
    """``RES`` of ``https://RES.openai.azure.com`` (the account name, when it is that host)."""
    endpoint = endpoint_of(options) or ""
    found = re.match(
        r"^https://([^./]+)\.(openai|services\.ai|cognitiveservices)\.azure\.com$", endpoint
    )
    return found.group(1) if found else None


def _management_token(options: AzureOptions) -> str:
    """The ARM bearer token: the setting, $AZURE_MANAGEMENT_TOKEN, else Entra ID."""
    if options.management_token is not None:
        return options.management_token.get_secret_value()
    token = os.environ.get("AZURE_MANAGEMENT_TOKEN")
    if token:
        register_secret(token)
        return token
    try:
        identity = _identity()
    except ConfigError:
        raise ConfigError(
            "AZURE_MANAGEMENT_TOKEN is not set and azure-identity is not installed",
            hint="export AZURE_MANAGEMENT_TOKEN=... (the accessToken of `az account "
            "get-access-token`), or pip install azure-identity",
        ) from None
    value = str(identity.DefaultAzureCredential().get_token(ARM_SCOPE).token)
    register_secret(value)
    return value


class Arm:
    """Deployments of one Azure OpenAI account through the ARM REST API (S3): PUT creates
    (idempotent by name), GET reads, DELETE removes."""

    def __init__(self, url: str, token: Callable[[], str], timeout: float) -> None:
        self.url = url
        self._token = token
        self._timeout = timeout

    def _request(self, method: str, name: str, body: Mapping[str, Any] | None = None) -> Any:
        import httpx

        from tuneport.retry import RetryPolicy, call_with_retry

        def send() -> httpx.Response:
            answer = httpx.request(
                method,
                f"{self.url}/{name}",
                params={"api-version": ARM_API_VERSION},
                headers={"Authorization": f"Bearer {self._token()}"},
                json=body,
                timeout=self._timeout,
            )
            if answer.status_code >= 500 or answer.status_code == 429:
                answer.raise_for_status()  # retried (PUT and DELETE are idempotent by name)
            return answer

        try:
            return call_with_retry(send, policy=RetryPolicy(attempts=4))
        except httpx.HTTPStatusError as exc:
            raise ProviderError(
                f"Azure management answered {exc.response.status_code} to {method} deployment "
                f"{name}: {redact(exc.response.text[:200])}",
                hint="retry later; see https://azure.status.microsoft",
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"cannot reach Azure management at {self.url.split('/subscriptions')[0]} "
                f"({type(exc).__name__})",
                hint="check the network, or AZURE_MANAGEMENT_URL if you set it",
            ) from None

    def _refused(self, answer: Any, what: str) -> None:
        if answer.status_code in (401, 403):
            raise AuthError(
                f"Azure management refused to {what} ({answer.status_code}): "
                f"{redact(_arm_message(answer))}",
                hint="refresh AZURE_MANAGEMENT_TOKEN (az account get-access-token); deploying "
                "needs the Azure AI Owner or Cognitive Services Contributor role",
            )
        if answer.status_code >= 400:
            raise ProviderError(
                f"Azure management refused to {what} ({answer.status_code}): "
                f"{redact(_arm_message(answer))}",
                hint="check AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and AZURE_OPENAI_ACCOUNT",
            )

    def get(self, name: str) -> dict[str, Any] | None:
        """The deployment's properties, ``None`` when there is none."""
        answer = self._request("GET", name)
        if answer.status_code == 404:
            return None
        self._refused(answer, f"read deployment {name}")
        props = answer.json().get("properties")
        return props if isinstance(props, dict) else {}

    def put(self, name: str, model: str, sku: str, capacity: int) -> None:
        body = {
            "sku": {"name": sku, "capacity": capacity},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}},
        }
        self._refused(self._request("PUT", name, body), f"create deployment {name}")

    def delete(self, name: str) -> bool:
        """``True`` when a deployment was deleted, ``False`` when there was none."""
        answer = self._request("DELETE", name)
        if answer.status_code == 404:
            return False
        self._refused(answer, f"delete deployment {name}")
        return True  # 200, 202 (deleting) or 204 (S3)


def _arm_message(answer: Any) -> str:
    try:
        error = answer.json().get("error", {})
        return str(error.get("message") or error.get("code") or answer.text[:200])
    except ValueError:
        return str(answer.text[:200])


# --- the descriptor --------------------------------------------------------------------------


def price_model(model: str, settings: Mapping[str, Any]) -> str:
    """The price-table name of ``model`` at the training tier in ``settings`` (``model`` for
    the default Global tier, ``model@Standard`` / ``model@Developer`` otherwise)."""
    if "@" in model:
        return model
    try:
        tier = AzureOptions.model_validate(
            {"training_type": settings.get("training_type", DEFAULT_TIER)}
        ).training_type
    except ValueError:
        return model
    return model if tier == DEFAULT_TIER else f"{model}@{tier}"


# Azure takes the OpenAI chat/DPO formats and at least 10 examples (D2, D3); its per-example
# token limits are not published apart from OpenAI's: assumed equal (unverified)
RULES = dataclasses.replace(
    OPENAI_RULES,
    provider=NAME,
    token_limit_note="Azure OpenAI truncates them to the limit (assumed as OpenAI)",
    source="learn.microsoft.com Azure OpenAI fine-tuning (D2, D3, read 2026-12-06); "
    "per-example limits assumed as OpenAI's (unverified)",
)

BACKEND = Backend(
    name=NAME,
    title="Azure OpenAI",
    implementation="tuneport.providers.azure:AzureProvider",
    target="openai",
    rules=RULES,
    counter=openai_counter,
    env=(
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_BASE_URL",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_OPENAI_ACCOUNT",
        "AZURE_MANAGEMENT_TOKEN",
        "AZURE_MANAGEMENT_URL",
    ),
    secret_env=("AZURE_OPENAI_API_KEY", "AZURE_MANAGEMENT_TOKEN"),
    default_model="gpt-4.1-mini",
    options=tuple(AzureOptions.model_fields),
    cleanup_deletes_uploads=True,
    price_model=price_model,
)
