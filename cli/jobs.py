"""`tuneport jobs list|show|watch|cancel|cleanup|resume` — generic over providers."""

import contextlib
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from tuneport.cli._console import print_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
JobId = Annotated[str, typer.Argument(help="Local job id (tp-...), a unique prefix or remote id.")]
SetFlag = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Backend setting key=value over the job's own (repeatable), e.g. project=P.",
        show_default=False,
    ),
]

jobs_app = typer.Typer(help="List, inspect, watch, cancel and clean up jobs.", no_args_is_help=True)


def _dump(value: Any) -> None:
    print_json(value)


def _settings(sets: list[str] | None) -> dict[str, Any]:
    from tuneport.jobs.jobfile import parse_set

    return parse_set(sets or [])


def _created(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@jobs_app.command("list")
def list_jobs(
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="Only this provider's jobs.")
    ] = None,
    remote: Annotated[
        bool, typer.Option("--remote", help="Ask the provider (needs --provider) instead.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    sets: SetFlag = None,
    as_json: JsonFlag = False,
) -> None:
    """Jobs in the local store, newest first (or the provider's own list with --remote)."""
    from rich.table import Table

    from tuneport.cli._console import out
    from tuneport.cli._render import fit_table
    from tuneport.errors import ConfigError
    from tuneport.jobs.store import open_store
    from tuneport.providers import registry

    if remote:
        if provider is None:
            raise ConfigError("--remote needs --provider", hint="e.g. --remote --provider openai")
        from tuneport.jobs.inventory import stop_dates

        backend = registry.get(provider, _settings(sets))
        statuses = backend.list_jobs(limit=limit)
        stops = stop_dates(provider, backend, statuses)
        if as_json:
            _dump(
                [
                    s.model_dump(mode="json", exclude={"raw"})
                    | {
                        "stops": stops[s.remote_id].day if s.remote_id in stops else None,
                        "stops_source": stops[s.remote_id].source if s.remote_id in stops else None,
                    }
                    for s in statuses
                ]
            )
            return
        cells: dict[str, Callable[[Any], str]] = {
            "remote id": lambda s: s.remote_id,
            "state": lambda s: s.state.value,
            "model": lambda s: s.model or "",
            "tuned model": lambda s: s.tuned_model or "",
            "created": lambda s: _created(s.created_at),
            "stops": lambda s: stops[s.remote_id].day if s.remote_id in stops else "",
        }

        def remote_table(columns: Sequence[str]) -> Table:
            table = Table()
            for name in columns:  # ids are never cut or broken (fit_table stacks rows)
                table.add_column(name, no_wrap=True)
            for s in statuses:
                table.add_row(*(cells[name](s) for name in columns))
            return table

        out.print(fit_table(out, remote_table, list(cells), ["created", "model"]))
        for source in sorted({stops[s.remote_id].source for s in statuses if s.remote_id in stops}):
            out.print(f"stop dates: {source}", markup=False)
        return
    from tuneport.errors import TuneportError
    from tuneport.jobs.launch import reconcile

    store = open_store()
    records = store.list_jobs(limit, provider=provider)
    for i, r in enumerate(records):  # launches that stopped before the provider answered
        if r.remote_id is None and r.raw_state == "creating":
            with contextlib.suppress(TuneportError):  # cannot ask now: show what is stored
                records[i] = reconcile(store, r)
    from tuneport.jobs.cleanup import cleaned_on

    cleaned = {r.id: cleaned_on(store, r.id) for r in records}
    if as_json:
        _dump([r.model_dump(mode="json") | {"cleaned_up": cleaned[r.id]} for r in records])
        return
    if not records:
        out.print("no jobs yet; start one with `tuneport train`")
        return
    local_cells: dict[str, Callable[[Any], str]] = {
        "id": lambda r: r.id,
        "provider": lambda r: r.provider,
        "model": lambda r: r.model,
        "state": lambda r: r.state.value + (" (cleaned up)" if cleaned[r.id] else ""),
        "tuned model": lambda r: r.tuned_model or "",
        "created": lambda r: _created(r.created_at),
    }

    def local_table(columns: Sequence[str]) -> Table:
        table = Table()
        for name in columns:  # ids are never cut or broken (fit_table stacks rows)
            table.add_column(name, no_wrap=True)
        for r in records:
            table.add_row(*(local_cells[name](r) for name in columns))
        return table

    out.print(fit_table(out, local_table, list(local_cells), ["created"]))


@jobs_app.command("show")
def show(
    job_id: JobId,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Poll the provider first even when the job has ended (running jobs are "
            "always polled), and list its checkpoints.",
        ),
    ] = False,
    events: Annotated[int, typer.Option("--events", help="How many recent events.")] = 10,
    sets: SetFlag = None,
    as_json: JsonFlag = False,
) -> None:
    """One job: state and phase, progress, tokens and cost, tuned model, recent events."""
    from tuneport.cli._console import err, out
    from tuneport.cli._render import (
        compute_line,
        money,
        progress_text,
        state_text,
        unknown_cost_text,
    )
    from tuneport.errors import TuneportError
    from tuneport.jobs.cost import job_cost
    from tuneport.jobs.launch import reconcile
    from tuneport.jobs.resolve import provider_for_record, ref_of
    from tuneport.jobs.store import open_store
    from tuneport.jobs.tracking import ProgressTracker
    from tuneport.jobs.watch import poll_once
    from tuneport.providers.base import HasCheckpoints
    from tuneport.schemas import JobStatus

    store = open_store()
    record = store.get(job_id)
    checkpoints: list[Any] = []
    if record.remote_id is None and record.raw_state == "creating":
        record = reconcile(
            store, record, provider_for_record(record, store, settings=_settings(sets))
        )
    status: JobStatus | None = None
    cost = job_cost(record)
    # a running job is polled so its real phase shows (the store holds the last watch's view);
    # a job on own hardware is asked how long it ran (a local read)
    poll = record.remote_id is not None and (
        refresh or not record.state.terminal or cost.own_hardware
    )
    if poll:
        backend = provider_for_record(record, store, settings=_settings(sets))
        try:
            update = poll_once(store, record, backend)
            record, status = update.record, update.status
            if refresh and isinstance(backend, HasCheckpoints):
                checkpoints = backend.checkpoints(ref_of(record))
        except TuneportError as exc:
            if refresh:
                raise
            err.print(f"warning: could not ask {record.provider}: {exc.one_line()}", markup=False)
        cost = job_cost(record)
    recent = store.events(record.id, limit=events)
    progress = ProgressTracker().observe(status, recent) if status is not None else None
    if as_json:
        _dump(
            {
                **record.model_dump(mode="json"),
                **cost.as_dict(),
                "phase": status.phase if status is not None else None,
                "progress": (
                    {
                        "step": progress.step,
                        "total_steps": progress.total_steps,
                        "loss": progress.loss,
                        "loss_step": progress.loss_step,
                        "fraction": progress.fraction,
                    }
                    if progress is not None
                    else None
                ),
                "compute_seconds": status.compute_seconds if status is not None else None,
                "events": [e.model_dump(mode="json") for e in recent],
                "checkpoints": [c.model_dump(mode="json") for c in checkpoints],
            }
        )
        return
    estimate = ""
    if record.estimate_tokens is not None:
        trained = "trained" if cost.own_hardware else "billed"
        estimate = f"{record.estimate_tokens:,} {trained} tokens"
        if record.estimate_cost_usd is not None:
            estimate += f", {money(record.estimate_cost_usd)}"
    actual = ""
    if record.billed_tokens is not None:
        actual = f"{record.billed_tokens:,} tokens"
        if cost.cost_usd is not None:
            actual += f", {money(cost.cost_usd)} at ${cost.price_per_million_usd:g}/1M"
    unknown = ""
    if cost.cost_usd is None and cost.cost_unknown:
        unknown = unknown_cost_text(record.billed_tokens, cost.cost_unknown)
    rows = [
        ("id", record.id),
        ("provider", f"{record.provider} {record.remote_id or '(not created)'}"),
        ("model", f"{record.model} ({record.method})"),
        ("state", state_text(record, status)),
        ("progress", progress_text(progress) if progress and not record.state.terminal else ""),
        ("error", record.error or ""),
        ("tuned model", record.tuned_model or ""),
        ("estimate", estimate),
        ("billed", actual),
        ("cost", compute_line(status) if cost.own_hardware else unknown),
        ("dataset sha256", record.dataset_sha256),
        ("files", ", ".join(f"{k}={v}" for k, v in record.remote_files.items())),
        ("parent", record.parent_id or ""),
        ("created", record.created_at.isoformat(timespec="seconds")),
        ("updated", record.updated_at.isoformat(timespec="seconds")),
    ]
    for key, value in rows:
        if value:
            out.print(f"{key:>15}: {value}", markup=False)
    for c in checkpoints:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in c.metrics.items())
        out.print(f"{'checkpoint':>15}: step {c.step} {c.model or c.id} {metrics}", markup=False)
    for e in recent:
        out.print(f"{'event':>15}: [{e.level}] {e.message}", markup=False)


