"""The one pricing path: a backend's rules, counter and price for a model, and the estimate of a
run (examples, tokens, epochs, cost) from them.

``tuneport validate --model``, ``estimate``, ``plan``, ``train`` and ``eval`` all take their
counter and limits from :func:`quote_for` and their numbers from :func:`estimate` (which counts
through :func:`tuneport.tokens.measure.count_path`, whatever the file layout), so the same file
gives the same examples, tokens and cost in every command.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuneport.pricing.estimate import Extras, estimate_counts
from tuneport.pricing.table import ModelPrice, PriceTable
from tuneport.providers import registry
from tuneport.providers.base import Backend
from tuneport.schemas import GENERIC_SETTINGS, Estimate, JobConfig
from tuneport.tokens.counter import Counts, TokenCounter
from tuneport.tokens.measure import count_path
from tuneport.validation.rules import Rules

# (resolved path, counter label, format) -> counts: one count per file and counter (plan)
CountMemo = MutableMapping[tuple[str, str, str | None], Counts]


@dataclass(frozen=True)
class Quote:
    """What pricing one model of one backend needs: the descriptor, the price entry and the
    counter its tokens are billed with."""

    backend: Backend
    model: str
    price: ModelPrice
    counter: TokenCounter

    @property
    def rules(self) -> Rules:
        return self.backend.rules

    @property
    def limit(self) -> int | None:
        """The per-example token limit of the model (from the backend's rules)."""
        return self.backend.limit_for(self.model)


def quote_for(
    provider: str,
    model: str,
    method: str = "sft",
    *,
    prices: PriceTable | None = None,
    online: bool = False,
    settings: Mapping[str, Any] | None = None,
    counter: TokenCounter | None = None,
) -> Quote:
    """The :class:`Quote` of ``provider``/``model``; ConfigError for an unknown provider or a
    method the price table does not give a listed model. A model the table does not list is
    quoted with its tokens counted and the cost unknown: the provider decides."""
    backend = registry.backend(provider)
    table = prices or registry.load_price_table(providers=[provider])
    price = table.lookup(provider, backend.price_name(model, settings), method, unlisted_ok=True)
    used = counter or registry.counter_for(provider, model, online=online, settings=settings)
    return Quote(backend=backend, model=model, price=price, counter=used)


def counted_with(quote: Quote, est: Estimate) -> str:
    """The label of what counted ``est``: the quote's counter, or the exact online count an
    earlier ``estimate --online`` of the same file left in the count cache."""
    remembered = getattr(quote.counter, "remembered", None)
    if est.exact and not quote.counter.exact and remembered is not None:
        return f"{remembered.label}, remembered from `estimate --online` of this file"
    return quote.counter.label


def measure(
    path: Path,
    counter: TokenCounter,
    *,
    fmt: str | None = None,
    workers: int | None = None,
    memo: CountMemo | None = None,
) -> Counts:
    """:func:`~tuneport.tokens.measure.count_path`, remembered in ``memo`` when given."""
    key = (str(path.resolve()), counter.label, fmt)
    if memo is not None and key in memo:
        return memo[key]
    counts = count_path(path, counter, fmt=fmt, workers=workers)
    if memo is not None:
        memo[key] = counts
    return counts


def ignored_settings(backend: Backend, cfg: JobConfig) -> list[str]:
    """One warning per generic setting (:data:`~tuneport.schemas.GENERIC_SETTINGS`) that
    ``cfg`` sets and ``backend`` does not use, with the backend's reason where it gives one: the
    one rule for settings a backend ignores (shown once, in the estimate; never fatal)."""
    found = []
    for name, flag in GENERIC_SETTINGS.items():
        if name in backend.uses or getattr(cfg, name) == JobConfig.model_fields[name].default:
            continue
        why = backend.ignores.get(name, "the backend does not use it")
        found.append(f"{flag} is ignored by {backend.title}: {why}")
    return found


def estimate(
    cfg: JobConfig,
    *,
    quote: Quote | None = None,
    prices: PriceTable | None = None,
    online: bool = False,
    settings: Mapping[str, Any] | None = None,
    fmt: str | None = None,
    workers: int | None = None,
    memo: CountMemo | None = None,
) -> Estimate:
    """Examples, tokens, epochs, billed tokens and cost of tuning ``cfg.model`` on ``cfg.data``
    (and the validation file's tokens), with the backend's warnings and extras."""
    quote = quote or quote_for(
        cfg.provider, cfg.model, cfg.method, prices=prices, online=online, settings=settings
    )
    counts = measure(cfg.data, quote.counter, fmt=fmt, workers=workers, memo=memo)
    validation = None
    if cfg.validation is not None:
        validation = measure(cfg.validation, quote.counter, workers=workers, memo=memo)
    backend = quote.backend
    budget = None
    if backend.budget_rule is not None:
        budget = backend.budget_rule(
            cfg,
            quote.counter,
            lambda p, c: measure(p, c, workers=workers, memo=memo),
            quote.limit,
        )
    extras = backend.extras(counts, cfg, quote.price) if backend.extras else Extras()
    warnings = [*extras.warnings, *ignored_settings(backend, cfg), *backend.config_warnings(cfg)]
    extras = replace(extras, warnings=warnings)
    return estimate_counts(
        counts,
        cfg,
        price=quote.price,
        counter=quote.counter,
        rules=backend.rules,
        validation=validation,
        extras=extras,
        budget=budget,
        online=not quote.counter.exact and registry.counts_online(cfg.provider),
    )
