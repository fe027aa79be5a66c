"""``tuneport port`` from Vertex AI: a finished tuning job's settings and the Cloud Storage
objects that hold its data, given back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuneport.errors import NotFoundError
from tuneport.providers.base import SourceJob, no_source_job, status_fields
from tuneport.providers.vertex import NAME
from tuneport.providers.vertex.client import as_int, enum_name
from tuneport.providers.vertex.jobs import ADAPTER_SIZES, METHODS, SEARCH_JOBS, VertexJobs


class VertexPort(VertexJobs):
    """ReturnsData: give a finished job's data back."""

    def source_job(self, ref: str) -> SourceJob:
        """The tuning job ``ref`` (``projects/P/locations/L/tuningJobs/ID``) or the job whose
        tuned model is ``ref`` (its endpoint or model name), with its GCS URIs, method and
        hyperparameters (google-genai ``TuningJob``: ``supervisedTuningSpec`` /
        ``preferenceOptimizationSpec``)."""
        job: Any = None
        if "/tuningJobs/" in ref:
            try:
                job = self._get(ref)
            except NotFoundError:
                job = None
        else:
            job = self._job_of_model(ref)
        if job is None:
            where = f"Vertex AI ({self._known_project() or 'project'}, {self.location})"
            raise no_source_job(where, ref, NAME, "tuning job")
        status = self._status(job)
        spec, _stats = self._spec_and_stats(job)
        method = next(
            (m for m, (_, field, _) in METHODS.items() if getattr(job, field, None) is not None),
            "sft",
        )
        hyper = getattr(spec, "hyper_parameters", None)
        sizes = {v: k for k, v in ADAPTER_SIZES.items()}
        kept = {
            "epochs": as_int(getattr(hyper, "epoch_count", None)),
            "learning_rate_multiplier": getattr(hyper, "learning_rate_multiplier", None),
            "batch_size": as_int(getattr(hyper, "batch_size", None)),  # supervised only
            "adapter_size": sizes.get(enum_name(getattr(hyper, "adapter_size", None)) or ""),
            "beta": getattr(hyper, "beta", None),  # preference only
        }
        return SourceJob(
            provider=NAME,
            remote_id=str(job.name),
            model=str(job.base_model or ""),
            method=method,
            **status_fields(status),
            hyperparameters={k: v for k, v in kept.items() if v is not None},
            trained_tokens=status.trained_tokens,
            training=str(getattr(spec, "training_dataset_uri", None) or ""),
            validation=getattr(spec, "validation_dataset_uri", None) or None,
        )

    def _job_of_model(self, model: str) -> Any:
        def search() -> Any:
            for i, job in enumerate(self.client.tunings.list(config={"page_size": 50})):
                tuned = job.tuned_model
                if tuned is not None and model in (tuned.endpoint, tuned.model):
                    return job
                if i + 1 >= SEARCH_JOBS:
                    break
            return None

        return self._call(search)

    def download(self, ref: str, out: Path) -> None:
        """The bytes of Cloud Storage object ``ref`` (``gs://BUCKET/NAME``) written to ``out``
        (Gemini-format JSONL, which tuneport reads back as ``--from vertex``)."""
        from tuneport.providers.vertex.gcs import GcsLocation

        bucket, _, name = ref.removeprefix("gs://").partition("/")
        if not ref.startswith("gs://") or not bucket or not name:
            raise NotFoundError(
                f"{ref!r} is not a Cloud Storage object (gs://BUCKET/NAME)",
                hint="port a tuning job whose datasets are in Cloud Storage",
            )
        self._gcs(GcsLocation(bucket, "")).download(name, out)


__all__ = ["VertexPort"]