@jobs_app.command("watch")
def watch(job_id: JobId, sets: SetFlag = None, as_json: JsonFlag = False) -> int:
    """Follow a job until it ends (resumes after Ctrl-C or a crash: state is in the store)."""
    from tuneport.cli.train import watch_and_report

    return watch_and_report(job_id, as_json=as_json, settings=_settings(sets))


@jobs_app.command("cancel")
def cancel(job_id: JobId, sets: SetFlag = None, as_json: JsonFlag = False) -> None:
    """Ask the provider to stop a running job."""
    from tuneport.cli._console import err, out
    from tuneport.cli._render import state_text
    from tuneport.jobs.launch import reconcile
    from tuneport.jobs.resolve import provider_for_record, ref_of
    from tuneport.jobs.store import open_store
    from tuneport.jobs.watch import poll_once
    from tuneport.providers.base import Pausable, Resumable

    store = open_store()
    record = store.get(job_id)
    backend = provider_for_record(record, store, settings=_settings(sets))
    record = reconcile(store, record, backend)
    if not record.state.terminal:
        backend.cancel(ref_of(record))
    update = poll_once(store, record, backend)
    record = update.record
    if as_json:
        _dump(record.model_dump(mode="json"))
        return
    out.print(f"{record.id}: {state_text(record, update.status)}", markup=False)
    if not record.state.terminal:
        err.print(
            f"the provider is stopping it; check with `tuneport jobs show {record.id}`",
            markup=False,
        )
    if isinstance(backend, Resumable) and not isinstance(backend, Pausable):  # resumes pauses
        err.print(
            f"continue it later from its last checkpoint: `tuneport jobs resume {record.id}`",
            markup=False,
        )


