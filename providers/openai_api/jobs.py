"""Fine-tuning jobs over the OpenAI protocol: create-once (the run id travels in the job's
metadata and is looked up before any create that may repeat one), status, events, checkpoints,
cancel and the job list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from tuneport.errors import ConfigError, redact
from tuneport.providers.base import Checkpoint, UploadedData
from tuneport.providers.openai_api.backend import ProtocolBackend
from tuneport.providers.openai_api.service import (
    HYPERPARAMETERS,
    METHOD_TYPES,
    RUN_ID_KEY,
    SEARCH_JOBS,
    STEP_OF_TOTAL,
)
from tuneport.schemas import JobConfig, JobEvent, JobRef, JobStatus


class Jobs(ProtocolBackend):
    """Launch and follow jobs."""

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        self._model = cfg.model
        problems = self.bound_problems(cfg)
        if problems:  # preflight refuses these first; never send a request the service refuses
            raise ConfigError(
                "; ".join(w for w, _ in problems), hint="; ".join(f for _, f in problems)
            )
        existing = self.find_run(run_id)
        if existing is not None:
            return JobRef(provider=self.name, remote_id=existing, run_id=run_id)
        body = self.job_body(uploaded, cfg, run_id)
        extra = self.service.extra_body(self.options, cfg)

        def create() -> str:
            made = self.client.fine_tuning.jobs.create(**body, extra_body=extra or None)
            job_id = getattr(made, "id", None)
            if not isinstance(job_id, str) or not job_id:
                raise self.unreadable("the job create")
            return job_id

        # a failed attempt may have created the job: looked up, never a second paid one
        remote_id = self._create_once(create, lambda: self.find_run(run_id))
        return JobRef(provider=self.name, remote_id=remote_id, run_id=run_id)

    def job_body(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """The keyword arguments of ``fine_tuning.jobs.create`` for ``cfg`` (the service's
        extra body fields are sent beside them)."""
        kind = METHOD_TYPES[cfg.method]
        hyper: dict[str, Any] = {
            api: getattr(cfg, field)
            for field, api in HYPERPARAMETERS.items()
            if getattr(cfg, field) is not None
        }
        if cfg.method == "dpo" and self.options.beta is not None:
            hyper["beta"] = self.options.beta
        body: dict[str, Any] = {
            "model": cfg.model,
            "training_file": uploaded.training,
            "method": {"type": kind, kind: {"hyperparameters": hyper}},
            "metadata": {**self.options.metadata, RUN_ID_KEY: run_id},
        }
        if uploaded.validation is not None:
            body["validation_file"] = uploaded.validation
        if cfg.suffix is not None:
            body["suffix"] = cfg.suffix
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        return body

    def find_run(self, run_id: str) -> str | None:
        """The id of the job created for ``run_id``, if the server has one."""

        def search() -> str | None:
            page = self.client.fine_tuning.jobs.list(metadata={RUN_ID_KEY: run_id}, limit=20)
            for i, job in enumerate(page):  # auto-paginates; bounded below
                if (job.metadata or {}).get(RUN_ID_KEY) == run_id:
                    return job.id
                if i >= SEARCH_JOBS:
                    break
            return None

        return self._call(search)

    def status(self, job: JobRef) -> JobStatus:
        remote = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job.remote_id))
        return self._read_reply(f"job {job.remote_id}", lambda: self._status(remote))

    def _status(self, job: Any) -> JobStatus:
        raw_state = str(job.status)
        error = None
        if job.error is not None and (job.error.message or job.error.code):
            error = redact(f"{job.error.message} ({job.error.code})")
        epochs = _int_or_none(getattr(job.hyperparameters, "n_epochs", None))
        if epochs is None and job.method is not None:
            section = getattr(job.method, str(job.method.type), None)
            hyper = getattr(section, "hyperparameters", None)
            epochs = _int_or_none(getattr(hyper, "n_epochs", None))
        return JobStatus(
            remote_id=job.id,
            state=self.service.states.get(raw_state, self.service.unknown_state),
            raw_state=raw_state,
            error=error,
            tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens,
            epochs=epochs,
            run_id=(job.metadata or {}).get(RUN_ID_KEY),
            model=job.model,
            created_at=datetime.fromtimestamp(job.created_at, UTC),
            raw=job.model_dump(mode="json"),
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Events newer than ``after``, oldest first (the API lists newest first)."""

        from openai import omit

        def fetch() -> list[Any]:
            newest_first: list[Any] = []
            cursor: str | None = None
            while True:
                page = self.client.fine_tuning.jobs.list_events(
                    job.remote_id, limit=100, after=cursor if cursor else omit
                )
                for item in page.data:
                    if item.id == after:
                        return newest_first
                    newest_first.append(item)
                if not page.data or page.has_more is False:
                    return newest_first
                cursor = page.data[-1].id

        def event(item: Any) -> JobEvent:
            data = item.data if isinstance(item.data, dict) else {}
            step = data.get("step")
            loss = data.get("train_loss", data.get("loss"))
            total = data.get("total_steps")
            if not isinstance(total, int | float):  # "Step 12/300: training loss=..."
                found = STEP_OF_TOTAL.match(item.message)
                total = int(found.group(1)) if found else None
            return JobEvent(
                id=item.id,
                created_at=datetime.fromtimestamp(item.created_at, UTC),
                level=item.level,
                message=redact(item.message),
                step=int(step) if isinstance(step, int | float) else None,
                total_steps=int(total) if total is not None else None,
                loss=float(loss) if isinstance(loss, int | float) else None,
                data=data,
            )

        for item in reversed(self._call(fetch)):
            yield self._read_reply(f"the events of {job.remote_id}", partial(event, item))

    def checkpoints(self, job: JobRef) -> list[Checkpoint]:
        page = self._call(
            lambda: self.client.fine_tuning.jobs.checkpoints.list(job.remote_id, limit=100)
        )
        found = [
            Checkpoint(
                id=c.id,
                step=c.step_number,
                model=c.fine_tuned_model_checkpoint,
                metrics={
                    k: float(v)
                    for k, v in c.metrics.model_dump().items()
                    if isinstance(v, int | float) and k != "step"
                },
            )
            for c in page.data
        ]
        return sorted(found, key=lambda c: c.step)

    def cancel(self, job: JobRef) -> None:
        self._call(lambda: self.client.fine_tuning.jobs.cancel(job.remote_id))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        page = self._call(lambda: self.client.fine_tuning.jobs.list(limit=limit))
        return self._read_reply(
            "the job list", lambda: [self._status(j) for j in page.data[:limit]]
        )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
