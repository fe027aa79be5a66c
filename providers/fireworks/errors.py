"""The Fireworks service (key and URL variables, hosts) and its error rules: its own deployment,
LoRA, billing and request rules first, then the rules every hosted API shares."""

from __future__ import annotations

from typing import Any

from tuneport.errors import ProviderError, QuotaError, TuneportError
from tuneport.providers.errormap import not_serving, rule, validate_fix
from tuneport.providers.sdk import Service, import_sdk

INSTALL_HINT = "pip install 'tuneport[fireworks]'"
DEFAULT_BASE_URL = "https://api.fireworks.ai"
KEY_URL = "https://app.fireworks.ai/settings/users/api-keys"
ACCOUNT_FIX = (
    "export FIREWORKS_ACCOUNT_ID=<your account id> (shown by `firectl whoami`) "
    "or --set account_id=..."
)
DEPLOY_HINT = (
    "deploy it: `tuneport chat JOB_ID --set deploy=true` creates an on-demand deployment "
    "(billed per GPU-second until `tuneport jobs cleanup JOB_ID`), or `firectl create "
    "deployment {model}`"
)
# docs.fireworks.ai/guides/inference-error-codes: 404 "the model is not deployed"; 412 also
# "when attempting to invoke a LoRA model that failed to load" (and for a suspended account).
API = Service.of(
    "Fireworks",
    "FIREWORKS",
    default_url=DEFAULT_BASE_URL,
    key_url=KEY_URL,
    status_url="https://status.fireworks.ai",
).with_rules(
    rule(
        ProviderError,
        "Fireworks could not load the LoRA {model} on its deployment: {msg}",
        "check that the deployment's base model is the LoRA's base model, then `tuneport jobs "
        "cleanup JOB_ID` and chat again with --set deploy=true",
        status=[412],
        contains=["lora", "failed to load", "adapter"],
    ),
    rule(
        QuotaError,
        "Fireworks refused: the account is suspended or out of credit: {msg}",
        "check billing at https://app.fireworks.ai/account/billing",
        status=[402, 412],
        contains=["suspended", "credit", "billing", "payment"],
    ),
    not_serving(
        "Fireworks",
        "a deployment",
        DEPLOY_HINT,
        status=[400, 404],
        contains=["not deployed", "not found, inaccessible"],
    ),
    rule(
        ProviderError,
        "Fireworks refused the request: {msg}",
        validate_fix("fireworks", then="check the --set options"),
        status=[400, 409, 412, 422],
    ),
    denied_message="Fireworks denied access to account {account}: {msg}",
    denied_fix="check FIREWORKS_ACCOUNT_ID and that the key belongs to that account",
    rate_message="Fireworks quota or rate limit still hit after retries: {msg}",
    rate_fix="wait and run the command again, or raise your quota at https://app.fireworks.ai",
    not_found_fix="check the model name (accounts/fireworks/models/<id>) and the job id "
    "(`tuneport jobs list`)",
    refused_fix="check the flags, the --set options and the job file",
)
ERROR_RULES = API.rules


def map_error(
    exc: BaseException, *, model: str = "", account: str = "", base_url: str = ""
) -> TuneportError:
    """One-line tuneport error for an SDK error (never leaking the API key)."""
    return API.map_error(
        exc, base_url=base_url, model=model or "MODEL", account=account or "ACCOUNT"
    )


def sdk() -> Any:
    """The ``fireworks`` module, or a one-line ConfigError naming the extra to install."""
    return import_sdk("fireworks", "Fireworks", "fireworks-ai", INSTALL_HINT)
