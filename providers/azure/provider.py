"""The Azure OpenAI backend: the OpenAI protocol for :data:`~.service.SERVICE`, the training tier
from the model or the settings, pause and resume (D2), chat through a deployment and doctor."""

from __future__ import annotations

import os
from typing import Any

from tuneport.errors import ConfigError, register_secret
from tuneport.providers.azure.deployments import Deployments
from tuneport.providers.azure.service import (
    API,
    MODELS,
    SERVICE,
    TIERS,
    AzureOptions,
    azure_base_url,
    azure_identity,
    endpoint_of,
    uses_entra,
)
from tuneport.providers.base import Check
from tuneport.schemas import JobConfig, JobRef, JobStatus


class AzureProvider(Deployments):
    """Fine-tune (SFT, DPO) on Azure OpenAI; chat through a deployment of the tuned model."""

    service = SERVICE
    options: AzureOptions

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.options.management_token is not None:
            register_secret(self.options.management_token.get_secret_value())

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

    def pause(self, job: JobRef) -> None:
        self._call(lambda: self.client.fine_tuning.jobs.pause(job.remote_id))

    def resume(self, job: JobRef) -> JobRef:
        self._call(lambda: self.client.fine_tuning.jobs.resume(job.remote_id))
        return job

    def is_paused(self, status: JobStatus) -> bool:
        """Azure's ``paused`` (not ``pausing``: that one still moves, D2)."""
        return status.raw_state == "paused"

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
        if uses_entra(self.options):
            try:
                azure_identity()
                checks.append(Check("credential", "ok", "Entra ID through azure-identity"))
            except ConfigError as exc:
                return [*checks, Check("credential", "fail", exc.message, fix=exc.hint)]
        else:
            checks += self._server_checks(timeout)
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
