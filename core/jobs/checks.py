"""Every problem of a job at once, before anything is read, priced or uploaded.

``tuneport train`` used to stop at the first stage that failed: the job file's schema, then the
provider's options, then its preflight, then the price table's epoch bounds, so ``--epochs 0
--batch-size -1 --set foo=1`` reported one problem per run. :func:`check_job` runs every stage it
can and raises them together through :class:`tuneport.errors.Collector` (one line each in the
CLI). A new check (a range, a file, a backend rule) joins by raising a ``ConfigError`` or an
``InputError`` inside ``problems.check``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from tuneport.errors import Collector
from tuneport.files import require_file
from tuneport.jobs.jobfile import (
    build_config,
    lenient_config,
    merge_values,
    parse_set,
    read_job_file,
)
from tuneport.jobs.store import open_store
from tuneport.providers import registry
from tuneport.schemas import JobConfig


def check_job(
    job_file: Path | None,
    overrides: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    *,
    prices_file: Path | None = None,
    store: Any = None,
) -> JobConfig:
    """The job's :class:`JobConfig` (job file + flags + ``--set``), or one error listing every
    problem: settings, provider options, the backend's preflight (keys, bounds), the model's
    price entry and epoch bounds, and the data files."""
    names = registry.names()
    problems = Collector()
    file_values = read_job_file(job_file) if job_file is not None else None  # syntax: fatal
    options = problems.check(lambda: parse_set(sets)) or {}
    merged = merge_values(file_values, overrides, options, known_providers=names)
    source = str(job_file) if job_file is not None else None
    cfg = problems.check(
        lambda: build_config(file_values, overrides, options, source=source, known_providers=names)
    )
    provider, model, method = merged.get("provider"), merged.get("model"), merged.get("method")
    settings = merged.get("options")
    backend = None
    if provider in names and isinstance(settings, Mapping):
        jobs = store if store is not None else open_store()  # e.g. `parent=JOB_ID` lookups
        backend = problems.check(lambda: registry.get(str(provider), settings, store=jobs))
    checked = cfg if cfg is not None else lenient_config(merged)  # the valid settings
    if checked is not None and backend is not None:
        problems.check(lambda: backend.preflight(checked))
    told = " ".join(line for error in problems.errors for line in error.lines()).lower()
    if (
        provider in names
        and isinstance(model, str)
        and method in (None, "sft", "dpo")
        and "epochs" not in told  # the backend's own bound said it already
    ):

        def epochs_in_range() -> None:
            table = registry.load_price_table(prices_file, providers=[str(provider)])
            # a model the table does not list is counted with its cost unknown, as `estimate`
            # does (quote_for): the provider decides whether it tunes
            price = table.lookup(str(provider), model, str(method or "sft"), unlisted_ok=True)
            epochs = merged.get("epochs")
            if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1:
                price.resolve_epochs(1, epochs)

        problems.check(epochs_in_range)
    for key in ("data", "validation"):
        value = merged.get(key)
        if isinstance(value, str | Path) and str(value):
            problems.check(partial(require_file, Path(value)))
    problems.raise_if_any(where=source)
    assert cfg is not None  # no problem means build_config succeeded
    return cfg
