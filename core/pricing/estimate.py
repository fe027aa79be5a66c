"""Cost and size estimates from counted tokens: tokens × epochs × dated price.

How the figures are computed
----------------------------
* ``tokens``: the sum of every training example's tokens (:class:`~tuneport.tokens.Counts`,
  counted by :func:`tuneport.tokens.measure.count_path` with the backend's counter).
* ``epochs``: ``--epochs`` if given (checked against the model's bounds), else the provider's
  auto rule from the price table (OpenAI: the cookbook rule; Vertex: its default count).
* ``billable_tokens``: ``tokens`` with each example capped at the model's per-example token
  limit (OpenAI truncates longer examples and the cookbook's estimate caps them; Vertex
  truncates or drops them); the estimate warns with the number of such examples.
* ``billed_tokens = billable_tokens × epochs``; ``cost_usd = billed_tokens × training price /
  1e6``. Validation tokens are counted and shown but not billed (see ``prices.toml``).
* A price-table entry without a price, or a model the table does not know, gives
  ``cost_usd = None`` with ``cost_unknown`` saying why (the budget guard refuses then).
* Where a backend's sources disagree on what is billed, it hands a :class:`BudgetFigure`
  (the higher figure, per epoch): the budget guard uses it and the estimate says so.
* Minimum examples and the per-example token limit come from the backend's
  :class:`~tuneport.validation.rules.Rules` (the same values ``validate`` uses); what a backend
  adds (local: optimizer steps and GPU memory) arrives as :class:`Extras`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from tuneport.pricing.table import ModelPrice
from tuneport.schemas import Estimate, JobConfig
from tuneport.tokens.approx import label_for
from tuneport.tokens.counter import Counts, TokenCounter
from tuneport.validation.rules import Rules

_LIST_LINES = 5


@dataclass(frozen=True)
class Extras:
    """What a backend adds to an estimate (its descriptor's ``extras``)."""

    steps: int | None = None
    gpu_memory_gib: float | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # information, not a warning
    # the tokens the run trains when that is not tokens × epochs (a local run stopped or
    # stretched by max_steps); becomes the estimate's billed tokens
    trained_tokens: int | None = None
    # why a run the backend rents (e.g. GPUs through SkyPilot) has no price: the estimate's
    # cost is then unknown, never "no provider charge"; the backend's warning says more
    cost_unknown: str | None = None


@dataclass(frozen=True)
class BudgetFigure:
    """A higher billed-token figure (per epoch) from another source of the provider's billing
    rule; ``note`` names it."""

    tokens: int
    note: str


TUNING_ENDS_NOTICE = timedelta(days=60)  # warn this long before a model's tuning ends


def _lines(pairs: Sequence[tuple[int, int]]) -> str:
    shown = ", ".join(str(line) for line, _ in pairs[:_LIST_LINES])
    more = f" and {len(pairs) - _LIST_LINES} more" if len(pairs) > _LIST_LINES else ""
    return f"line{'s' if len(pairs) > 1 else ''} {shown}{more}"


# --- estimates ---------------------------------------------------------------------------------


def estimate_counts(
    counts: Counts,
    cfg: JobConfig,
    *,
    price: ModelPrice,
    counter: TokenCounter,
    rules: Rules,
    validation: Counts | None = None,
    extras: Extras | None = None,
    budget: BudgetFigure | None = None,
    today: date | None = None,
    online: bool = True,
) -> Estimate:
    """The estimate of already counted examples for ``cfg``'s model at ``price``.

    Pure: the counts come from :func:`tuneport.tokens.measure.count_path`, the minimum examples
    and token limit from ``rules`` (the backend's, as ``validate`` uses them), backend additions
    from ``extras``. ``online``: whether ``estimate --online`` can count exactly for this
    backend (an approximate count then suggests it).
    """
    counter = counts.counted_by or counter  # exact counts remembered from `estimate --online`
    n = counts.examples
    tokens = counts.total
    epochs = price.resolve_epochs(n, cfg.epochs)
    limit = rules.limit_for(cfg.model)
    over = counts.over(limit) if limit else []
    billable = tokens - sum(t - limit for _, t in over) if limit else tokens
    billed = billable * epochs
    if extras is not None and extras.trained_tokens is not None:
        billed = extras.trained_tokens
    rate = price.training_per_million
    cost = None if rate is None else round(billed * rate / 1e6, 6)
    warnings: list[str] = []
    approx = "" if counter.exact else "≈"

    if n == 0:
        warnings.append("no examples to train on")
    elif n < rules.min_examples:
        warnings.append(f"{n} examples: {rules.provider} needs at least {rules.min_examples}")
    elif n < rules.recommended_examples:
        warnings.append(
            f"{n} examples: {rules.provider} recommends at least {rules.recommended_examples}"
        )
    if limit and over:
        worst = max(t for _, t in over)
        warnings.append(
            f"{len(over)} example{'s' if len(over) > 1 else ''} over the {limit:,}-token "
            f"limit of {cfg.model} ({_lines(over)}; largest {approx}{worst:,}): "
            f"{rules.token_limit_note}; billed tokens count each at the limit "
            f"({approx}{tokens - billable:,} tokens per epoch not billed)"
        )
    if validation is not None and limit:
        v_over = validation.over(limit)
        if v_over:
            warnings.append(
                f"{len(v_over)} validation example(s) over the {limit:,}-token limit "
                f"({_lines(v_over)})"
            )
    if counts.skipped:
        warnings.append(
            f"{len(counts.skipped)} row(s) not counted because they are not readable records "
            f"({_lines([(ln, 0) for ln in counts.skipped])}); run `tuneport validate`"
        )
    if not counter.exact:
        hint = "; `tuneport estimate --online` counts exactly" if online else ""
        warnings.append(
            f"token count is approximate ({label_for(counter.label, cfg.method)}){hint}"
        )
    if price.unverified and rate is not None:
        warnings.append(
            f"price ${rate:,.2f}/1M is unverified (as of {price.as_of}, {price.source}); "
            "override it with --prices FILE"
        )
    cost_unknown = price.cost_unknown
    if cost_unknown:
        warnings.append(f"{cost_unknown}; add its price with --prices FILE")
    warnings += _tuning_ends(price, cfg.model, today or date.today())
    warnings += _shutdown(price, cfg.model, today or date.today())
    budget_billed = budget_cost = None
    budget_note = None
    if budget is not None and budget.tokens * epochs > billed:
        budget_billed = budget.tokens * epochs
        budget_cost = None if rate is None else round(budget_billed * rate / 1e6, 6)
        budget_note = budget.note
        more = f" (${budget_cost:,.2f})" if budget_cost is not None else ""
        warnings.append(
            f"the budget guard uses {approx}{budget_billed:,} billed tokens{more}: {budget.note}"
        )
    extras = extras or Extras()
    warnings += extras.warnings
    cost_unknown = cost_unknown or extras.cost_unknown

    return Estimate(
        provider=cfg.provider,
        model=cfg.model,
        method=cfg.method,
        examples=n,
        tokens=tokens,
        validation_tokens=validation.total if validation is not None else None,
        epochs=epochs,
        billed_tokens=billed,
        billable_tokens=billable,
        truncated_examples=len(over),
        price_per_million_usd=rate,
        cost_usd=cost,
        cost_unknown=cost_unknown,
        budget_billed_tokens=budget_billed,
        budget_cost_usd=budget_cost,
        budget_note=budget_note,
        exact=counter.exact,
        error_band=None if counter.exact else counter.error_band,
        price_as_of=price.as_of,
        price_source=price.source,
        warnings=warnings,
        notes=list(extras.notes),
        steps=extras.steps,
        gpu_memory_gib=extras.gpu_memory_gib,
    )


def _tuning_ends(price: ModelPrice, model: str, today: date) -> list[str]:
    """A warning when the provider stopped tuning the model, or stops within 60 days."""
    if not price.tuning_ends:
        return []
    try:
        ends = date.fromisoformat(price.tuning_ends)
    except ValueError:
        return []
    source = f" ({price.tuning_ends_source})" if price.tuning_ends_source else ""
    if ends <= today:
        return [
            f"{price.provider} stopped tuning {model} on {ends.isoformat()}{source}: the "
            "provider will likely refuse the job; pick a current model"
        ]
    if ends - today <= TUNING_ENDS_NOTICE:
        return [f"{price.provider} stops tuning {model} on {ends.isoformat()}{source}"]
    return []


def _shutdown(price: ModelPrice, model: str, today: date) -> list[str]:
    """A warning when the model (and every model tuned from it) stops working within 60 days
    or stopped: a tuned model would not outlive that date."""
    if not price.shutdown_date:
        return []
    try:
        ends = date.fromisoformat(price.shutdown_date)
    except ValueError:
        return []
    if ends - today > TUNING_ENDS_NOTICE:
        return []
    source = f" ({price.shutdown_source})" if price.shutdown_source else ""
    verb = "stopped" if ends <= today else "stop"
    return [f"{model} and every model tuned from it {verb} working on {ends.isoformat()}{source}"]
