"""Fine-tuning jobs (SFT and DPO): created under an id derived from the run (a re-run or a
retry finds the one job), their state normalized, their state changes as events."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

from tuneport.errors import ConfigError, NotFoundError, redact
from tuneport.providers.base import UploadedData
from tuneport.providers.errormap import one_line
from tuneport.providers.fireworks import NAME
from tuneport.providers.fireworks.client import FireworksBase
from tuneport.providers.fireworks.errors import sdk
from tuneport.providers.fireworks.ids import job_id, output_model_id, short
from tuneport.providers.fireworks.options import DEFAULT_LEARNING_RATE
from tuneport.providers.sdk import as_datetime, learning_rate
from tuneport.schemas import JobConfig, JobEvent, JobRef, JobState, JobStatus

if TYPE_CHECKING:
    from fireworks.resources import DpoJobsResource, SupervisedFineTuningJobsResource
    from fireworks.types import DpoJob, SupervisedFineTuningJob
    from fireworks.types.shared import ReinforcementLearningLossConfig, TrainingConfig

    Job: TypeAlias = SupervisedFineTuningJob | DpoJob

# tuneport method -> (job collection, create id parameter)
METHODS: dict[str, tuple[str, str]] = {
    "sft": ("supervisedFineTuningJobs", "supervised_fine_tuning_job_id"),
    "dpo": ("dpoJobs", "dpo_job_id"),
}
COLLECTIONS: tuple[str, ...] = tuple(collection for collection, _ in METHODS.values())

# raw JOB_STATE_* -> normalized state (fireworks/types/supervised_fine_tuning_job.py; meanings
# inferred from the names except PAUSED, which the SDK documents)
STATES: dict[str, JobState] = {
    "JOB_STATE_UNSPECIFIED": JobState.QUEUED,
    "JOB_STATE_CREATING": JobState.QUEUED,
    "JOB_STATE_CREATING_INPUT_DATASET": JobState.VALIDATING,
    "JOB_STATE_VALIDATING": JobState.VALIDATING,
    "JOB_STATE_PENDING": JobState.QUEUED,
    "JOB_STATE_RE_QUEUEING": JobState.QUEUED,
    "JOB_STATE_IDLE": JobState.QUEUED,
    "JOB_STATE_PAUSED": JobState.QUEUED,
    "JOB_STATE_RUNNING": JobState.RUNNING,
    "JOB_STATE_WRITING_RESULTS": JobState.RUNNING,
    "JOB_STATE_CANCELLING": JobState.RUNNING,
    "JOB_STATE_COMPLETED": JobState.SUCCEEDED,
    "JOB_STATE_EARLY_STOPPED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED,
    "JOB_STATE_EXPIRED": JobState.FAILED,
    "JOB_STATE_CANCELLED": JobState.CANCELLED,
    "JOB_STATE_DELETING": JobState.CANCELLED,
    "JOB_STATE_DELETING_CLEANING_UP": JobState.CANCELLED,
    # tombstones newer than fireworks-ai 1.2.30's Literal (fw-ai-external/python-sdk
    # training/sdk/trainer.py, 2026-07): the job is gone, so waiting must end
    "JOB_STATE_DELETED": JobState.CANCELLED,
    "JOB_STATE_ARCHIVED": JobState.CANCELLED,
}
SNAPSHOT_TTL = 2.0  # seconds a status() snapshot may serve the next events() call


def job_config(job: Job) -> SupervisedFineTuningJob | TrainingConfig:
    """Where a job's settings are: an SFT job holds them itself, a DPO job in its
    ``trainingConfig`` (empty when the server sent none)."""
    from fireworks.types import DpoJob
    from fireworks.types.shared import TrainingConfig

    if isinstance(job, DpoJob):
        return job.training_config or TrainingConfig()
    return job


def sft_job(job: Job) -> SupervisedFineTuningJob | None:
    """``job`` when it is an SFT job (progress and the evaluation dataset are SFT-only)."""
    from fireworks.types import SupervisedFineTuningJob

    return job if isinstance(job, SupervisedFineTuningJob) else None


def dpo_loss(job: Job) -> ReinforcementLearningLossConfig | None:
    """A DPO job's ``lossConfig`` (its method and beta); ``None`` for SFT or when unset."""
    from fireworks.types import DpoJob

    return job.loss_config if isinstance(job, DpoJob) else None


