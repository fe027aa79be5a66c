"""Together fine-tuning jobs: created once per run (found again by the run tag in the job
suffix), their status, events, checkpoints, cancel and cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from tuneport.errors import ConfigError, NotFoundError, redact
from tuneport.progress import NullProgress, Progress
from tuneport.providers.base import Checkpoint, UploadedData
from tuneport.providers.errormap import one_line
from tuneport.providers.sdk import as_datetime, learning_rate
from tuneport.providers.together.client import TogetherBase
from tuneport.providers.together.errors import API
from tuneport.providers.together.options import DEFAULT_LEARNING_RATE, NAME, TogetherOptions
from tuneport.schemas import JobConfig, JobEvent, JobRef, JobState, JobStatus

MAX_SUFFIX = 40  # create() docstring: "Up to 40 character suffix"
TAG_PREFIX = "tp"
TAG_HEX = 10

# raw job status -> normalized state (together/lib/types/fine_tuning.py FinetuneJobStatus;
# `user_error` is missing from the generated Literal and the OpenAPI spec but sent by the API:
# together-python commit 94ffb30, "Add new error type", 2024-06-12)
STATES: dict[str, JobState] = {
    "pending": JobState.QUEUED,
    "queued": JobState.QUEUED,
    "running": JobState.RUNNING,
    "compressing": JobState.RUNNING,
    "uploading": JobState.RUNNING,
    "cancel_requested": JobState.RUNNING,
    "cancelled": JobState.CANCELLED,
    "error": JobState.FAILED,
    "user_error": JobState.FAILED,
    "completed": JobState.SUCCEEDED,
}
EVENT_LEVELS: dict[str, str] = {
    "info": "info",
    "warning": "warning",
    "error": "error",
    "legacy_info": "info",
    "legacy_iwarning": "warning",
    "legacy_ierror": "error",
}
LOSS_KEYS = ("train_loss", "loss")


NANODOLLARS = 1_000_000_000  # FinetuneResponse.total_price unit (together/lib/utils/tools.py)


def _dollars(total_price: object) -> float | None:
    """Together's ``total_price`` (an integer of nano-dollars) in USD; ``None`` until known."""
    if isinstance(total_price, bool) or not isinstance(total_price, int) or total_price <= 0:
        return None
    return total_price / NANODOLLARS


def event_level(level: object) -> str:
    """tuneport's level of a job event. The SDK's own enum sends ``Info``/``Warning``/``Error``
    (capitalised; the OpenAPI spec lists lowercase names), older jobs the ``legacy_*`` ones: the
    lookup ignores case, so an error event is never shown as info."""
    return EVENT_LEVELS.get(str(level or "info").lower(), "info")


def run_tag(run_id: str) -> str:
    """The tag that finds a run again: ``tp`` + 10 hex digits of SHA-256(run id).

    It ends the job suffix (Together keeps no metadata and takes no client id)."""
    return TAG_PREFIX + hashlib.sha256(run_id.encode()).hexdigest()[:TAG_HEX]


def job_suffix(cfg: JobConfig, run_id: str) -> str:
    """``<--suffix>-<tag>`` (or the tag alone): the user's suffix plus the run tag."""
    tag = run_tag(run_id)
    return f"{cfg.suffix}-{tag}" if cfg.suffix else tag


MAX_USER_SUFFIX = MAX_SUFFIX - len(TAG_PREFIX) - TAG_HEX - 1


def sft_train_on_inputs(options: TogetherOptions) -> bool | str:
    """The SFT ``train_on_inputs`` value: the option, else ``"auto"`` (the SDK's default,
    stated so the SDK logs no warning)."""
    return "auto" if options.train_on_inputs is None else options.train_on_inputs


def _event_id(event: Any) -> str:
    """A stable id for an event (the API gives none): a digest of what it says."""
    key = json.dumps(
        [str(event.created_at), str(event.type), event.message, event.step], sort_keys=True
    )
    return "ev-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _loss(metrics: Mapping[str, float] | None) -> float | None:
    for key in LOSS_KEYS:
        value = (metrics or {}).get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