@jobs_app.command("pause")
def pause(job_id: JobId, sets: SetFlag = None, as_json: JsonFlag = False) -> None:
    """Pause a running job, keeping its progress (backends that support it; `tuneport jobs
    resume` continues it)."""
    from tuneport.cli._console import err, out
    from tuneport.cli._render import state_text
    from tuneport.errors import ConfigError
    from tuneport.jobs.resolve import provider_for_record, ref_of
    from tuneport.jobs.store import open_store
    from tuneport.jobs.watch import poll_once
    from tuneport.providers.base import Pausable

    store = open_store()
    record = store.get(job_id)
    backend = provider_for_record(record, store, settings=_settings(sets))
    if not isinstance(backend, Pausable):
        raise ConfigError(
            f"the {record.provider} backend cannot pause jobs",
            hint=f"cancel it with `tuneport jobs cancel {record.id}`",
        )
    if record.state.terminal:
        raise ConfigError(
            f"job {record.id} has ended ({record.state.value})", hint="nothing to pause"
        )
    backend.pause(ref_of(record))
    update = poll_once(store, record, backend)
    if as_json:
        _dump(update.record.model_dump(mode="json"))
        return
    out.print(f"{record.id}: {state_text(update.record, update.status)}", markup=False)
    err.print(f"continue it with `tuneport jobs resume {record.id}`", markup=False)


