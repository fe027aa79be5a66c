"""Together's API errors as one-line tuneport errors (its own rules, then the generic
ones) and the :class:`~tuneport.providers.sdk.Service` that maps them."""

from __future__ import annotations

from typing import Any

from tuneport.errors import NotFoundError, ProviderError, QuotaError
from tuneport.providers.errormap import ErrorRule, generic_rules
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
ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        ProviderError,
        "the dedicated endpoint serving {model} is stopped",
        "start it again at https://api.together.ai/models/{model}, chat again, and stop it when "
        "done: it bills per minute while it runs",
        status=frozenset({400, 403, 404}),
        codes=frozenset({"dedicated_endpoint_not_running"}),
        contains=("deployments are stopped", "endpoint is not running"),
    ),
    ErrorRule(
        ProviderError,
        "Together serves {model} only from a dedicated endpoint, and none is running",
        ENDPOINT_HINT,
        status=frozenset({400, 403, 404}),
        codes=frozenset({"model_not_available"}),
        contains=("non-serverless", "dedicated endpoint"),
    ),
    ErrorRule(
        QuotaError,
        "Together credit limit reached: {msg}",
        "add credits at https://api.together.ai/settings/billing",
        status=frozenset({402}),
    ),
    ErrorRule(
        NotFoundError,
        "model {model} cannot be fine-tuned on Together: {msg}",
        "pick a model from https://docs.together.ai/docs/fine-tuning-models",
        status=frozenset({400, 404}),
        codes=frozenset({"model_not_found", "invalid_model"}),
        contains=("not available for fine-tuning", "not supported for fine-tuning"),
    ),
    ErrorRule(
        ProviderError,
        "Together refused the training file: {msg}",
        "run `tuneport validate DATA --provider together` and fix what it reports",
        status=frozenset({400, 422}),
        codes=frozenset({"invalid_file", "invalid_file_format"}),
    ),
    *generic_rules(
        "Together",
        status_url="https://status.together.ai",
        key_message="Together rejected the API key (or the account has no credit left): {msg}",
        key_fix=f"set TOGETHER_API_KEY to a valid key ({KEY_URL}) and check the account's billing",
        denied_fix="check that the key's project may fine-tune (TOGETHER_PROJECT_ID)",
        refused_fix="check the flags, the --set options and the job file",
    ),
)


API = Service(
    title="Together",
    module="together",
    key_env="TOGETHER_API_KEY",
    url_env="TOGETHER_BASE_URL",
    default_url=DEFAULT_BASE_URL,
    key_url=KEY_URL,
    rules=ERROR_RULES,
    url_hint="(the bare host, no /v1)",
    status_url="https://status.together.ai",
)


def sdk() -> Any:
    """The ``together`` module, or a one-line ConfigError naming the extra to install."""
    return import_sdk("together", "Together", "together", INSTALL_HINT)
