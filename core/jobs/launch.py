"""The train pipeline, provider-agnostic: read → validate → estimate → budget/confirm → prepare
→ upload → create the job → record it in the store. Watching is :mod:`tuneport.jobs.watch`.

The job is written to the store *before* the provider is asked to create it (with its run id),
so a crash between "created remotely" and "recorded locally" is recoverable: launching again
with the same run id finds the remote job instead of creating a second one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tuneport.data.records import read_records
from tuneport.errors import EXIT_PROBLEMS, InputError, NotFoundError, TuneportError
from tuneport.jobs.quote import Quote, quote_for
from tuneport.jobs.quote import estimate as estimate_run
from tuneport.pricing.table import PriceTable
from tuneport.progress import NullProgress, Progress
from tuneport.providers import registry
from tuneport.providers.base import Preflight, PreparedData, Provider, UploadedData
from tuneport.schemas import AnyRecord, Estimate, JobConfig, JobRecord, JobState, Report
from tuneport.validation.validate import validate_rows

if TYPE_CHECKING:
    from tuneport.jobs.store import JobStore

Confirm = Callable[[Estimate], bool]
# problems that concern the training set as a whole, not a validation file
TRAINING_ONLY_KINDS = frozenset({"too_few_examples"})


class DataInvalidError(InputError):
    """The data has validation errors; ``reports`` holds every problem (exit code 1)."""

    exit_code = EXIT_PROBLEMS

    def __init__(self, reports: Sequence[Report]) -> None:
        errors = [p for r in reports for p in r.errors]
        first = errors[0] if errors else None
        where = f" (first: {first.where}: {first.message})" if first else ""
        super().__init__(
            f"{len(errors)} validation error(s) for {reports[0].provider}{where}",
            hint="fix them (see `tuneport validate`) and run again; nothing was uploaded",
        )
        self.reports = list(reports)


class NotConfirmedError(TuneportError):
    """The user declined the launch at the prompt."""

    exit_code = EXIT_PROBLEMS


@dataclass
class Launched:
    """What :func:`launch` did."""

    record: JobRecord
    estimate: Estimate
    prepared: PreparedData
    uploaded: UploadedData
    provider: Provider


def read_dataset(path: Path, cfg: JobConfig, quote: Quote) -> tuple[list[AnyRecord], Report]:
    """All records of ``path`` and their validation report for ``cfg``'s provider and model.

    The file is read once; per-example limits are checked with the counter the run is priced
    with (the quote's).
    """
    rows = list(read_records(path))
    report = validate_rows(
        rows, file=str(path), rules=quote.rules, model=cfg.model, counter=quote.counter
    )
    return [r.record for r in rows if r.record is not None], report


def launch(
    cfg: JobConfig,
    *,
    store: JobStore | None = None,
    provider: Provider | None = None,
    confirm: Confirm | None = None,
    progress: Progress | None = None,
    max_cost: float | None = None,
    parent_id: str | None = None,
    on_estimate: Callable[[Estimate], None] | None = None,
    prices: PriceTable | None = None,
) -> Launched:
    """Run the pipeline for ``cfg`` and return the stored job (not yet watched).

    ``confirm(estimate)`` is asked after the budget guard passed; returning false raises
    :class:`NotConfirmedError` before anything is uploaded. ``max_cost`` (the flag) overrides
    ``cfg.max_cost`` and ``$TUNEPORT_MAX_COST``.
    """
    from tuneport.jobs.store import new_job_id, new_run_id, now, open_store
    from tuneport.paths import home
    from tuneport.pricing.budget import check_budget, resolve_budget

    shown = progress or NullProgress()
    jobs = store if store is not None else open_store()
    parent = cfg.options.get("parent")
    if parent_id is None and isinstance(parent, str):  # `--set parent=JOB_ID`: keep the lineage
        with contextlib.suppress(NotFoundError):
            parent_id = jobs.get(parent).id
    descriptor = registry.backend(cfg.provider)
    backend = provider or registry.get(cfg.provider, cfg.options, store=jobs)
    if descriptor.notice:
        shown.note(descriptor.notice)
    if isinstance(backend, Preflight):
        backend.preflight(cfg)
    quote = quote_for(cfg.provider, cfg.model, cfg.method, prices=prices)

    shown.start("read and validate data")
    records, report = read_dataset(cfg.data, cfg, quote)
    reports = [report]
    if cfg.validation is not None:
        report = read_dataset(cfg.validation, cfg, quote)[1]
        kept = [p for p in report.problems if p.kind not in TRAINING_ONLY_KINDS]
        reports.append(report.model_copy(update={"problems": kept}))
    shown.finish()
    if not all(r.ok for r in reports):
        raise DataInvalidError(reports)
    if not records:
        raise InputError(f"{cfg.data}: no training examples", hint="check the data file")
    if cfg.method == "dpo" and any(r.kind != "preference" for r in records):
        raise InputError(
            f"{cfg.data}: --method dpo needs preference pairs, the file holds chat examples",
            hint="use --method sft, or a preference dataset",
        )

    estimate = estimate_run(cfg, quote=quote)
    if on_estimate is not None:
        on_estimate(estimate)
    budget = resolve_budget(max_cost, cfg)
    if budget is not None:
        check_budget(estimate, budget.limit, source=budget.source)
    if confirm is not None and not confirm(estimate):
        raise NotConfirmedError("not launched: declined at the prompt; nothing was uploaded")

    job_id = new_job_id()
    run_id = new_run_id()
    prepared = backend.prepare(records, cfg, home() / "runs" / job_id, shown)
    uploaded = backend.upload(prepared, cfg, shown)
    files = {"training": uploaded.training}
    if uploaded.validation is not None:
        files["validation"] = uploaded.validation
    stamp = now()
    record = jobs.add(
        JobRecord(
            id=job_id,
            run_id=run_id,
            provider=cfg.provider,
            model=cfg.model,
            method=cfg.method,
            dataset_sha256=prepared.sha256,
            config=cfg.model_dump(mode="json"),
            remote_files=files,
            state=JobState.QUEUED,
            raw_state="creating",
            estimate_tokens=estimate.billed_tokens,
            estimate_cost_usd=estimate.cost_usd,
            parent_id=parent_id,
            created_at=stamp,
            updated_at=stamp,
        )
    )
    shown.start(f"create the {cfg.provider} job")
    try:
        ref = backend.launch(uploaded, cfg, run_id)
    except TuneportError as exc:
        jobs.update(job_id, state=JobState.FAILED, raw_state="not created", error=exc.message)
        raise
    finally:
        shown.finish()
    record = jobs.update(job_id, remote_id=ref.remote_id, raw_state="created")
    return Launched(record, estimate, prepared, uploaded, backend)


def finish_launch(store: JobStore, record: JobRecord, provider: Provider) -> JobRecord:
    """Complete a launch that crashed after upload (state ``creating``, no remote id).

    Safe because :meth:`Provider.launch` is idempotent on the stored run id: it returns the job
    the crashed attempt created, or creates it exactly once.
    """
    files = record.remote_files
    if record.remote_id is not None or "training" not in files:
        return record
    cfg = JobConfig.model_validate(record.config)
    uploaded = UploadedData(training=files["training"], validation=files.get("validation"))
    ref = provider.launch(uploaded, cfg, record.run_id)
    return store.update(record.id, remote_id=ref.remote_id, raw_state="created")
