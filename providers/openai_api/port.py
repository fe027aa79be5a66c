"""A finished job's data given back over the OpenAI protocol (``tuneport port``): the job of a
tuned model, its files, method and hyperparameters, and the bytes of its uploads."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from tuneport.errors import NotFoundError
from tuneport.providers import sdk
from tuneport.providers.base import SourceJob, no_source_job
from tuneport.providers.openai_api.backend import ProtocolBackend
from tuneport.providers.openai_api.service import (
    HYPERPARAMETERS,
    METHOD_TYPES,
    SEARCH_SOURCE_JOBS,
)


class Port(ProtocolBackend):
    """``ReturnsData``: give a finished job's data back."""

    def source_job(self, ref: str) -> SourceJob:
        """The job ``ref`` (``ftjob-...``) or the job that produced the tuned model ``ref``
        (``ft:...``), with its files, method and hyperparameters."""
        job_id = ref if not ref.startswith("ft:") else self._job_of_model(ref)
        title = self.api.title
        try:
            job = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job_id))
        except NotFoundError:
            raise no_source_job(f"{title} at {self.base_url}", ref, self.name) from None
        return self._read_reply(f"job {job_id}", lambda: self._source_job(job))

    def _job_of_model(self, model: str) -> str:
        def search() -> str | None:
            for i, job in enumerate(self.client.fine_tuning.jobs.list(limit=100)):
                if job.fine_tuned_model == model:
                    return str(job.id)
                if i >= SEARCH_SOURCE_JOBS:
                    break
            return None

        found = self._call(search)
        if found is None:
            raise NotFoundError(
                f"no fine-tuning job at {self.api.title} ({self.base_url}) produced {model!r} "
                f"(searched the {SEARCH_SOURCE_JOBS} newest jobs)",
                hint="pass the job id (ftjob-...) instead",
            )
        return found

    def _source_job(self, job: Any) -> SourceJob:
        raw = job.model_dump(mode="json")
        method = raw.get("method") or {"type": "supervised"}
        kind = str(method.get("type") or "supervised")
        hyper = dict(raw.get("hyperparameters") or {})
        section: dict[str, Any] = method.get(kind) or {}
        hyper.update(
            {
                k: v
                for k, v in (section.get("hyperparameters") or {}).items()
                if v not in (None, "auto")
            }
        )
        names = {**{v: k for k, v in HYPERPARAMETERS.items()}, "beta": "beta"}
        kept = {names[k]: (None if v == "auto" else v) for k, v in hyper.items() if k in names}
        methods = {v: k for k, v in METHOD_TYPES.items()}
        return SourceJob(
            provider=self.name,
            remote_id=str(job.id),
            model=str(job.model),
            tuned_model=job.fine_tuned_model,
            state=str(job.status),
            method=methods.get(kind, kind),
            hyperparameters=kept,
            trained_tokens=job.trained_tokens,
            training=str(job.training_file),
            validation=job.validation_file or None,
            created_at=datetime.fromtimestamp(job.created_at, UTC).isoformat(),
        )

    def download(self, ref: str, out: Path) -> None:
        """The bytes of uploaded file ``ref`` (``GET /files/{id}/content``) written to ``out``."""
        read = partial(self._call, lambda: self.client.files.content(ref))
        sdk.download_file(read, out, title=self.api.title, base_url=self.base_url, ref=ref)
