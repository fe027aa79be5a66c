"""The Fireworks backend's implementation: :class:`FireworksProvider`, its parts put together
(datasets, jobs, deployments, port), chat through the OpenAI-compatible chat, ``doctor``,
``preflight`` and online counting."""

from __future__ import annotations

from typing import Any

from tuneport.errors import ConfigError
from tuneport.providers.base import Check
from tuneport.providers.chat import CompatChat
from tuneport.providers.fireworks import TOKENIZERS
from tuneport.providers.fireworks.datasets import Datasets
from tuneport.providers.fireworks.deployments import Deployments
from tuneport.providers.fireworks.errors import ACCOUNT_FIX, sdk
from tuneport.providers.fireworks.ids import short
from tuneport.providers.fireworks.port import Port
from tuneport.schemas import JobConfig
from tuneport.tokens.counter import TokenCounter
from tuneport.tokens.hf import hub_counter


class FireworksProvider(Datasets, Deployments, Port, CompatChat):
    """Fine-tune, deploy and chat through the Fireworks AI API."""

    def online_counter(self, model: str) -> TokenCounter:
        """Exact counts with the base model's own tokenizer and chat template, fetched from the
        Hugging Face Hub (tokenizer files only) when not on this machine: what Fireworks bills
        with. The Fireworks id is mapped to its Hugging Face repo (:data:`TOKENIZERS`)."""
        known = TOKENIZERS.get(short(model), "")
        if not known and model.count("/") != 1:
            raise ConfigError(
                f"tuneport does not know the Hugging Face repo of Fireworks model {model}",
                hint="pass the base model's Hugging Face id as --model (e.g. "
                "meta-llama/Llama-3.1-8B-Instruct) to count online, or drop --online",
            )
        counted: TokenCounter = hub_counter([model, known], what=f"Fireworks model {model}")
        return counted

    def doctor(self, timeout: float) -> list[Check]:
        """Key set (never shown), SDK installed, account id set, one page of datasets (server
        reachable, key accepted for the account), and a warning for every deployment tuneport
        made that still bills (they cost per GPU-second until deleted)."""
        key_check = self.api.key_check(self.options.api_key)
        if key_check.status == "skip":
            return [key_check]
        checks = [key_check]
        try:
            version = getattr(sdk(), "__version__", "?")  # a module: no typed attribute
        except ConfigError as exc:
            return [*checks, Check("SDK", "fail", exc.message, exc.hint)]
        checks.append(Check("SDK", "ok", f"fireworks-ai {version}"))
        if not self.account:
            missing = "FIREWORKS_ACCOUNT_ID is not set"
            return [*checks, Check("account", "fail", missing, ACCOUNT_FIX)]
        checks.append(Check("account", "ok", self.account))
        server = self.api.probe(
            f"{self.base_url}/v1/accounts/{self.account}/datasets",
            str(self._api_key()),
            timeout,
            params={"pageSize": 1},
            what=f"key accepted for account {self.account}",
        )
        checks.append(server)
        if server.status == "ok":
            checks.append(self._billing_deployments(timeout))
        return checks

    def preflight(self, cfg: JobConfig) -> None:
        """Key and account present, settings valid, all reported at once (no network)."""
        problems = self.settings_problems()
        opts = self.options
        if not cfg.model.startswith("accounts/"):
            problems.append(
                (
                    f"model {cfg.model!r} is not a Fireworks model name",
                    "use the full name, e.g. accounts/fireworks/models/llama-v3p1-8b-instruct",
                )
            )
        if cfg.method == "dpo":
            for key in ("early_stop", "eval_auto_carveout"):
                if getattr(opts, key) is not None:
                    problems.append((f"{key} applies to --method sft only", f"drop {key}"))
            if cfg.validation is not None:
                problems.append(
                    (
                        "Fireworks DPO jobs take no validation file",
                        "drop --validation (or use --method sft)",
                    )
                )
        elif opts.dpo_beta is not None:
            problems.append(("dpo_beta applies to --method dpo only", "drop dpo_beta"))
        if problems:
            raise ConfigError(
                "; ".join(p for p, _ in problems), hint="; ".join(f for _, f in problems)
            )

    def _chat_target(self, model: str) -> str:
        """A tuned model needs a deployment: with ``--set deploy=true`` tuneport creates one
        (and waits until it is READY) and the chat names it (``model#deployment``); else the
        model as it is (an error then says how to deploy it)."""
        if self._deploys(model):
            return f"{model}#{self.ensure_deployment(model)}"
        return model

    def _completion(self, body: bytes) -> Any:
        """A whole reply read by the Fireworks SDK's own type (its ``object`` and
        ``finish_reason`` are looser than OpenAI's)."""
        from fireworks.types.chat import CompletionCreateResponse

        return CompletionCreateResponse.model_validate_json(body)
