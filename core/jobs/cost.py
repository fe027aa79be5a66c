"""What a job cost after the fact: the tokens the provider reports it trained (billed) × the
price the estimate used, next to the estimate; for own hardware (local) the time it ran.

The price comes from the same table and entry as the estimate (:func:`PriceTable.lookup` with the
job's provider, base model and method), so estimate and actual differ only by the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneport.errors import ConfigError
from tuneport.pricing.table import PriceTable
from tuneport.providers import registry
from tuneport.schemas import JobRecord


@dataclass(frozen=True)
class JobCost:
    """The money side of a job: estimated before launch, actual from the provider's figure."""

    estimate_tokens: int | None
    estimate_usd: float | None
    tokens: int | None  # trained / billable tokens the provider reported (None: not yet)
    cost_usd: float | None  # tokens × price (None: no tokens yet, no price, or own hardware)
    price_per_million_usd: float | None
    price_as_of: str | None
    own_hardware: bool  # no provider charge (local): show the compute time instead
    cost_unknown: str | None = None  # why a charged job has no cost (no price in the table)
    # where cost_usd comes from: "provider" (its own figure for the job) or "tokens x price"
    cost_source: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "cost_usd": self.cost_usd,
            "estimate_cost_usd": self.estimate_usd,
            "billed_tokens": self.tokens,
            "estimate_tokens": self.estimate_tokens,
            "price_per_million_usd": self.price_per_million_usd,
            "price_as_of": self.price_as_of,
            "own_hardware": self.own_hardware,
            "cost_unknown": self.cost_unknown,
            "cost_source": self.cost_source,
        }


def _rented(record: JobRecord) -> str | None:
    """Why the job ran on hardware its backend rents (its settings say so), else None."""
    try:
        rented = registry.backend(record.provider).rented
    except ConfigError:  # a backend no longer installed
        return None
    options = record.config.get("options") if isinstance(record.config, dict) else None
    return rented(options if isinstance(options, dict) else {}) if rented else None


def job_cost(record: JobRecord, *, prices: PriceTable | None = None) -> JobCost:
    """The estimate and actual cost of ``record`` (prices from ``prices`` or the default
    table, ``$TUNEPORT_PRICES`` included)."""
    rate: float | None = None
    as_of: str | None = None
    # own hardware is the backend's price data (``paid = false``), never the absence of a price:
    # a hosted model the table has no price for is charged all the same, at an unknown cost
    own = False
    unknown: str | None = None
    try:
        table = prices or registry.load_price_table(providers=[record.provider])
        price = table.lookup(record.provider, record.model, record.method, unlisted_ok=True)
        rate, as_of = price.training_per_million, price.as_of
        own = not price.paid
        unknown = price.cost_unknown
        why = _rented(record) if own else None
        if why:  # own hardware's backend on rented hardware: billed, at an unknown price
            own, unknown = False, why
    except ConfigError as exc:  # no prices for the provider at all: tokens without dollars
        unknown = f"{exc.message}, so its cost is unknown"
    tokens = record.billed_tokens
    cost = None
    source = None
    if record.billed_usd is not None:  # the provider's own figure: no doubt about epochs
        cost, source, unknown = round(record.billed_usd, 9), "provider", None
    elif tokens is not None and rate is not None:
        cost, source = round(tokens * rate / 1e6, 6), "tokens x price"
    return JobCost(
        estimate_tokens=record.estimate_tokens,
        estimate_usd=record.estimate_cost_usd,
        tokens=tokens,
        cost_usd=cost,
        price_per_million_usd=rate,
        price_as_of=as_of,
        own_hardware=own,
        cost_unknown=unknown,
        cost_source=source,
    )
