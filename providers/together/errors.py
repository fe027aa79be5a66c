"""Together's API errors as one-line tuneport errors (its own rules, then the generic
ones) and the :class:`~tuneport.providers.sdk.Service` that maps them."""

from __future__ import annotations

from typing import Any

from tuneport.errors import ProviderError, QuotaError
from tuneport.providers.errormap import (
    ErrorRule,
    not_serving,
    refused_file,
    rule,
    untunable_model,
)
from tuneport.providers.sdk import Service, import_sdk
from tuneport.providers.together.options import DEFAULT_BASE_URL, INSTALL_HINT, KEY_URL

# docs.together.ai/docs/fine-tuning/quickstart (2026): tuned models are served from dedicated
# endpoints ("Unable to access non-serverless model", 400 model_not_available); an endpoint that
# exists but is stopped answers 400 dedicated_endpoint_not_running.
ENDPOINT_HINT = (
    "start a dedicated endpoint for it at https://api.together.ai/models/{model} (or `tg beta "
    "endpoints deploy` with the job's model object id), chat again, and stop the endpoint when "
    "done: it bills per minute"
)
API = Service.of(
    "Together",
    "TOGETHER",
    default_url=DEFAULT_BASE_URL,
    key_url=KEY_URL,
    url_hint="(the bare host, no /v1)",
    status_url="https://status.together.ai",
).with_rules(
    ErrorRule(
        ProviderError,
        "the dedicated endpoint serving {model} is stopped",
        "start it again at https://api.together.ai/models/{model}, chat again, and stop it when "
        "done: it bills per minute while it runs",
        status=frozenset({400, 403, 404}),
        codes=frozenset({"dedicated_endpoint_not_running"}),
        contains=("deployments are stopped", "endpoint is not running"),
    ),
    not_serving(
        "Together",
        "a dedicated endpoint",
        ENDPOINT_HINT,
        codes=["model_not_available"],
        contains=["non-serverless", "dedicated endpoint"],
    ),
    rule(
        QuotaError,
        "Together credit limit reached: {msg}",
        "add credits at https://api.together.ai/settings/billing",
        status=[402],
    ),
    untunable_model(
        "pick a model from https://docs.together.ai/docs/fine-tuning-models",
        where=" on Together",
        codes=["model_not_found", "invalid_model"],
        contains=["not available for fine-tuning", "not supported for fine-tuning"],
    ),
    refused_file(
        "Together", "together", status=[400, 422], codes=["invalid_file", "invalid_file_format"]
    ),
    key_message="Together rejected the API key (or the account has no credit left): {msg}",
    key_fix=f"set TOGETHER_API_KEY to a valid key ({KEY_URL}) and check the account's billing",
    denied_fix="check that the key's project may fine-tune (TOGETHER_PROJECT_ID)",
    refused_fix="check the flags, the --set options and the job file",
)
ERROR_RULES = API.rules


def sdk() -> Any:
    """The ``together`` module, or a one-line ConfigError naming the extra to install."""
    return import_sdk("together", "Together", "together", INSTALL_HINT)
