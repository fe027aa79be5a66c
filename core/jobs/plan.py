"""``tuneport plan``: one dataset validated and priced for every tunable model side by side.

The file is read into memory for validation (plan is meant for datasets you are about to
price, not for multi-GB files: use ``validate``/``estimate``, which stream, for those). Each
backend's rules validate the records once per distinct (token limit, counter); each model's
estimate is :func:`tuneport.jobs.quote.estimate`, with the counts shared per counter (all OpenAI
models share one tiktoken count). Needs no keys and no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tuneport.data.records import read_records
from tuneport.errors import InputError
from tuneport.jobs.quote import CountMemo, estimate, quote_for
from tuneport.pricing.table import PriceTable
from tuneport.providers import registry
from tuneport.schemas import Estimate, JobConfig, Method, Report
from tuneport.tokens.counter import TokenCounter
from tuneport.validation.validate import validate_rows


class PlanRow(BaseModel):
    """One provider/model of a plan: validation outcome and the estimate."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    model: str
    method: str
    valid: bool
    problems: int
    errors: int
    problem_kinds: dict[str, int]
    examples: int
    tokens: int
    exact: bool
    error_band: float | None
    epochs: int
    billed_tokens: int
    price_per_million_usd: float | None
    cost_usd: float | None
    cost_unknown: str | None = None  # why there is no cost although the provider charges
    price_as_of: str
    unverified: bool
    token_counter: str
    warnings: list[str]
    steps: int | None = None
    gpu_memory_gib: float | None = None
    tuning_ends: str | None = None  # YYYY-MM-DD: the provider stops (stopped) tuning it
    shutdown_date: str | None = None  # YYYY-MM-DD: the model and its fine-tunes stop working
    lifecycle: str = ""  # both as words for the row, e.g. "tuning ended 2026-10-23"


def plan(
    path: Path,
    *,
    method: Method = "sft",
    prices: PriceTable | None = None,
    fmt: str | None = None,
    providers: list[str] | None = None,
    counters: Mapping[tuple[str, str], TokenCounter] | None = None,
) -> list[PlanRow]:
    """Validate and price ``path`` for every model in the price table that supports ``method``.

    Each row's numbers come from :func:`tuneport.jobs.quote.estimate`, the function ``estimate``
    and ``train`` use; the file is counted once per distinct counter.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="check the path")
    for name in providers or ():
        registry.backend(name)  # an unknown provider is a configuration error (exit 3)
    wanted = providers or registry.names()
    backends = {b.name: b for b in registry.backends() if b.name in wanted}
    prices = prices or registry.load_price_table(providers=wanted)
    rows = list(read_records(path, fmt))
    memo: CountMemo = {}
    reports: dict[tuple[str, int | None, str], Report] = {}
    out: list[PlanRow] = []
    for price in prices.tunable(method=method):
        backend = backends.get(price.provider)
        if backend is None:
            continue
        given = (counters or {}).get((price.provider, price.model))
        quote = quote_for(price.provider, price.model, method, prices=prices, counter=given)
        counter = quote.counter
        # models of one provider with the same limit and counter get the same report
        key = (price.provider, quote.limit, counter.label)
        if key not in reports:
            reports[key] = validate_rows(
                rows,
                file=str(path),
                rules=backend.rules,
                model=price.model,
                counter=counter,
                token_limit=quote.limit,
            )
        report = reports[key]
        cfg = JobConfig(provider=price.provider, model=price.model, data=path, method=method)
        est: Estimate = estimate(cfg, quote=quote, fmt=fmt, memo=memo)
        out.append(
            PlanRow(
                provider=price.provider,
                model=price.model,
                method=method,
                valid=report.ok,
                problems=len(report.problems),
                errors=len(report.errors),
                problem_kinds=report.counts(),
                examples=est.examples,
                tokens=est.tokens,
                exact=est.exact,
                error_band=est.error_band,
                epochs=est.epochs,
                billed_tokens=est.billed_tokens,
                price_per_million_usd=est.price_per_million_usd,
                cost_usd=est.cost_usd,
                cost_unknown=est.cost_unknown,
                price_as_of=price.as_of,
                unverified=price.unverified,
                token_counter=counter.label,
                warnings=est.warnings,
                steps=est.steps,
                gpu_memory_gib=est.gpu_memory_gib,
                tuning_ends=price.tuning_ends,
                shutdown_date=price.shutdown_date,
                lifecycle=price.lifecycle(),
            )
        )
    return out


def as_json(rows: list[PlanRow]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rows]
