"""`tuneport train`: validate, price, confirm, upload, launch and watch a fine-tuning job."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tuneport.cli._console import print_json
from tuneport.cli._names import PROVIDER_HELP


def confirm_or_refuse(question: str, *, yes: bool, what: str) -> bool:
    """``True`` with ``--yes``; a prompt on a terminal; a ConfigError when non-interactive."""
    if yes:
        return True
    if not sys.stdin.isatty():
        from tuneport.errors import ConfigError

        raise ConfigError(
            f"refusing to {what} without confirmation in a non-interactive session",
            hint="pass --yes",
        )
    return typer.confirm(question, default=False, err=True)


def watch_and_report(
    job_id: str, *, as_json: bool = False, provider: Any = None, settings: Any = None
) -> int:
    """Watch a stored job to its end, print the outcome (tokens, cost or GPU time next to the
    estimate); exit code 0 / 1 (failed, cancelled, paused).

    ``provider``: the backend that launched it in this process (it holds settings the store
    never keeps, such as ``--set api_key=...``); default: one built from the stored settings
    and ``settings``.
    """
    from tuneport.cli._console import err, out
    from tuneport.cli._render import WatchView, outcome_lines
    from tuneport.errors import EXIT_INTERRUPTED
    from tuneport.jobs.cost import job_cost
    from tuneport.jobs.resolve import provider_for_record
    from tuneport.jobs.store import open_store
    from tuneport.jobs.watch import raise_for_outcome, watch_job
    from tuneport.providers.base import Resumable

    store = open_store()
    view = WatchView(err)

    def note(message: str) -> None:
        err.print(f"warning: {message}", markup=False)

    try:
        if provider is None:
            provider = provider_for_record(store.get(job_id), store, settings=settings)
        record = watch_job(job_id, store=store, renderer=view, provider=provider, note=note)
    except KeyboardInterrupt:
        view.close()
        err.print(
            f"stopped watching; job {job_id} keeps running. "
            f"Resume with `tuneport jobs watch {job_id}`",
            markup=False,
        )
        return EXIT_INTERRUPTED
    cost = job_cost(record)
    if as_json:
        print_json(record.model_dump(mode="json") | cost.as_dict())
    else:
        for line in outcome_lines(record, cost, view.last_status):
            out.print(line, markup=False)
    raise_for_outcome(record, resumable=isinstance(provider, Resumable))
    return 0


def train(
    job_file: Annotated[
        Path | None, typer.Argument(help="YAML job file (keys = job settings).", show_default=False)
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Training data file.")] = None,
    provider: Annotated[str | None, typer.Option("--provider", "-p", help=PROVIDER_HELP)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Base model to tune.")] = None,
    method: Annotated[str | None, typer.Option("--method", help="sft | dpo.")] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Default: provider's auto.")
    ] = None,
    learning_rate_multiplier: Annotated[
        float | None, typer.Option("--learning-rate-multiplier")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    suffix: Annotated[str | None, typer.Option("--suffix", help="Tuned model name suffix.")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    validation: Annotated[
        Path | None, typer.Option("--validation", help="Validation data file.")
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="Refuse if the estimate exceeds this USD.")
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            help="TOML price file merged over the built-in table (or set TUNEPORT_PRICES).",
            dir_okay=False,
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Provider option key=value (repeatable).", show_default=False),
    ] = None,
    project: Annotated[str | None, typer.Option("--project", help="= --set project=...")] = None,
    location: Annotated[str | None, typer.Option("--location", help="= --set location=...")] = None,
    bucket: Annotated[str | None, typer.Option("--bucket", help="= --set bucket=...")] = None,
    on: Annotated[
        str | None,
        typer.Option(
            "--on", help="local: where it trains, here | sky (rent GPUs through SkyPilot)."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Launch without asking.")] = False,
    no_watch: Annotated[
        bool, typer.Option("--no-watch", help="Return once the job is created.")
    ] = False,
    new_run: Annotated[
        bool,
        typer.Option(
            "--new-run",
            help="Launch again although the same data and settings were launched before "
            "(a second, separately paid job). Without it, the same command continues the "
            "earlier run.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job record as JSON.")] = False,
) -> int:
    """Validate, estimate, confirm, upload and launch a fine-tuning job, then watch it."""
    from tuneport.cli._console import err, out
    from tuneport.cli._render import RichProgress, estimate_lines
    from tuneport.cli.estimate import load_prices_or_exit
    from tuneport.jobs.checks import check_job
    from tuneport.jobs.launch import DataInvalidError, launch
    from tuneport.schemas import Estimate

    convenience = {"project": project, "location": location, "bucket": bucket, "on": on}
    items = [*(sets or []), *(f"{k}={v}" for k, v in convenience.items() if v is not None)]
    overrides: dict[str, Any] = {
        "data": data,
        "provider": provider,
        "model": model,
        "method": method,
        "epochs": epochs,
        "learning_rate_multiplier": learning_rate_multiplier,
        "batch_size": batch_size,
        "suffix": suffix,
        "seed": seed,
        "validation": validation,
        "max_cost": max_cost,
    }
    cfg = check_job(job_file, overrides, items, prices_file=prices)  # every problem at once
    table = load_prices_or_exit(prices, [cfg.provider]) if prices is not None else None

    def show(est: Estimate) -> None:
        for line in estimate_lines(est):
            err.print(line, markup=False)

    def confirm(est: Estimate) -> bool:
        return confirm_or_refuse("Launch this job?", yes=yes, what="launch a paid job")

    progress = RichProgress(err)
    try:
        launched = launch(
            cfg,
            confirm=confirm,
            progress=progress,
            max_cost=max_cost,
            on_estimate=show,
            new_run=new_run,
            prices=table,
        )
    except DataInvalidError as exc:
        for report in exc.reports:
            for problem in report.problems:
                err.print(
                    f"{problem.where}: {problem.severity}: {problem.message} (fix: {problem.fix})",
                    markup=False,
                )
        raise
    finally:
        progress.finish()
    record = launched.record
    if launched.uploaded is None:
        err.print(
            f"continuing {record.id} ({record.provider} job {record.remote_id}): launched "
            "before with the same data and settings",
            markup=False,
        )
    else:
        reused = " (reused identical upload)" if launched.uploaded.reused else ""
        err.print(
            f"launched {record.id} ({record.provider} job {record.remote_id}){reused}",
            markup=False,
        )
    if no_watch:
        if as_json:
            print_json(record)
        else:
            out.print(record.id, markup=False)
        err.print(f"watch it with `tuneport jobs watch {record.id}`", markup=False)
        return 0
    return watch_and_report(record.id, as_json=as_json, provider=launched.provider)


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train)