class TogetherJobs(TogetherBase):
    """Launch, follow, cancel and clean up jobs."""

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        """Create the job once per ``run_id``: look it up first, and again before any retry."""
        self._model = cfg.model
        found = self.find_run(run_id, cfg.model)
        if found is not None:
            return JobRef(provider=NAME, remote_id=found, run_id=run_id)
        kwargs = self.job_kwargs(uploaded, cfg, run_id)
        limits = self.model_limits(cfg.model)

        def create() -> str:
            try:
                job = self.client.fine_tuning.create(**kwargs, model_limits=limits)
            except ValueError as exc:  # the SDK's own checks (batch size, ranges)
                if isinstance(exc, json.JSONDecodeError):
                    raise
                raise ConfigError(
                    f"the together SDK refused the job settings: {one_line(str(exc), 300)}",
                    hint="fix the flags or --set options",
                ) from None
            if getattr(job, "id", None):
                return str(job.id)
            found = self.find_run(run_id, cfg.model)  # e.g. a reply of {}: the job may exist
            if found is None:
                raise API.unreadable("the job create")
            return found

        # the failed attempt may have created the job: never create a second paid one
        remote_id = self._create_once(create, lambda: self.find_run(run_id, cfg.model))
        return JobRef(provider=NAME, remote_id=remote_id, run_id=run_id)

    def job_kwargs(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """Keyword arguments of ``client.fine_tuning.create`` for ``cfg`` (see the README for
        the mapping)."""
        opts = self.options
        kwargs: dict[str, Any] = {
            "training_file": uploaded.training,
            "model": cfg.model,
            "n_epochs": cfg.epochs if cfg.epochs is not None else 1,
            "batch_size": cfg.batch_size if cfg.batch_size is not None else "max",
            "suffix": job_suffix(cfg, run_id),
            "training_method": cfg.method,
            "lora": opts.lora,
        }
        optional: dict[str, Any] = {
            "validation_file": uploaded.validation,
            "learning_rate": learning_rate(
                opts.learning_rate, cfg.learning_rate_multiplier, DEFAULT_LEARNING_RATE
            ),
            "random_seed": cfg.seed,
            "n_checkpoints": opts.n_checkpoints,
            "n_evals": opts.n_evals,
            "warmup_ratio": opts.warmup_ratio,
            "max_seq_length": opts.max_seq_length,
            "train_on_inputs": sft_train_on_inputs(opts) if cfg.method == "sft" else None,
            "dpo_beta": opts.dpo_beta,
        }
        if opts.lora:
            optional.update(
                lora_r=opts.lora_r,
                lora_alpha=opts.lora_alpha,
                lora_dropout=opts.lora_dropout,
                lora_trainable_modules=opts.lora_trainable_modules,
            )
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return kwargs

    def find_run(self, run_id: str, model: str | None = None) -> str | None:
        """The id of the job whose suffix ends with the tag of ``run_id`` (for ``model`` when
        given), if Together has one: the :class:`~tuneport.providers.base.FindsRuns` capability."""
        tag = run_tag(run_id)

        def search() -> str | None:
            for job in self.client.fine_tuning.list().data:
                suffix = job.suffix or ""
                output = job.x_model_output_name or ""
                if (model is None or job.model == model) and (
                    suffix.endswith(tag) or f"-{tag}-" in output
                ):
                    return str(job.id)
            return None

        return self._call(search)

    def status(self, job: JobRef) -> JobStatus:
        return self._status(self._call(lambda: self.client.fine_tuning.retrieve(job.remote_id)))

    @staticmethod
    def _status(job: Any) -> JobStatus:
        raw_state = str(job.status)
        state = STATES.get(raw_state, JobState.RUNNING)
        error = None
        if state is JobState.FAILED:
            errors = [
                e for e in getattr(job, "events", None) or [] if event_level(e.level) == "error"
            ]
            reason = errors[-1].message if errors else f"the job ended with status {raw_state}"
            error = redact(one_line(reason))
        epochs = job.n_epochs
        done = getattr(job, "epochs_completed", None)
        progress = None
        if isinstance(epochs, int) and epochs > 0 and isinstance(done, int):
            progress = min(1.0, done / epochs)
        return JobStatus(
            remote_id=str(job.id),
            state=state,
            raw_state=raw_state,
            error=error,
            tuned_model=job.x_model_output_name if state is JobState.SUCCEEDED else None,
            # Billed as-is (issue 19 asked: per epoch or all epochs?). Together's pricing page
            # (docs.together.ai/docs/fine-tuning/pricing, read 2026-12-06) bills
            # n_epochs x tokens_per_training_dataset + n_evals x tokens_per_validation_dataset
            # and says the "final token count and price" appear in fine_tuning.retrieve once
            # tokenization completes, but not which of the two `token_count` holds. The SDK
            # (together 3.1.1) documents the job's field only as "Count of tokens processed"
            # (together/lib/types/fine_tuning.py) and the event's as "dataset token count";
            # recorded at tokenization, before any epoch runs, it may well be one epoch's count.
            # Not established either way: left unmultiplied, and the cost after the job comes
            # from the job's own `total_price` (nano-dollars: together/lib/utils/tools.py
            # finetune_price_to_dollars), which is what Together bills, epochs included.
            trained_tokens=job.token_count,
            billed_usd=_dollars(getattr(job, "total_price", None)),
            epochs=epochs,
            progress=progress,
            model=job.model,
            created_at=as_datetime(job.created_at),
            raw=job.model_dump(mode="json", exclude={"events"}),
        )

    def _metrics(self, job: JobRef) -> dict[int, dict[str, float]]:
        """Training metrics by global step (``list_metrics``)."""
        reply = self._call(lambda: self.client.fine_tuning.list_metrics(job.remote_id))
        by_step: dict[int, dict[str, float]] = {}
        for row in reply.metrics or []:
            step = row.get("global_step", row.get("step"))
            if isinstance(step, int | float):
                by_step[int(step)] = {k: float(v) for k, v in row.items()}
        return by_step

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Events newer than ``after``, oldest first, with the loss of their step attached."""
        items = list(self._call(lambda: self.client.fine_tuning.list_events(job.remote_id)).data)
        items.sort(key=lambda e: str(e.created_at))
        ids = [_event_id(e) for e in items]
        start = ids.index(after) + 1 if after in ids else 0
        fresh = list(zip(ids[start:], items[start:], strict=True))
        metrics = self._metrics(job) if any(e.step is not None for _, e in fresh) else {}
        for event_id, item in fresh:
            step = item.step
            data = {
                k: v
                for k, v in item.model_dump(mode="json", exclude={"message", "object"}).items()
                if v is not None
            }
            yield JobEvent(
                id=event_id,
                created_at=as_datetime(item.created_at),
                level=event_level(item.level),
                message=redact(item.message),
                step=step,
                loss=_loss(metrics.get(step)) if step is not None else None,
                data=data,
            )

    def checkpoints(self, job: JobRef) -> list[Checkpoint]:
        """Intermediate checkpoints as ``JOB:STEP`` (usable as ``from_checkpoint``), the final
        one as the tuned model, each with the metrics logged at its step."""
        page = self._call(lambda: self.client.fine_tuning.list_checkpoints(job.remote_id))
        if not page.data:
            return []
        metrics = self._metrics(job)
        final_model: str | None = None
        found = []
        for c in page.data:
            intermediate = "intermediate" in c.checkpoint_type.lower()
            if not intermediate and final_model is None:
                final_model = self.status(job).tuned_model or ""
            found.append(
                Checkpoint(
                    id=f"{job.remote_id}:{c.step}" if intermediate else job.remote_id,
                    step=c.step,
                    model=None if intermediate else (final_model or None),
                    metrics={
                        k: v for k, v in metrics.get(c.step, {}).items() if k != "global_step"
                    },
                )
            )
        return sorted(found, key=lambda c: (c.step, c.model is not None))  # final last

    def cancel(self, job: JobRef) -> None:
        self._call(lambda: self.client.fine_tuning.cancel(job.remote_id))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        jobs = list(self._call(lambda: self.client.fine_tuning.list()).data)
        jobs.sort(key=lambda j: str(j.created_at), reverse=True)
        return [self._status(j) for j in jobs[:limit]]

    def cleanup(self, job: JobRef, progress: Progress | None = None) -> list[str]:
        """Delete the job's uploaded files; one line per file deleted. The tuned model costs
        nothing while no endpoint serves it; tuneport starts no Together endpoints (stop any
        you started yourself)."""
        shown = (progress or NullProgress()).note
        removed: list[str] = []
        remote = self._call(lambda: self.client.fine_tuning.retrieve(job.remote_id))
        if not STATES.get(str(remote.status), JobState.RUNNING).terminal:
            raise ConfigError(
                f"job {job.remote_id} is still {remote.status}: its files are in use",
                hint="cancel it first (`tuneport jobs cancel ID`) or wait until it ends",
            )
        for file_id in (remote.training_file, remote.validation_file):
            if not file_id:
                continue
            with contextlib.suppress(NotFoundError):  # already gone is fine
                self._delete_file(file_id)
                removed.append(f"uploaded file {file_id}")
                shown(f"deleted file {file_id}")
            self._uploads().upload_forget(self.store_key, file_id)
        return removed
