"""Azure OpenAI (Microsoft Foundry) fine-tuning: a service over the OpenAI protocol.

The descriptor; the service (settings, error rules, client) is :mod:`.service`, the backend
:mod:`.provider`, chat through deployments :mod:`.deployments` over the management plane
:mod:`.arm`. Facts and sources: ../shared/PROVIDERS.md, "Azure OpenAI".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tuneport.providers.azure.service import DEFAULT_TIER, NAME, AzureOptions
from tuneport.providers.base import Backend
from tuneport.providers.openai import PROTOCOL as OPENAI_PROTOCOL
from tuneport.providers.openai import RULES as OPENAI_RULES


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
    implementation="tuneport.providers.azure.provider:AzureProvider",
    rules=RULES,
    **OPENAI_PROTOCOL,  # target, counter, uses, default_model, cleanup: OpenAI's
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
    options=tuple(AzureOptions.model_fields),
    price_model=price_model,
)
