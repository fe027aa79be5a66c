"""`tuneport jobs list|show|watch|cancel|cleanup|resume` — generic over providers."""

import contextlib
from typing import Annotated, Any

import typer

from tuneport.cli._console import print_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
JobId = Annotated[str, typer.Argument(help="Local job id (tp-...), a unique prefix or remote id.")]

jobs_app = typer.Typer(help="List, inspect, watch, cancel and clean up jobs.", no_args_is_help=True)


def _dump(value: Any) -> None:

    print_json(value)


@jobs_app.command("list")
def list_jobs(
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only this provider's jobs.")
    ] = None,
    remote: Annotated[
        bool, typer.Option("--remote", help="Ask the provider (needs --provider) instead.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Jobs in the local store, newest first (or the provider's own list with --remote)."""
    from rich.table import Table

    from tuneport.cli._console import out
    from tuneport.errors import ConfigError
    from tuneport.jobs.store import open_store
    from tuneport.providers import registry

    if remote:
        if provider is None:
            raise ConfigError("--remote needs --provider", hint="e.g. --remote --provider openai")
        statuses = registry.get(provider).list_jobs(limit=limit)
        if as_json:
            _dump([s.model_dump(mode="json", exclude={"raw"}) for s in statuses])
            return
        table = Table("remote id", "state", "model", "tuned model", "created")
        for s in statuses:
            created = s.created_at.strftime("%Y-%m-%d %H:%M") if s.created_at else ""
            table.add_row(s.remote_id, s.raw_state, s.model or "", s.tuned_model or "", created)
        out.print(table)
        return
    from tuneport.errors import TuneportError
    from tuneport.jobs.launch import reconcile

    store = open_store()
    records = store.list_jobs(limit, provider=provider)
    for i, r in enumerate(records):  # launches that stopped before the provider answered
        if r.remote_id is None and r.raw_state == "creating":
            with contextlib.suppress(TuneportError):  # cannot ask now: show what is stored
                records[i] = reconcile(store, r)
    if as_json:
        _dump([r.model_dump(mode="json") for r in records])
        return
    if not records:
        out.print("no jobs yet; start one with `tuneport train`")
        return
    table = Table("id", "provider", "model", "state", "tuned model", "created")
    for r in records:
        table.add_row(
            r.id,
            r.provider,
            r.model,
            r.state.value,
            r.tuned_model or "",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


@jobs_app.command("show")
def show(
    job_id: JobId,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Poll the provider once first.")
    ] = False,
    events: Annotated[int, typer.Option("--events", help="How many recent events.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """One job: config, state, tokens, tuned model, recent events (and checkpoints)."""
    from tuneport.cli._console import out
    from tuneport.jobs.launch import reconcile
    from tuneport.jobs.resolve import provider_for_record, ref_of
    from tuneport.jobs.store import open_store
    from tuneport.jobs.watch import poll_once
    from tuneport.providers.base import HasCheckpoints

    store = open_store()
    record = store.get(job_id)
    checkpoints: list[Any] = []
    if refresh:
        backend = provider_for_record(record)
        record = reconcile(store, record, backend)
        record = poll_once(store, record, backend).record
        if isinstance(backend, HasCheckpoints):
            checkpoints = backend.checkpoints(ref_of(record))
    recent = store.events(record.id, limit=events)
    if as_json:
        _dump(
            {
                **record.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in recent],
                "checkpoints": [c.model_dump(mode="json") for c in checkpoints],
            }
        )
        return
    rows = [
        ("id", record.id),
        ("provider", f"{record.provider} {record.remote_id or '(not created)'}"),
        ("model", f"{record.model} ({record.method})"),
        ("state", f"{record.state.value} ({record.raw_state or '-'})"),
        ("error", record.error or ""),
        ("tuned model", record.tuned_model or ""),
        ("estimate", _tokens_cost(record.estimate_tokens, record.estimate_cost_usd)),
        ("billed tokens", f"{record.billed_tokens:,}" if record.billed_tokens else ""),
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


def _tokens_cost(tokens: int | None, cost: float | None) -> str:
    if tokens is None:
        return ""
    return f"{tokens:,} billed tokens" + (f", ${cost:,.2f}" if cost is not None else "")


@jobs_app.command("watch")
def watch(job_id: JobId, as_json: JsonFlag = False) -> int:
    """Follow a job until it ends (resumes after Ctrl-C or a crash: state is in the store)."""
    from tuneport.cli.train import watch_and_report

    return watch_and_report(job_id, as_json=as_json)


@jobs_app.command("cancel")
def cancel(job_id: JobId, as_json: JsonFlag = False) -> None:
    """Ask the provider to stop a running job."""
    from tuneport.cli._console import err, out
    from tuneport.jobs.launch import reconcile
    from tuneport.jobs.resolve import provider_for_record, ref_of
    from tuneport.jobs.store import open_store
    from tuneport.jobs.watch import poll_once

    store = open_store()
    record = store.get(job_id)
    backend = provider_for_record(record)
    record = reconcile(store, record, backend)
    if not record.state.terminal:
        backend.cancel(ref_of(record))
    record = poll_once(store, record, backend).record
    if as_json:
        _dump(record.model_dump(mode="json"))
    else:
        out.print(f"{record.id}: {record.state.value} ({record.raw_state})", markup=False)
        if not record.state.terminal:
            err.print("the provider is stopping it; check with `tuneport jobs show --refresh`")


@jobs_app.command("cleanup")
def cleanup(
    job_id: JobId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    as_json: JsonFlag = False,
) -> int:
    """Delete what keeps costing money or space (endpoints, uploaded files, local outputs)."""
    from tuneport.cli._console import out
    from tuneport.cli.train import confirm_or_refuse
    from tuneport.jobs.launch import reconcile
    from tuneport.jobs.resolve import provider_for_record, ref_of
    from tuneport.jobs.store import open_store

    store = open_store()
    record = store.get(job_id)
    backend = provider_for_record(record)
    record = reconcile(store, record, backend)
    ref = ref_of(record)
    question = f"Delete the {record.provider} resources of {record.id}?"
    if not confirm_or_refuse(question, yes=yes, what="delete resources"):
        out.print("nothing deleted")
        return 1
    backend.cleanup(ref)
    if as_json:
        _dump({"id": record.id, "cleaned": True})
    else:
        out.print(f"{record.id}: cleaned up", markup=False)
    return 0


@jobs_app.command("resume")
def resume(
    job_id: JobId,
    no_watch: Annotated[bool, typer.Option("--no-watch")] = False,
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
    backend = provider_for_record(record)
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
        return 0
    return watch_and_report(current.id, as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add the ``jobs`` group to ``app``."""
    app.add_typer(jobs_app, name="jobs")
