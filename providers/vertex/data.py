"""The data side of the Vertex backend: Gemini JSONL within Vertex's dataset limits, the job
settings checked before anything is uploaded or paid for, and the upload to Cloud Storage."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from tuneport.errors import ConfigError, InputError, ProviderError, combine
from tuneport.progress import Progress
from tuneport.providers.base import PreparedData, UploadedData, export_prepared, oversized
from tuneport.providers.vertex import (
    ADAPTER_SIZES_SOURCE,
    MAX_DATASET_BYTES,
    MAX_VALIDATION_EXAMPLES,
    NAME,
    adapter_sizes,
)
from tuneport.providers.vertex.client import VertexClient
from tuneport.schemas import AnyRecord, JobConfig


class VertexData(VertexClient):
    """Prepare, check and upload a dataset for Vertex Gemini tuning."""

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        prepared = export_prepared(
            records, cfg, progress, out_dir, target=NAME, title="convert to Vertex Gemini JSONL"
        )
        check_dataset_limits(prepared)
        return prepared

    @staticmethod
    def check_model(model: str) -> None:
        """Refuse a model id that belongs to another provider (e.g. a job file switched over)."""
        from tuneport.providers.registry import provider_for_model

        owner = provider_for_model(model)
        if owner is not None and owner != NAME:
            raise ConfigError(
                f"model {model!r} belongs to the {owner} provider, not to Vertex AI",
                hint="pass --model gemini-2.5-flash (or another tunable Gemini model)",
            )

    def check_beta(self, cfg: JobConfig) -> None:
        if self.options.beta is not None and cfg.method != "dpo":
            raise ConfigError(
                "beta applies to preference tuning only",
                hint="use --method dpo or drop the beta setting",
            )

    def check_adapter_size(self, cfg: JobConfig) -> None:
        """An adapter size the docs do not list for the model and method is refused (a model
        whose sizes are unconfirmed only gets a warning in the estimate)."""
        size = self.options.adapter_size
        allowed = adapter_sizes(cfg.model, cfg.method)
        if size is None or allowed is None or size in allowed:
            return
        raise ConfigError(
            f"adapter_size {size} is not available for {cfg.model} ({cfg.method}); the docs "
            f"list {', '.join(map(str, allowed))} ({ADAPTER_SIZES_SOURCE})",
            hint=f"use --set adapter_size={allowed[-1]} or smaller, or leave it unset",
        )

    def check_config(self, cfg: JobConfig) -> None:
        """Refuse what cannot work before anything is uploaded or paid for."""
        self.check_model(cfg.model)
        self.check_beta(cfg)
        self.check_adapter_size(cfg)

    def preflight(self, cfg: JobConfig) -> None:
        """Every settings problem at once, before pricing, the prompt or any upload.

        Checks the model, beta, bucket, project and credentials (no tuning API call).
        """
        from tuneport.providers.vertex.gcs import parse_location

        checks: list[Callable[[], object]] = [
            lambda: self.check_model(cfg.model),
            lambda: self.check_beta(cfg),
            lambda: self.check_adapter_size(cfg),
            lambda: parse_location(self.options.bucket) if self.options.bucket else self.stager(),
            lambda: self.credentials,
            lambda: self.project,
        ]
        problems: list[ConfigError] = []
        for check in checks:
            try:
                check()
            except ConfigError as exc:
                problems.append(exc)
        if problems:  # every one at once, one line each
            raise combine(problems)

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        from tuneport.providers.vertex.gcs import file_digests

        stager = self.stager()
        train_digests = file_digests(prepared.training)
        if train_digests.sha256 != prepared.sha256:
            raise ProviderError(
                f"{prepared.training} changed after it was prepared",
                hint="run the command again",
            )
        train = stager.upload(prepared.training, progress=progress, digests=train_digests)
        validation = None
        reused = train.reused
        if prepared.validation is not None:
            val = stager.upload(prepared.validation, progress=progress)
            validation = val.uri
            reused = reused and val.reused
        return UploadedData(training=train.uri, validation=validation, reused=reused)


def check_dataset_limits(prepared: PreparedData) -> None:
    """Refuse a dataset Vertex would reject: a JSONL file over 1 GB, or more than 5,000
    validation examples (:data:`DATASET_LIMITS_SOURCE`)."""
    if big := oversized(prepared, MAX_DATASET_BYTES):
        path, size = big
        raise InputError(
            f"{path.name} is {size / 2**20:,.0f} MiB; Vertex tuning reads "
            f"dataset files of at most {MAX_DATASET_BYTES / 2**30:g} GB",
            hint="split the data or shorten it (tuneport curate --sample N)",
        )
    if prepared.validation is not None:
        with prepared.validation.open("rb") as fh:
            n = sum(1 for line in fh if line.strip())
        if n > MAX_VALIDATION_EXAMPLES:
            raise InputError(
                f"the validation set has {n:,} examples; Vertex takes at most "
                f"{MAX_VALIDATION_EXAMPLES:,}",
                hint=f"keep at most {MAX_VALIDATION_EXAMPLES:,} (e.g. tuneport curate VALIDATION "
                f"-o smaller.jsonl --sample {MAX_VALIDATION_EXAMPLES})",
            )


__all__ = ["VertexData", "check_dataset_limits"]
