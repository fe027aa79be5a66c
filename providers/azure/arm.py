"""The Azure management plane (ARM, S3): the deployments of one Azure OpenAI account, with a
management token (the setting, $AZURE_MANAGEMENT_TOKEN, else Entra ID through azure-identity)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from tuneport.errors import AuthError, ConfigError, ProviderError, redact, register_secret
from tuneport.providers.azure.service import AzureOptions, azure_identity, endpoint_of

ARM_SCOPE = "https://management.azure.com/.default"  # D4
ARM_URL = "https://management.azure.com"
ARM_API_VERSION = "2024-10-01"  # S3 stable; D3/D4 use it


def arm_of(o: AzureOptions) -> Arm:
    """The deployments of the account the settings ``o`` name; a ConfigError naming what is
    missing."""
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
    return Arm(path, partial(_management_token, o), o.timeout)


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
        identity = azure_identity()
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
