"""The budget guard: refuse to launch when the estimate exceeds the allowed cost.

The limit comes from ``--max-cost``, else the job config's ``max_cost``, else
``$TUNEPORT_MAX_COST`` (:func:`resolve_max_cost`). An approximate estimate is checked at the top
of its error band (a ±25 % count of $8 is checked as $10), so the guard errs on the safe side.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

from tuneport.errors import BudgetError, ConfigError
from tuneport.schemas import Estimate, JobConfig

MAX_COST_ENV = "TUNEPORT_MAX_COST"


class Budget(NamedTuple):
    """A cost limit in USD and where it came from (named in the refusal)."""

    limit: float
    source: str


def resolve_max_cost(flag: float | None = None, cfg: JobConfig | None = None) -> float | None:
    """The cost limit in USD: the flag, the job config's ``max_cost``, or ``$TUNEPORT_MAX_COST``."""
    budget = resolve_budget(flag, cfg)
    return budget.limit if budget is not None else None


def resolve_budget(flag: float | None = None, cfg: JobConfig | None = None) -> Budget | None:
    """Like :func:`resolve_max_cost`, keeping the limit's source."""
    if flag is not None:
        value, source = flag, "--max-cost"
    elif cfg is not None and cfg.max_cost is not None:
        value, source = cfg.max_cost, "max_cost in the job config"
    else:
        env = os.environ.get(MAX_COST_ENV, "").strip()
        if not env:
            return None
        try:
            value = float(env.removeprefix("$"))
        except ValueError:
            raise ConfigError(
                f"{MAX_COST_ENV}={env!r} is not a number", hint=f"set {MAX_COST_ENV} to e.g. 20"
            ) from None
        source = MAX_COST_ENV
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{source} must be a positive amount in USD, got {value}",
            hint=f"set {source} to an amount such as 20 (USD), or leave it out",
        )
    return Budget(value, source)


def worst_case_cost(estimate: Estimate) -> float | None:
    """The cost at the top of the estimate's error band (the cost itself when exact); where
    the provider's sources disagree, the higher figure (``budget_cost_usd``)."""
    if estimate.cost_usd is None:
        return None
    band = 0.0 if estimate.exact else (estimate.error_band or 0.0)
    cost = max(estimate.cost_usd, estimate.budget_cost_usd or 0.0)
    return cost * (1.0 + band)


def check_budget(estimate: Estimate, max_cost: float | None, *, source: str = "--max-cost") -> None:
    """Raise :class:`BudgetError` if ``estimate`` may cost more than ``max_cost`` USD.

    ``source`` names where the limit was set (flag, job config or environment variable).
    """
    if max_cost is None:
        return
    if estimate.cost_unknown:
        raise BudgetError(
            f"cannot check the limit ${max_cost:,.2f} set by {source}: {estimate.cost_unknown}",
            hint="add the model's training price with --prices FILE (or TUNEPORT_PRICES), "
            f"or drop {source}",
        )
    worst = worst_case_cost(estimate)
    if worst is None or worst <= max_cost:
        return
    assert estimate.cost_usd is not None  # worst_case_cost is None otherwise
    higher = estimate.budget_cost_usd is not None and estimate.budget_cost_usd > estimate.cost_usd
    billed = estimate.budget_billed_tokens if higher else estimate.billed_tokens
    if estimate.exact:
        what = f"estimated ${worst:,.2f}"
    else:
        band = estimate.error_band or 0.0
        base = estimate.budget_cost_usd if higher else estimate.cost_usd
        what = f"estimated up to ${worst:,.2f} (≈${base:,.2f} ±{band:.0%})"
    why = f"; the higher figure: {estimate.budget_note}" if higher else ""
    raise BudgetError(
        f"{what} exceeds the limit ${max_cost:,.2f} set by {source} "
        f"({estimate.provider} {estimate.model}, {billed:,} billed tokens{why})",
        hint=f"raise {source}, use fewer epochs or examples, or a cheaper model",
    )
