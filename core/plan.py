"""``tuneport plan``: one dataset validated and priced for every tunable model side by side.

The file is read once into memory (plan is meant for datasets you are about to price, not for
multi-GB files: use ``validate``/``estimate``, which stream, for those). Each provider's rules
validate the records once per distinct (token limit, counter); each model's estimate reuses the
counts: all OpenAI models share one tiktoken count, counters are memoized per record. Needs no
keys and no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tuneport.counting import TokenCounter
from tuneport.errors import InputError
from tuneport.estimate import estimate_counts
from tuneport.pricing import PriceTable, load_prices
from tuneport.schemas import Estimate, JobConfig, Method, Report
from tuneport.tokens import Counts, counter_for, memoized, uses_tools


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
    price_as_of: str
    unverified: bool
    token_counter: str
    warnings: list[str]
    steps: int | None = None
    gpu_memory_gib: float | None = None


def plan(
    path: Path,
    *,
    method: Method = "sft",
    prices: PriceTable | None = None,
    fmt: str | None = None,
    providers: list[str] | None = None,
    counters: Mapping[tuple[str, str], TokenCounter] | None = None,
) -> list[PlanRow]:
    """Validate and price ``path`` for every model in the price table that supports ``method``."""
    from tuneport.data import read_records, validate_rows

    if not path.exists():
        raise InputError(f"{path}: no such file", hint="check the path")
    prices = prices or load_prices()
    rows = list(read_records(path, fmt))
    records = [(r.line, r.record) for r in rows if r.record is not None]
    skipped = [r.line for r in rows if r.record is None]
    tools = sum(uses_tools(rec) for _, rec in records)
    shared: dict[str, TokenCounter] = {}
    reports: dict[tuple[str, int | None, str], Report] = {}
    out: list[PlanRow] = []
    for price in prices.tunable(method=method):
        if providers and price.provider not in providers:
            continue
        given = (counters or {}).get((price.provider, price.model))
        raw = given or counter_for(price.provider, price.model)
        counter = shared.setdefault(raw.label, memoized(raw))
        # models of one provider with the same limit and counter get the same report
        key = (price.provider, price.context_tokens, counter.label)
        if key not in reports:
            reports[key] = validate_rows(
                rows,
                file=str(path),
                provider=price.provider,
                counter=counter,
                token_limit=price.context_tokens,
            )
        report = reports[key]
        counts = Counts(skipped=list(skipped), tool_examples=tools)
        for line, rec in records:
            counts.tokens.append(counter.count(rec))
            counts.lines.append(line)
        cfg = JobConfig(provider=price.provider, model=price.model, data=path, method=method)
        est: Estimate = estimate_counts(counts, cfg, price=price, counter=counter)
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
                price_as_of=price.as_of,
                unverified=price.unverified,
                token_counter=counter.label,
                warnings=est.warnings,
                steps=est.steps,
                gpu_memory_gib=est.gpu_memory_gib,
            )
        )
    return out


def as_json(rows: list[PlanRow]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rows]
