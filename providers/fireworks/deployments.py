"""Deployments: a tuned LoRA answers chat only from one. ``--set deploy=true`` creates one
(billed per GPU-second) once the user agreed to what it costs; ``cleanup`` deletes every
deployment serving the tuned model, unloads it where it was loaded, then the job's datasets."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from tuneport.errors import ConfigError, NotFoundError, ProviderError, redact
from tuneport.progress import NullProgress, Progress
from tuneport.providers.base import Check, HourlyResource
from tuneport.providers.fireworks import NAME
from tuneport.providers.fireworks.errors import sdk
from tuneport.providers.fireworks.ids import deployment_id, short
from tuneport.providers.fireworks.jobs import Jobs, job_config, sft_job
from tuneport.schemas import JobRef

if TYPE_CHECKING:
    from fireworks.types import Deployment


class Deployments(Jobs):
    """What bills by the hour: deployments for chat, and their cleanup."""

    _hourly_consent = False  # set by consent_hourly(): chat/eval asked the user

    def _deploys(self, model: str) -> bool:
        """Whether chatting with ``model`` goes through a deployment tuneport creates."""
        tuned = model.startswith("accounts/") and not model.startswith("accounts/fireworks/")
        return self.options.deploy and tuned and "#" not in model

    def hourly_resources(self, model: str) -> list[HourlyResource]:
        """The deployment ``chat --set deploy=true`` would create for ``model`` (none when it
        exists already or deploy is off): billed per GPU-second while it runs."""
        if not self._deploys(model):
            return []
        dep_id = deployment_id(model)
        if self._get_or_none(lambda: self.client.deployments.get(dep_id)) is not None:
            return []
        from tuneport.pricing.table import load_prices

        price = load_prices().unlisted(NAME, model, "sft")  # the provider's defaults
        return [
            HourlyResource(
                what=f"a Fireworks on-demand deployment {dep_id} serving {model}",
                per_hour_usd=price.deployment_per_hour,
                price_source=price.deployment_source or price.source,
                delete=f"`tuneport jobs cleanup JOB_ID` (or `firectl delete deployment {dep_id}`)",
            )
        ]

    def consent_hourly(self) -> None:
        """The user agreed to what :meth:`hourly_resources` listed (``chat``/``eval`` ask)."""
        self._hourly_consent = True

    def ensure_deployment(self, model: str) -> str:
        """The name of a READY deployment serving ``model`` (created by tuneport if needed)."""
        dep_id = deployment_id(model)
        deployments = self.client.deployments
        found = self._get_or_none(lambda: deployments.get(dep_id))
        if found is None:
            if not self._hourly_consent:
                raise ConfigError(
                    f"refusing to create the deployment {dep_id} (billed by the hour) without "
                    "consent",
                    hint="chat again and answer y, or pass --yes",
                )

            def create() -> Deployment:
                try:
                    return deployments.create(
                        base_model=model,
                        deployment_id=dep_id,
                        display_name=f"tuneport {short(model)}"[:60],
                    )
                except sdk().ConflictError:
                    return deployments.get(dep_id)

            self._call(create)

        def ready(dep: Deployment) -> bool:
            if dep.state in ("FAILED", "DELETING", "DELETED"):
                why = (dep.status.message if dep.status else None) or dep.state
                raise ProviderError(
                    f"the Fireworks deployment of {model} is {dep.state}: {redact(str(why))}",
                    hint="run `tuneport jobs cleanup JOB_ID` and try again",
                )
            return dep.state == "READY"

        def too_long(dep: Deployment) -> ProviderError:
            return ProviderError(
                f"the Fireworks deployment {dep.name} is still {dep.state} after "
                f"{self.options.deploy_timeout:g} s (it keeps billing while it starts)",
                hint="chat again later, or `tuneport jobs cleanup JOB_ID` to delete it",
            )

        dep = self._poll(
            lambda: deployments.get(dep_id),
            ready,
            timeout=self.options.deploy_timeout,
            too_long=too_long,
            first=5.0,
            most=30.0,
        )
        return str(dep.name)

    def cleanup(self, job: JobRef, progress: Progress | None = None) -> list[str]:
        """Delete what keeps costing money: every deployment serving the tuned model (and its
        loaded LoRA addons); then the job's datasets, and with ``--set delete_job=true`` the
        job itself. The tuned model is kept. One line per thing deleted."""
        shown = (progress or NullProgress()).note
        removed: list[str] = []

        def note(what: str, done: str) -> None:
            removed.append(what)
            shown(done)

        try:
            remote = self._get_job(job.remote_id)
        except NotFoundError:  # deleted by an earlier cleanup (delete_job) or outside tuneport
            shown(f"job {job.remote_id} no longer exists at Fireworks: nothing to delete")
            return removed
        status = self._status(remote)
        if not status.state.terminal:
            raise ConfigError(
                f"job {job.remote_id} is still {status.raw_state}: its datasets are in use",
                hint="cancel it first (`tuneport jobs cancel ID`) or wait until it ends",
            )
        output = job_config(remote).output_model
        if output:
            model = self._full_model(output)
            for dep in self._call(lambda: list(self.client.deployments.list())):
                if dep.base_model == model and dep.name:
                    with contextlib.suppress(NotFoundError):
                        self._delete_deployment(short(dep.name))
                        note(f"deployment {dep.name}", f"deleted deployment {dep.name}")
            for loaded in self._call(lambda: list(self.client.lora.list())):
                if loaded.model == model and loaded.name:
                    with contextlib.suppress(NotFoundError):
                        self._unload(short(loaded.name))
                        on = loaded.deployment or "?"
                        note(f"LoRA addon {model} on {on}", f"unloaded {model} from {on}")
        sft = sft_job(remote)
        datasets = [remote.dataset, sft.evaluation_dataset if sft else None]
        for name in [d for d in datasets if d]:
            with contextlib.suppress(NotFoundError):
                self._delete_dataset(short(str(name)))
                note(f"dataset {name}", f"deleted dataset {name}")
        if self.options.delete_job:
            collection, ident = self._parse(job.remote_id)
            with contextlib.suppress(NotFoundError):
                self._call(lambda: self._jobs(collection).delete(ident))
                note(
                    f"job {job.remote_id} (the tuned model is kept)",
                    f"deleted job {job.remote_id} (the tuned model is kept)",
                )
        return removed

    def _delete_deployment(self, dep_id: str) -> None:
        self._call(lambda: self.client.deployments.delete(dep_id))

    def _unload(self, deployed_id: str) -> None:
        self._call(lambda: self.client.lora.unload(deployed_id))

    def _delete_dataset(self, ds_id: str) -> None:
        self._call(lambda: self.client.datasets.delete(ds_id))

    def _billing_deployments(self, timeout: float) -> Check:
        """``warn`` for each deployment tuneport created (``tp-`` ids) that is not deleted."""
        try:
            client = self.client.with_options(timeout=timeout)
            live = [
                str(d.name)
                for d in client.deployments.list()
                if short(str(d.name)).startswith("tp-")
                and d.state not in ("DELETING", "DELETED", "FAILED")
            ]
        except Exception as exc:
            if not self.api.owns(exc):
                raise
            error = self.api.map_error(exc, base_url=self.base_url, model="", account=self.account)
            return Check("deployments", "warn", f"cannot list deployments: {error.message}")
        if not live:
            return Check("deployments", "ok", "no tuneport deployment is running")
        return Check(
            "deployments",
            "warn",
            f"{len(live)} tuneport deployment(s) still billing per GPU-second: {', '.join(live)}",
            fix="`tuneport jobs cleanup JOB_ID` (or `firectl delete deployment ID`) when done",
        )