class Jobs(FireworksBase):
    """Launch, watch, list and cancel fine-tuning jobs."""

    _snapshot: tuple[str, float, Job] | None = None  # the last job read: events() may reuse it

    def _jobs(self, collection: str) -> SupervisedFineTuningJobsResource | DpoJobsResource:
        if collection == METHODS["dpo"][0]:
            return self.client.dpo_jobs
        return self.client.supervised_fine_tuning_jobs

    def _parse(self, remote_id: str) -> tuple[str, str]:
        """``(collection, job id)`` of a job name ``accounts/A/<collection>/<id>``."""
        parts = remote_id.split("/")
        if len(parts) == 4 and parts[2] in COLLECTIONS:
            return parts[2], parts[3]
        raise NotFoundError(
            f"{remote_id!r} is not a Fireworks fine-tuning job name",
            hint="expected accounts/ACCOUNT/supervisedFineTuningJobs/ID or .../dpoJobs/ID",
        )

    def _get_job(self, remote_id: str) -> Job:
        collection, ident = self._parse(remote_id)
        job = self._call(lambda: self._jobs(collection).get(ident))
        self._snapshot = (remote_id, self._clock(), job)
        return job

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        """Create the job under the id derived from ``run_id``; an existing one is returned."""
        self._model = cfg.model
        collection, _id_param = METHODS[cfg.method]
        jid = job_id(run_id)
        jobs = self._jobs(collection)
        found = self._get_or_none(lambda: jobs.get(jid))
        if found is not None:
            self._check_owned(found, uploaded, jid)
            return JobRef(provider=NAME, remote_id=str(found.name), run_id=run_id)
        kwargs = self.job_kwargs(uploaded, cfg, run_id)

        def create() -> Job:
            try:
                return jobs.create(**kwargs)
            except sdk().ConflictError:  # an earlier attempt created it: that one
                return jobs.get(jid)

        def reconcile(_exc: BaseException) -> Job | None:
            with contextlib.suppress(Exception):
                return jobs.get(jid)
            return None

        job = self._call(create, before_retry=reconcile)
        self._check_owned(job, uploaded, jid)
        return JobRef(provider=NAME, remote_id=str(job.name), run_id=run_id)

    @staticmethod
    def _check_owned(job: Job, uploaded: UploadedData, jid: str) -> None:
        if str(job.dataset) != uploaded.training:
            raise ConfigError(
                f"Fireworks job {jid} exists but trains on {job.dataset}, not {uploaded.training}",
                hint="this run id was used for other data: launch it again with `tuneport train`",
            )

    def job_kwargs(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """Keyword arguments of ``supervised_fine_tuning_jobs.create`` / ``dpo_jobs.create``
        (see the README for the mapping)."""
        opts = self.options
        _collection, id_param = METHODS[cfg.method]
        hyper: dict[str, Any] = {
            "base_model": cfg.model,
            "output_model": output_model_id(cfg, run_id),
            "epochs": cfg.epochs if cfg.epochs is not None else 1,
            "learning_rate": learning_rate(
                opts.learning_rate, cfg.learning_rate_multiplier, DEFAULT_LEARNING_RATE
            ),
            "lora_rank": opts.lora_rank,
            "max_context_length": opts.max_context_length,
            "batch_size_samples": cfg.batch_size,
            "learning_rate_warmup_steps": opts.learning_rate_warmup_steps,
            "gradient_accumulation_steps": opts.gradient_accumulation_steps,
        }
        hyper = {k: v for k, v in hyper.items() if v is not None}
        display = f"tuneport {cfg.suffix}" if cfg.suffix else "tuneport"
        kwargs: dict[str, Any] = {
            "dataset": uploaded.training,
            id_param: job_id(run_id),
            "display_name": display,
        }
        if cfg.method == "dpo":
            loss: dict[str, Any] = {"method": "DPO"}  # unset would mean GRPO (SDK docstring)
            if opts.dpo_beta is not None:
                loss["dpo"] = {"beta": opts.dpo_beta}
            kwargs.update(training_config=hyper, loss_config=loss)
            return kwargs
        kwargs.update(hyper)
        extra = {
            "evaluation_dataset": uploaded.validation,
            "early_stop": opts.early_stop,
            "eval_auto_carveout": opts.eval_auto_carveout,
        }
        kwargs.update({k: v for k, v in extra.items() if v is not None})
        return kwargs

    def status(self, job: JobRef) -> JobStatus:
        return self._status(self._get_job(job.remote_id))

    def _status(self, job: Job) -> JobStatus:
        raw_state = str(job.state or "JOB_STATE_UNSPECIFIED")
        state = STATES.get(raw_state, JobState.RUNNING)
        config = job_config(job)
        output = config.output_model
        base = config.base_model or config.warm_start_from
        sft = sft_job(job)
        progress_info = sft.job_progress if sft else None
        percent = progress_info.percent if progress_info else None
        error = None
        if raw_state == "JOB_STATE_EARLY_STOPPED" and not (
            output and self._get_or_none(lambda: self.client.models.get(short(output)))
        ):  # what EARLY_STOPPED leaves is not documented: succeeded only with a model
            state = JobState.FAILED
        if state is JobState.FAILED:
            error = redact(one_line(str((job.status.message if job.status else None) or raw_state)))
        return JobStatus(
            remote_id=str(job.name),
            state=state,
            raw_state=raw_state,
            error=error,
            tuned_model=self._full_model(output)
            if output and state is JobState.SUCCEEDED
            else None,
            # Billed as-is (issue 19 asked: per epoch or all epochs?). The SDK (fireworks-ai
            # 1.2.30, fireworks/types/supervised_fine_tuning_job.py JobProgress, read
            # 2026-12-06) says only "Total number of input tokens processed." for inputTokens,
            # a progress structure shared with batch-inference and evaluation jobs whose `epoch`
            # is "the epoch for which the progress percent is reported"; docs.fireworks.ai says
            # fine-tuning is billed "per token of training data" without the epoch rule. Not
            # established either way, so not multiplied; the job's `estimatedCost` is
            # Fireworks' own figure.
            trained_tokens=progress_info.input_tokens if progress_info else None,
            epochs=config.epochs,
            progress=percent / 100 if isinstance(percent, int | float) else None,
            model=base,
            created_at=as_datetime(job.create_time),
            raw=job.model_dump(mode="json"),
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Fireworks has no job event feed: one event per state (and progress) seen."""
        snap = self._snapshot
        fresh = snap is not None and snap[0] == job.remote_id
        if fresh and snap is not None and self._clock() - snap[1] <= SNAPSHOT_TTL:
            remote = snap[2]
        else:
            remote = self._get_job(job.remote_id)
        status = self._status(remote)
        sft = sft_job(remote)  # DpoJob declares no updateTime
        percent = None if status.progress is None else round(status.progress * 100)
        event_id = f"{status.raw_state}:{percent if percent is not None else '-'}"
        if event_id == after:
            return
        words = status.raw_state.removeprefix("JOB_STATE_").replace("_", " ").lower()
        message = words + (f" ({percent}%)" if percent is not None else "")
        if status.error:
            message += f": {status.error}"
        yield JobEvent(
            id=event_id,
            created_at=as_datetime(sft.update_time if sft else None),
            level="error" if status.state is JobState.FAILED else "info",
            message=message,
            data={"state": status.raw_state, "percent": percent},
        )

    def cancel(self, job: JobRef) -> None:
        collection, ident = self._parse(job.remote_id)
        self._call(lambda: self._jobs(collection).cancel(ident, body={}))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        def fetch() -> list[Job]:
            size = min(limit, 200)
            sft = self.client.supervised_fine_tuning_jobs.list(page_size=size)
            dpo = self.client.dpo_jobs.list(page_size=size)
            return [*itertools.islice(sft, limit), *itertools.islice(dpo, limit)]

        jobs = self._call(fetch)
        jobs.sort(key=lambda j: str(j.create_time or ""), reverse=True)
        return [self._status(j) for j in jobs[:limit]]
