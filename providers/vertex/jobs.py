"""Vertex tuning jobs: the job settings sent, the launch made once per run (reconciled by the
``tuneport_run_id`` label before any re-send), and the job's state and events read back."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tuneport.errors import ProviderError, redact
from tuneport.providers.base import UploadedData
from tuneport.providers.errormap import one_line
from tuneport.providers.vertex import NAME
from tuneport.providers.vertex.client import as_int, enum_name
from tuneport.providers.vertex.data import VertexData
from tuneport.retry import outcome_unknown
from tuneport.schemas import JobConfig, JobEvent, JobRef, JobState, JobStatus

RUN_ID_LABEL = "tuneport_run_id"
SEARCH_JOBS = 200  # jobs scanned for a run id when the server ignores the label filter
MAX_DISPLAY_NAME = 128
SNAPSHOT_TTL = 2.0  # seconds a status() snapshot may serve the next events() call

# raw JOB_STATE_* -> normalized state (data table)
STATES: dict[str, JobState] = {
    "JOB_STATE_UNSPECIFIED": JobState.QUEUED,
    "JOB_STATE_QUEUED": JobState.QUEUED,
    "JOB_STATE_PENDING": JobState.QUEUED,
    "JOB_STATE_PAUSED": JobState.QUEUED,
    "JOB_STATE_RUNNING": JobState.RUNNING,
    "JOB_STATE_UPDATING": JobState.RUNNING,
    "JOB_STATE_CANCELLING": JobState.RUNNING,
    "JOB_STATE_SUCCEEDED": JobState.SUCCEEDED,
    "JOB_STATE_PARTIALLY_SUCCEEDED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED,
    "JOB_STATE_EXPIRED": JobState.FAILED,
    "JOB_STATE_CANCELLED": JobState.CANCELLED,
}
# detail state (tuningJobState) that refines a non-terminal state
DETAIL_STATES: dict[str, JobState] = {
    "TUNING_JOB_STATE_PROCESSING_DATASET": JobState.VALIDATING,
}
# tuneport method -> (TuningMethod, the TuningJob field holding its spec, its data-stats field)
METHODS: dict[str, tuple[str, str, str]] = {
    "sft": ("SUPERVISED_FINE_TUNING", "supervised_tuning_spec", "supervised_tuning_data_stats"),
    "dpo": (
        "PREFERENCE_TUNING",
        "preference_optimization_spec",
        "preference_optimization_data_stats",
    ),
}
ADAPTER_SIZES: dict[int, str] = {
    1: "ADAPTER_SIZE_ONE",
    2: "ADAPTER_SIZE_TWO",
    4: "ADAPTER_SIZE_FOUR",
    8: "ADAPTER_SIZE_EIGHT",
    16: "ADAPTER_SIZE_SIXTEEN",
    32: "ADAPTER_SIZE_THIRTY_TWO",
}

# (rank, message) of the detail states, for the event feed
DETAIL_EVENTS: dict[str, tuple[int, str]] = {
    "TUNING_JOB_STATE_WAITING_FOR_QUOTA": (21, "waiting for tuning quota"),
    "TUNING_JOB_STATE_PROCESSING_DATASET": (22, "processing the dataset"),
    "TUNING_JOB_STATE_WAITING_FOR_CAPACITY": (23, "waiting for capacity"),
    "TUNING_JOB_STATE_TUNING": (24, "tuning"),
    "TUNING_JOB_STATE_POST_PROCESSING": (25, "post-processing the tuned model"),
}


def run_id_label(run_id: str) -> str:
    """A label value for ``run_id``: lowercase letters, digits, ``-`` and ``_``, ≤ 63 chars."""
    value = re.sub(r"[^a-z0-9_-]", "-", run_id.lower())
    return value[:63]


class VertexJobs(VertexData):
    """Launch, follow, cancel and list Vertex tuning jobs."""

    def tuning_config(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """The ``CreateTuningJobConfig`` fields for ``cfg`` (JobConfig → Vertex field map)."""
        method, _spec, _stats = METHODS[cfg.method]
        display = cfg.suffix or f"tuneport-{run_id}"
        config: dict[str, Any] = {
            "method": method,
            "tuned_model_display_name": display[:MAX_DISPLAY_NAME],
            "labels": {**self.options.labels, RUN_ID_LABEL: run_id_label(run_id)},
        }
        if cfg.epochs is not None:
            config["epoch_count"] = cfg.epochs
        if cfg.learning_rate_multiplier is not None:
            config["learning_rate_multiplier"] = cfg.learning_rate_multiplier
        if self.options.adapter_size is not None:
            config["adapter_size"] = ADAPTER_SIZES[self.options.adapter_size]
        if uploaded.validation is not None:
            config["validation_dataset"] = {"gcs_uri": uploaded.validation}
        if self.options.description is not None:
            config["description"] = self.options.description
        if self.options.export_last_checkpoint_only is not None:
            config["export_last_checkpoint_only"] = self.options.export_last_checkpoint_only
        if self.options.beta is not None:
            config["beta"] = self.options.beta
        return config

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        from google.genai import types

        self.check_config(cfg)
        self._model = cfg.model
        existing = self.find_run(run_id)
        if existing is not None:
            return JobRef(provider=NAME, remote_id=existing, run_id=run_id)
        config = types.CreateTuningJobConfig(**self.tuning_config(uploaded, cfg, run_id))
        dataset = types.TuningDataset(gcs_uri=uploaded.training)

        def create() -> str:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the SDK's "tuning is experimental" notice
                job = self.client.tunings.tune(
                    base_model=cfg.model, training_dataset=dataset, config=config
                )
            if not job.name:
                error = ProviderError("Vertex AI returned a tuning job without a name")
                error.outcome_unknown = True  # it may exist: look it up by its label
                raise error
            return str(job.name)

        def reconcile(exc: BaseException) -> str | None:
            # A failed attempt whose outcome is unknown may have created the job: look first.
            return self.find_run(run_id) if outcome_unknown(exc) else None

        remote_id = self._create_once(create, lambda: self.find_run(run_id), reconcile)
        return JobRef(provider=NAME, remote_id=remote_id, run_id=run_id)

    def find_run(self, run_id: str) -> str | None:
        label = run_id_label(run_id)

        def search() -> str | None:
            pager = self.client.tunings.list(
                config={"page_size": 50, "filter": f'labels.{RUN_ID_LABEL}="{label}"'}
            )
            for i, job in enumerate(pager):
                if (job.labels or {}).get(RUN_ID_LABEL) == label and job.name:
                    return job.name
                if i + 1 >= SEARCH_JOBS:
                    break
            return None

        return self._call(search)

    def _get(self, remote_id: str) -> Any:
        return self._call(lambda: self.client.tunings.get(name=remote_id))

    def status(self, job: JobRef) -> JobStatus:
        remote = self._get(job.remote_id)
        self._snapshot = (job.remote_id, self._clock(), remote)
        return self._status(remote)

    @staticmethod
    def _spec_and_stats(job: Any) -> tuple[Any, Any]:
        for _method, spec_field, stats_field in METHODS.values():
            spec = getattr(job, spec_field, None)
            if spec is not None:
                stats = getattr(job.tuning_data_stats, stats_field, None)
                return spec, stats
        stats = None
        if job.tuning_data_stats is not None:
            for _method, _spec, stats_field in METHODS.values():
                stats = stats or getattr(job.tuning_data_stats, stats_field, None)
        return None, stats

    @classmethod
    def _status(cls, job: Any) -> JobStatus:
        raw_state = enum_name(job.state) or "JOB_STATE_UNSPECIFIED"
        state = STATES.get(raw_state, JobState.RUNNING)
        detail = enum_name(job.tuning_job_state)
        if not state.terminal and detail in DETAIL_STATES:
            state = DETAIL_STATES[detail]
        spec, stats = cls._spec_and_stats(job)
        hyper = getattr(spec, "hyper_parameters", None)
        epochs = as_int(getattr(hyper, "epoch_count", None))
        billable = as_int(getattr(stats, "total_billable_token_count", None))
        truncated = as_int(getattr(stats, "total_truncated_example_count", None))
        if truncated is None and getattr(stats, "dropped_example_indices", None) is not None:
            truncated = len(stats.dropped_example_indices)
        billed = billable * epochs if billable is not None and epochs else billable
        done = as_int(getattr(job.tuning_job_metadata, "completed_epoch_count", None))
        progress: float | None = None
        if state == JobState.SUCCEEDED:
            progress = 1.0
        elif done is not None and epochs:
            progress = min(1.0, done / epochs)
        error = None
        if job.error is not None and (job.error.message or job.error.code):
            error = one_line(redact(f"{job.error.message} (code {job.error.code})"))
        tuned = job.tuned_model
        labels = job.labels or {}
        raw: dict[str, Any] = {
            "name": job.name,
            "state": raw_state,
            "tuning_job_state": detail,
            "base_model": job.base_model,
            "tuned_model_display_name": job.tuned_model_display_name,
            "tuned_model": tuned.model if tuned else None,
            "endpoint": tuned.endpoint if tuned else None,
            "labels": dict(labels),
            "epoch_count": epochs,
            "completed_epoch_count": done,
            "billable_dataset_tokens": billable,
            "truncated_examples": truncated,
            "tuning_examples": as_int(getattr(stats, "tuning_dataset_example_count", None)),
            "create_time": job.create_time.isoformat() if job.create_time else None,
            "end_time": job.end_time.isoformat() if job.end_time else None,
        }
        return JobStatus(
            remote_id=job.name or "",
            state=state,
            raw_state=raw_state,
            error=error,
            tuned_model=tuned.endpoint if tuned else None,
            trained_tokens=billed,
            epochs=epochs,
            progress=progress,
            run_id=labels.get(RUN_ID_LABEL),
            model=job.base_model,
            created_at=job.create_time,
            phase=DETAIL_EVENTS[detail][1] if detail in DETAIL_EVENTS else None,
            raw={k: v for k, v in raw.items() if v is not None},
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Events derived from the job's snapshot (Vertex has no event feed), oldest first.

        Ids sort in the order things happen (``NN-...``), so ``after`` works across polls.
        """
        # A watch calls status() then events(): reuse that fresh snapshot (one GET per poll).
        cached = self._snapshot
        self._snapshot = None
        if (
            cached is not None
            and cached[0] == job.remote_id
            and self._clock() - cached[1] <= SNAPSHOT_TTL
        ):
            remote = cached[2]
        else:
            remote = self._get(job.remote_id)
        for event in self._events(remote):
            if after is None or event.id > after:
                yield event

    @classmethod
    def _events(cls, job: Any) -> list[JobEvent]:
        status = cls._status(job)
        events: list[JobEvent] = []

        def add(rank: int, key: str, message: str, when: datetime | None, **kw: Any) -> None:
            events.append(JobEvent(id=f"{rank:04d}-{key}", created_at=when, message=message, **kw))

        add(10, "created", f"tuning job created for {job.base_model}", job.create_time)
        detail = enum_name(job.tuning_job_state)
        if detail in DETAIL_EVENTS and not status.state.terminal:
            rank, text = DETAIL_EVENTS[detail]
            add(rank, detail.lower(), text, job.update_time)
        if job.start_time is not None:
            add(30, "started", "tuning started", job.start_time)
        truncated = status.raw.get("truncated_examples")
        if truncated:
            add(
                40,
                "truncated",
                f"Vertex truncated or dropped {truncated} example(s) (too many tokens, invalid "
                "or too many images); see the job's tuning data stats",
                job.update_time,
                level="warning",
            )
        done = as_int(getattr(job.tuning_job_metadata, "completed_epoch_count", None)) or 0
        for epoch in range(1, done + 1):
            total = f"/{status.epochs}" if status.epochs else ""
            add(100 + epoch, f"epoch-{epoch}", f"epoch {epoch}{total} completed", None, step=epoch)
        if status.state.terminal:
            text = {
                JobState.SUCCEEDED: f"succeeded; endpoint {status.tuned_model}",
                JobState.FAILED: f"failed: {status.error or status.raw_state}",
                JobState.CANCELLED: "cancelled",
            }[status.state]
            level = "error" if status.state == JobState.FAILED else "info"
            add(9000, status.state.value, text, job.end_time, level=level)
        return events

    def cancel(self, job: JobRef) -> None:
        self._call(lambda: self.client.tunings.cancel(name=job.remote_id))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        def fetch() -> list[Any]:
            found: list[Any] = []
            for job in self.client.tunings.list(config={"page_size": min(max(limit, 1), 100)}):
                found.append(job)
                if len(found) >= limit:
                    break
            return found

        return [self._status(j) for j in self._call(fetch)]


__all__ = ["RUN_ID_LABEL", "STATES", "VertexJobs", "run_id_label"]
