"""Chat with a tuned Azure model through a deployment (D3, D4): found again by its name, created
only when asked and agreed to (billed by the hour), waited on until it serves, deleted by
cleanup with the uploaded files."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

from tuneport.errors import ConfigError, ProviderError
from tuneport.providers.azure.arm import Arm, arm_of
from tuneport.providers.azure.service import AzureOptions
from tuneport.providers.base import ChatOptions, HourlyResource
from tuneport.providers.openai_api import OpenAIProtocol
from tuneport.retry import default_interval
from tuneport.schemas import JobRef, Message

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
TUNED = re.compile(r"\.ft-[0-9a-f]+$|^ftchkpt-")  # `<base>.ft-<hex>` (S1), checkpoints (D2)


def deployment_name(model: str) -> str:
    """The deployment tuneport creates for ``model`` (found again by chat and cleanup)."""
    return "tp-" + hashlib.sha256(model.encode()).hexdigest()[:16]


class Deployments(OpenAIProtocol):
    """Chat routed to a deployment of the tuned model; cleanup deletes it."""

    options: AzureOptions
    _hourly_consent: bool = False

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

    def _arm_or_none(self) -> Arm | None:
        try:
            return self._arm()
        except ConfigError:
            return None

    def _arm(self) -> Arm:
        return arm_of(self.options)
