"""tuneport's public Python API: what a script needs, by provider name.

Each function is the library form of a CLI command and goes through the same code (the
registry, :mod:`tuneport.jobs.quote`, the job store), so a script and the CLI give the same
numbers. Errors are :class:`tuneport.errors.TuneportError` subclasses with a one-line message,
a ``hint`` and an ``exit_code``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tuneport.data.exporters import ExportResult, default_output, export_records
from tuneport.data.records import load_records, read_records, records_only
from tuneport.errors import InputError
from tuneport.jobs import quote
from tuneport.jobs.chat import chat_once
from tuneport.jobs.launch import launch
from tuneport.jobs.plan import PlanRow
from tuneport.jobs.plan import plan as plan_rows
from tuneport.jobs.store import open_store
from tuneport.jobs.watch import watch_job
from tuneport.providers import registry
from tuneport.schemas import AnyRecord, Estimate, JobConfig, JobRecord, Method, Report
from tuneport.tokens.approx import CharCounter
from tuneport.validation import validate_file


def load(path: str | Path, fmt: str | None = None) -> list[AnyRecord]:
    """Every record of a dataset in any supported format (detected unless ``fmt``).

    Raises :class:`~tuneport.errors.InputError` naming ``file:line`` at the first unusable row.
    """
    return load_records(Path(path), fmt)


def convert(
    path: str | Path,
    to: str,
    out: str | Path | None = None,
    *,
    fmt: str | None = None,
    force: bool = False,
) -> ExportResult:
    """Write ``path`` in the ``to`` format: ``canonical``, a format name (``openai``,
    ``vertex``, ``local``) or a backend's name (the format it uploads: ``together`` and
    ``fireworks`` take OpenAI's chat JSONL).

    The output defaults to ``<stem>.<to>.jsonl`` beside the input (a folder for ``local``); an
    existing output is kept unless ``force``. What the target cannot carry is counted in
    :attr:`ExportResult.dropped`.
    """
    source = Path(path)
    written = export_format(to)
    target = Path(out) if out is not None else default_output(source, written, to)
    records = records_only(read_records(source, fmt))
    return export_records(records, written, target, force=force, inputs=(source,))


def export_format(name: str) -> str:
    """The export format ``name`` stands for: a format name as it is, a backend's name as the
    format its descriptor exports; an unknown name is a one-line InputError listing both."""
    from tuneport.data.exporters import EXPORTERS

    if name in EXPORTERS:
        return name
    if name in registry.names():
        return registry.backend(name).target
    choices = ", ".join(["canonical", *registry.names()])
    raise InputError(f"unknown target {name!r}", hint=f"use one of: {choices}")


def validate(
    path: str | Path,
    provider: str = "openai",
    model: str | None = None,
    *,
    fmt: str | None = None,
) -> Report:
    """Every problem of ``path`` for ``provider`` (and ``model``: exact tokens and its limit)."""
    backend = registry.backend(provider)
    counter = registry.counter_for(provider, model) if model else CharCounter()
    return validate_file(
        Path(path),
        backend.rules,
        model,
        fmt,
        counter=counter,
        token_limit=backend.limit_for(model),
    )


def estimate(
    path: str | Path,
    provider: str,
    model: str,
    *,
    method: Method = "sft",
    epochs: int | None = None,
    validation: str | Path | None = None,
    online: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> Estimate:
    """Examples, tokens, epochs, billed tokens and cost of tuning ``model`` on ``path``."""
    cfg = JobConfig(
        provider=provider,
        model=model,
        data=Path(path),
        method=method,
        epochs=epochs,
        validation=Path(validation) if validation is not None else None,
        options=dict(settings or {}),
    )
    return quote.estimate(cfg, online=online, settings=settings)


def plan(
    path: str | Path, *, method: Method = "sft", providers: list[str] | None = None
) -> list[PlanRow]:
    """``path`` validated and priced for every tunable model of every backend (or ``providers``)."""
    return plan_rows(Path(path), method=method, providers=providers)


def train(
    cfg: JobConfig,
    *,
    confirm: Callable[[Estimate], bool] | None = None,
    max_cost: float | None = None,
    wait: bool = True,
) -> JobRecord:
    """Validate, price, upload and launch ``cfg``; watch it to its end unless ``wait=False``.

    ``confirm(estimate)`` decides after the budget guard (``None``: launch without asking);
    ``max_cost`` refuses a launch estimated above it (:class:`~tuneport.errors.BudgetError`).
    """
    launched = launch(cfg, confirm=confirm, max_cost=max_cost)
    if not wait:
        return launched.record
    return watch_job(launched.record.id, store=open_store(), provider=launched.provider)


def watch(job_id: str) -> JobRecord:
    """Follow a stored job until it ends (resumable: everything needed is in the job store)."""
    return watch_job(job_id, store=open_store())


def chat(
    target: str, message: str, *, provider: str | None = None, system: str | None = None
) -> str:
    """One reply from ``target``: a job id, a tuned model id (``ft:…``, ``local:ID``, a Vertex
    endpoint) or a base model with ``provider``."""
    reply = chat_once(target, message, provider=provider, system=system)
    return reply.content or ""
