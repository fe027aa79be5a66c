"""Token counts and cost estimates."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Estimate(BaseModel):
    """What a run will cost, computed before launch.

    ``billed_tokens = billable_tokens * epochs`` for token-billed providers, where
    ``billable_tokens`` is ``tokens`` with each example capped at the model's per-example limit
    (what the provider trains on). ``exact`` is false when the count is an approximation;
    ``error_band`` then gives its relative uncertainty (e.g. 0.15). ``cost_usd`` is ``None`` for
    the local provider (no money figure) and when the price is unknown (``cost_unknown`` says
    why; the budget guard then refuses). Where the provider's sources disagree on what is
    billed, ``budget_billed_tokens``/``budget_cost_usd`` hold the higher figure the budget guard
    uses, and ``budget_note`` says where it comes from.
    """

    model_config = ConfigDict(extra="forbid")

    provider: str
    model: str
    method: str = "sft"
    examples: int
    tokens: int
    validation_tokens: int | None = None
    epochs: int
    billed_tokens: int
    price_per_million_usd: float | None
    cost_usd: float | None
    billable_tokens: int | None = None  # per epoch, after the per-example cap
    truncated_examples: int = 0  # examples over the per-example limit (billed at the limit)
    cost_unknown: str | None = None
    budget_billed_tokens: int | None = None
    budget_cost_usd: float | None = None
    budget_note: str | None = None
    exact: bool
    error_band: float | None = None
    price_as_of: str | None = None
    price_source: str | None = None
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # information, e.g. the provider's own quote
    # local provider extras: steps, tokens per epoch, estimated GPU memory (GiB)
    steps: int | None = None
    gpu_memory_gib: float | None = None
