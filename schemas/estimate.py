"""Token counts and cost estimates."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Estimate(BaseModel):
    """What a run will cost, computed before launch.

    ``billed_tokens = tokens * epochs`` for token-billed providers. ``exact`` is false when the
    count is an approximation; ``error_band`` then gives its relative uncertainty (e.g. 0.15).
    ``cost_usd`` is ``None`` for the local provider (no money figure).
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
    exact: bool
    error_band: float | None = None
    price_as_of: str | None = None
    price_source: str | None = None
    warnings: list[str] = Field(default_factory=list)
    # local provider extras: steps, tokens per epoch, estimated GPU memory (GiB)
    steps: int | None = None
    gpu_memory_gib: float | None = None