@jobs_app.command("cleanup")
def cleanup(
    job_id: JobId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    sets: SetFlag = None,
    as_json: JsonFlag = False,
) -> int:
    """Delete what keeps costing money or space (endpoints, uploaded files, local outputs) and
    list what was deleted."""
    from tuneport.cli._console import err, out
    from tuneport.cli.train import confirm_or_refuse
    from tuneport.jobs.cleanup import cleanup_job, shared_uploads
    from tuneport.jobs.launch import reconcile
    from tuneport.jobs.resolve import provider_for_record
    from tuneport.jobs.store import open_store

    store = open_store()
    record = store.get(job_id)
    backend = provider_for_record(record, store, settings=_settings(sets))
    record = reconcile(store, record, backend)  # a crashed launch may have created the job
    shared = shared_uploads(store, record)
    for upload, others in shared.items():
        err.print(
            f"warning: {upload} is also the upload of {', '.join(others)}: deleting it means "
            "those jobs' data is gone from the provider and the next identical upload is new",
            markup=False,
        )
    question = f"Delete the {record.provider} resources of {record.id}?"
    if not confirm_or_refuse(question, yes=yes, what="delete resources"):
        out.print("nothing deleted")
        return 1
    removed = cleanup_job(record, backend, store)
    if as_json:
        _dump({"id": record.id, "cleaned": True, "removed": removed, "shared_with": shared})
        return 0
    for line in removed:
        out.print(f"deleted {line}", markup=False)
    out.print(
        f"{record.id}: cleaned up" + ("" if removed else " (nothing left to delete)"),
        markup=False,
    )
    return 0


@jobs_app.command("resume")
def resume(
    job_id: JobId,
    no_watch: Annotated[bool, typer.Option("--no-watch")] = False,
    sets: SetFlag = None,
    as_json: JsonFlag = False,
) -> int:
    """Continue a stopped job from its last checkpoint (backends that support it)."""
    from tuneport.cli._console import err, out
    from tuneport.cli.train import watch_and_report
    from tuneport.errors import ConfigError
    from tuneport.jobs.resolve import provider_for_record, ref_of
    from tuneport.jobs.store import new_job_id, new_run_id, now, open_store
    from tuneport.providers.base import Resumable
    from tuneport.schemas import JobRecord, JobState

    store = open_store()
    record = store.get(job_id)
    settings = _settings(sets)
    backend = provider_for_record(record, store, settings=settings)
    if not isinstance(backend, Resumable):
        raise ConfigError(
            f"the {record.provider} backend cannot resume jobs",
            hint=f"watch it with `tuneport jobs watch {record.id}` or launch a new one",
        )
    if record.state is JobState.SUCCEEDED:
        raise ConfigError(f"job {record.id} already succeeded", hint="nothing to resume")
    ref = backend.resume(ref_of(record))
    if ref.remote_id == record.remote_id:
        current = store.update(record.id, state=JobState.QUEUED, raw_state="resumed", error=None)
    else:
        stamp = now()
        current = store.add(
            JobRecord.model_validate(
                {
                    **record.model_dump(),
                    "id": new_job_id(),
                    "run_id": ref.run_id if ref.run_id != record.run_id else new_run_id(),
                    "remote_id": ref.remote_id,
                    "state": JobState.QUEUED,
                    "raw_state": "resumed",
                    "error": None,
                    "tuned_model": None,
                    "billed_tokens": None,
                    "parent_id": record.id,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        )
    err.print(f"resumed {record.id} as {current.id}", markup=False)
    if no_watch:
        if as_json:
            _dump(current.model_dump(mode="json"))
        else:
            out.print(current.id, markup=False)
        err.print(f"watch it with `tuneport jobs watch {current.id}`", markup=False)
        return 0
    return watch_and_report(current.id, as_json=as_json, settings=settings)


def register(app: typer.Typer) -> None:
    """Add the ``jobs`` group to ``app``."""
    app.add_typer(jobs_app, name="jobs")
