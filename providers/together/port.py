"""``tuneport port``: a finished Together job's settings and data, given back."""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import Any

from tuneport.errors import NotFoundError
from tuneport.providers.base import SourceJob, no_source_job, status_fields
from tuneport.providers.sdk import download_file
from tuneport.providers.together.jobs import TogetherJobs
from tuneport.providers.together.options import DEFAULT_LEARNING_RATE, NAME


class TogetherPort(TogetherJobs):
    """The ReturnsData capability: a job found by id or by its tuned model, and its files."""

    def source_job(self, ref: str) -> SourceJob:
        """The job ``ref`` (``ft-...``) or the job whose output model is ``ref``, with its
        files, method and settings (``FinetuneResponse``, together 3.1 types)."""
        job: Any = None
        if ref.startswith("ft-"):
            with contextlib.suppress(NotFoundError):
                job = self._call(lambda: self.client.fine_tuning.retrieve(ref))
        else:
            jobs = self._call(lambda: self.client.fine_tuning.list()).data
            job = next((j for j in jobs if j.x_model_output_name == ref), None)
        if job is None:
            raise no_source_job(f"Together at {self.base_url}", ref, NAME)
        status = self._status(job)
        method = getattr(job.training_method, "method", None) or "sft"
        rate = job.learning_rate
        return SourceJob(
            provider=NAME,
            remote_id=str(job.id),
            model=str(job.model),
            method=str(method),
            **status_fields(status),
            hyperparameters={
                "epochs": job.n_epochs,
                # as a multiplier of Together's documented default rate
                "learning_rate_multiplier": rate / DEFAULT_LEARNING_RATE if rate else None,
                "batch_size": job.batch_size if isinstance(job.batch_size, int) else None,
            },
            trained_tokens=job.token_count,
            training=str(job.training_file),
            validation=job.validation_file or None,
        )

    def download(self, ref: str, out: Path) -> None:
        """The bytes of uploaded file ``ref`` (``GET /v1/files/{id}/content``) at ``out``."""
        read = partial(self._call, lambda: self.client.files.content(ref))
        download_file(read, out, title="Together", base_url=self.base_url, ref=ref)
