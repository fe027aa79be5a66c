"""The train pipeline, provider-agnostic: read → validate → estimate → budget/confirm → prepare
→ upload → create the job → record it in the store. Watching is :mod:`tuneport.jobs.watch`.

**One intended run is one paid job.** A launch is identified by what it launches (its
:func:`launch_key`: provider, model, method, the SHA-256 of the training and validation data as
uploaded (converted to the provider's format), hyperparameters, suffix and provider options
without secrets), and its run id is derived from that key. Running the same ``train`` again
after a crash, a kill or Ctrl-C therefore finds the record the first attempt left in the store
(or, with no store, the job the provider holds under that run id) and completes it instead of
creating a second job; ``new_run=True`` (``--new-run``) starts a deliberate second run with a
fresh run id.

The job is written to the store *before* the provider is asked to create it, and an advisory
lock per run id keeps two processes from creating the same run at once. A record left
``creating`` (no remote id) is reconciled with the provider (:func:`reconcile`) by every command
that reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from tuneport.data.records import read_records
from tuneport.errors import (
    EXIT_PROBLEMS,
    ConfigError,
    InputError,
    NotFoundError,
    ProviderError,
    TuneportError,
)
from tuneport.files import require_file, sha256_file, try_lock
from tuneport.jobs.quote import Quote, quote_for
from tuneport.jobs.quote import estimate as estimate_run
from tuneport.pricing.table import PriceTable
from tuneport.progress import NullProgress, Progress
from tuneport.providers import registry
from tuneport.providers.base import FindsRuns, PreparedData, Provider, UploadedData
from tuneport.schemas import AnyRecord, Estimate, JobConfig, JobRecord, JobState, Report
from tuneport.validation.validate import validate_rows

if TYPE_CHECKING:
    from tuneport.jobs.store import JobStore

Confirm = Callable[[Estimate], bool]
# problems that concern the training set as a whole, not a validation file
TRAINING_ONLY_KINDS = frozenset({"too_few_examples"})
CREATING = "creating"  # raw state of a record whose job the provider may not have created yet
NOT_CREATED = "not created"
# JobConfig fields that do not change what is launched (so not part of the launch key)
NOT_LAUNCHED = frozenset({"data", "validation", "max_cost", "options"})


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
    """What :func:`launch` did. ``resumed``: the run had been launched before (same launch
    key) and was completed or found, not launched again; then ``estimate``, ``prepared`` and
    ``uploaded`` are ``None`` when nothing had to be created."""

    record: JobRecord
    estimate: Estimate | None
    prepared: PreparedData | None
    uploaded: UploadedData | None
    provider: Provider
    resumed: bool = False


def content_sha256(path: Path) -> str:
    """SHA-256 of a data file, or of a dataset folder's files (names and bytes, sorted)."""
    require_file(path)
    if not path.is_dir():
        return sha256_file(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\0{sha256_file(item)}\n".encode())
    return digest.hexdigest()


def uploaded_sha256(records: Iterable[AnyRecord], cfg: JobConfig) -> str:
    """SHA-256 of ``records`` as the provider's file holds them: converted to the backend's
    target format, one JSON line each. A BOM, CRLF line ends, key order or spacing in the input
    change nothing here, as they change nothing in what is uploaded."""
    import orjson

    from tuneport.data.exporters import export_rows

    target = registry.backend(cfg.provider).target
    rows, _dropped, _kinds = export_rows(records, target, cfg.method)
    digest = hashlib.sha256()
    for row in rows:
        digest.update(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n")
    return digest.hexdigest()


def _records(path: Path) -> list[AnyRecord]:
    return [r.record for r in read_records(path) if r.record is not None]


def launch_key(
    cfg: JobConfig,
    *,
    data_sha256: str | None = None,
    validation_sha256: str | None = None,
) -> str:
    """What a launch launches, as one hex digest: provider, model, method, the SHA-256 of the
    training (and validation) data as uploaded (:func:`uploaded_sha256`; computed from the
    files when not given), the hyperparameters, suffix and seed, and the provider options
    without secrets. Flags that change nothing at the provider (``max_cost``) and the data's
    file names and byte layout are left out: the same uploaded data is the same run."""
    if data_sha256 is None:
        data_sha256 = uploaded_sha256(_records(cfg.data), cfg)
    if validation_sha256 is None and cfg.validation is not None:
        validation_sha256 = uploaded_sha256(_records(cfg.validation), cfg)
    return _key(cfg, {"upload_sha256": data_sha256, "validation_upload_sha256": validation_sha256})


def legacy_launch_key(cfg: JobConfig) -> str:
    """The launch key of tuneport before it followed the uploaded data (the SHA-256 of the raw
    input files): a run recorded under it is still found, so an upgrade between a crash and the
    re-run does not launch a second job."""
    return _key(
        cfg,
        {
            "data_sha256": content_sha256(cfg.data),
            "validation_sha256": content_sha256(cfg.validation) if cfg.validation else None,
        },
    )


def _key(cfg: JobConfig, data: dict[str, str | None]) -> str:
    from tuneport.jobs.store import redact_config

    settings = cfg.model_dump(mode="json", exclude=set(NOT_LAUNCHED))
    payload = {**settings, **data, "options": redact_config(cfg.options)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _lock_path(run_id: str) -> Path:
    from tuneport.paths import home

    return home() / "locks" / f"{run_id}.lock"


@contextlib.contextmanager
def _run_lock(run_id: str, record: JobRecord | None) -> Iterator[None]:
    """Hold the run's lock, or refuse: another process is launching this very run now."""
    with try_lock(_lock_path(run_id), remove=True) as mine:
        if not mine:
            which = f" (job {record.id})" if record is not None else ""
            raise ConfigError(
                f"another tuneport process is launching this same run{which} right now",
                hint="let it finish (then `tuneport jobs watch ID`), or pass --new-run to start "
                "a second, separately paid run",
            )
        yield


def find_remote(provider: Provider, run_id: str) -> str | None:
    """The remote id of the job the provider holds for ``run_id`` (``None``: none, or the
    backend cannot look runs up)."""
    if isinstance(provider, FindsRuns):
        return provider.find_run(run_id)
    return None


def reconcile(store: JobStore, record: JobRecord, provider: Provider | None = None) -> JobRecord:
    """A record still ``creating`` (no remote id) checked against the provider first.

    A crashed or killed launch may have created the job although the store never heard back:
    look it up by the record's run id and store its remote id. When the provider has none and no
    process is launching it, the record says so (run the same ``train`` again to launch it).
    Records with a remote id, or being launched by another process right now, are returned as
    they are.
    """
    if record.remote_id is not None or record.raw_state != CREATING:
        return record
    from tuneport.jobs.resolve import provider_for_record

    with try_lock(_lock_path(record.run_id), remove=True) as mine:
        if not mine:
            return record
        backend = provider or provider_for_record(record, store)
        if not isinstance(backend, FindsRuns):
            return record
        remote_id = backend.find_run(record.run_id)
        if remote_id is not None:
            return store.update(record.id, remote_id=remote_id, raw_state="created", error=None)
        return store.update(
            record.id,
            raw_state=NOT_CREATED,
            error="the launch stopped before the provider created the job; run the same "
            "`tuneport train` again to launch it",
        )


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
    new_run: bool = False,
) -> Launched:
    """Run the pipeline for ``cfg`` and return the stored job (not yet watched).

    ``confirm(estimate)`` is asked after the budget guard passed; returning false raises
    :class:`NotConfirmedError` before anything is uploaded. ``max_cost`` (the flag) overrides
    ``cfg.max_cost`` and ``$TUNEPORT_MAX_COST``. The same ``cfg`` launched before (same
    :func:`launch_key`) is continued, not launched again, unless ``new_run``.
    """
    from tuneport.jobs.store import new_job_id, now, open_store, run_id_for
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
    notice = descriptor.notice_text(cfg.options)
    if notice:
        shown.note(notice)
    backend.preflight(cfg)
    quote = quote_for(cfg.provider, cfg.model, cfg.method, prices=prices, settings=cfg.options)

    shown.start("read and validate data")
    records, report = read_dataset(cfg.data, cfg, quote)
    reports = [report]
    validation_records: list[AnyRecord] = []
    if cfg.validation is not None:
        validation_records, report = read_dataset(cfg.validation, cfg, quote)
        kept = [p for p in report.problems if p.kind not in TRAINING_ONLY_KINDS]
        reports.append(report.model_copy(update={"problems": kept}))
    legacy = legacy_launch_key(cfg)
    try:  # the run's identity: the data as uploaded (what the provider is paid to train on)
        key = launch_key(
            cfg,
            data_sha256=uploaded_sha256(records, cfg),
            validation_sha256=uploaded_sha256(validation_records, cfg)
            if cfg.validation is not None
            else None,
        )
    except TuneportError:  # data that cannot be converted: refused below, before any upload
        key = legacy

    def find_earlier() -> JobRecord | None:
        return jobs.find_launch(key) or (jobs.find_launch(legacy) if legacy != key else None)

    earlier = None if new_run else find_earlier()
    run_id = earlier.run_id if earlier is not None else run_id_for(key, fresh=new_run)
    with _run_lock(run_id, earlier):
        if not new_run:  # as it is now that this process holds the run
            earlier = find_earlier()
            if earlier is not None and earlier.run_id != run_id:
                raise ConfigError(
                    f"another tuneport process started this run as {earlier.id} meanwhile",
                    hint="run the command again to continue it",
                )
        if earlier is not None:
            if earlier.remote_id is None:  # a crashed launch: did the provider create it?
                remote_id = find_remote(backend, run_id)
                if remote_id is not None:
                    earlier = jobs.update(
                        earlier.id, remote_id=remote_id, raw_state="created", error=None
                    )
            if earlier.remote_id is not None:
                shown.finish()
                shown.note(
                    f"this run was launched before as {earlier.id} "
                    f"({earlier.state.value}); continuing it, not launching again "
                    "(--new-run starts a second, separately paid run)"
                )
                return Launched(earlier, None, None, None, backend, resumed=True)
            shown.note(
                f"completing the unfinished launch {earlier.id} (same data and settings; "
                "the provider has no job for it yet)"
            )
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

        job_id = earlier.id if earlier is not None else _job_id_for(jobs, run_id, new_job_id)
        prepared = backend.prepare(records, cfg, home() / "runs" / job_id, shown)
        uploaded = backend.upload(prepared, cfg, shown)
        files = {"training": uploaded.training}
        if uploaded.validation is not None:
            files["validation"] = uploaded.validation
        stamp = now()
        fields = {
            "dataset_sha256": prepared.sha256,
            "config": cfg.model_dump(mode="json"),
            "remote_files": files,
            "state": JobState.QUEUED,
            "raw_state": CREATING,
            "error": None,
            "estimate_tokens": estimate.billed_tokens,
            "estimate_cost_usd": estimate.cost_usd,
        }
        if earlier is not None:
            record = jobs.update(job_id, **fields)
        else:
            record = jobs.add(
                JobRecord(
                    id=job_id,
                    run_id=run_id,
                    provider=cfg.provider,
                    model=cfg.model,
                    method=cfg.method,
                    parent_id=parent_id,
                    launch_key=key,
                    created_at=stamp,
                    updated_at=stamp,
                    **fields,
                )
            )
        record = _create(jobs, record, backend, uploaded, cfg, shown)
    return Launched(record, estimate, prepared, uploaded, backend, resumed=earlier is not None)


def _job_id_for(jobs: JobStore, run_id: str, fresh: Callable[[], str]) -> str:
    """The local id of a new record for ``run_id``: derived from it, so a launch killed before
    its record was written (during the upload) is re-run under the same id and reuses the same
    ``runs/<id>`` folder instead of leaving it behind; ``fresh()`` if that id is taken."""
    derived = f"tp-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
    try:
        jobs.get(derived)
    except NotFoundError:
        return derived
    return fresh()


def _create(
    jobs: JobStore,
    record: JobRecord,
    backend: Provider,
    uploaded: UploadedData,
    cfg: JobConfig,
    shown: Progress,
) -> JobRecord:
    """Ask the provider to create the job (idempotent on the run id) and store the answer.

    A refusal marks the record ``not created``; an error whose outcome is unknown (a lost or
    unreadable reply the backend could not settle) leaves it ``creating``, so the next command
    that reads it (or the same ``train`` again) looks the job up before creating anything.
    """
    shown.start(f"create the {cfg.provider} job")
    try:
        ref = backend.launch(uploaded, cfg, record.run_id)
    except TuneportError as exc:
        if exc.outcome_unknown:
            jobs.update(record.id, error=exc.message)
            raise ProviderError(
                f"{exc.message}; whether {cfg.provider} created job {record.id} is not known yet",
                hint="run the same command again (or `tuneport jobs watch "
                f"{record.id}`): it looks the job up by its run id before creating anything",
            ) from None
        jobs.update(record.id, state=JobState.FAILED, raw_state=NOT_CREATED, error=exc.message)
        raise
    finally:
        shown.finish()
    return jobs.update(record.id, remote_id=ref.remote_id, raw_state="created", error=None)


def finish_launch(store: JobStore, record: JobRecord, provider: Provider) -> JobRecord:
    """Complete a launch that stopped after upload (state ``creating``, no remote id).

    Safe because :meth:`Provider.launch` is idempotent on the stored run id (it returns the job
    the stopped attempt created, or creates it exactly once) and the run's lock keeps another
    process from creating it at the same time.
    """
    files = record.remote_files
    if record.remote_id is not None or "training" not in files:
        return record
    with _run_lock(record.run_id, record):
        record = store.get(record.id)
        if record.remote_id is not None:
            return record
        try:
            cfg = JobConfig.model_validate(record.config)
        except ValidationError as exc:  # a record written before a setting was checked
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"job {record.id} was stored with a setting tuneport no longer accepts "
                f"({where}: {first['msg']}); it was never created",
                hint="launch it again with `tuneport train` and valid settings",
            ) from None
        uploaded = UploadedData(training=files["training"], validation=files.get("validation"))
        return _create(store, record, provider, uploaded, cfg, NullProgress())
