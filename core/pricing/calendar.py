"""The provider calendar: when tuned models stop working and when tuning ends (dated data in
``shutdowns.toml`` with its source), for ``jobs list --remote``, ``doctor`` and ``port``.

A tuned model's dates are its base model's: an OpenAI fine-tune of ``gpt-4o-mini-2024-07-18``
stops with ``gpt-4o-mini``. The longest matching prefix of the base model id wins, so
``gpt-4.1-nano`` is not read as ``gpt-4.1``.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from tuneport.errors import ConfigError


@dataclass(frozen=True)
class Dates:
    """What the calendar says about one base model (``None``: not known)."""

    provider: str
    prefix: str
    shutdown: date | None
    tuning_end: date | None
    new_jobs_end: date | None
    source: str
    as_of: str


@functools.cache
def _table() -> dict[str, Any]:
    path = resources.files("tuneport.pricing").joinpath("shutdowns.toml")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"the built-in calendar shutdowns.toml is unreadable: {exc}",
            hint="reinstall tuneport",
        ) from None


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    return date.fromisoformat(value) if isinstance(value, str) else None


def base_of(model: str) -> str:
    """The base model id inside a tuned model id (``ft:BASE:org:suffix:id`` -> ``BASE``)."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model


def dates_for(provider: str, model: str) -> Dates | None:
    """The calendar's dates for ``model`` (a base or tuned model id) of ``provider``."""
    section = _table().get(provider)
    if not isinstance(section, dict):
        return None
    base = base_of(model)
    matches = [
        m
        for m in section.get("models", [])
        if isinstance(m, dict) and base.startswith(str(m.get("prefix", "\0")))
    ]
    if not matches:
        return None
    best = max(matches, key=lambda m: len(str(m["prefix"])))
    return Dates(
        provider=provider,
        prefix=str(best["prefix"]),
        shutdown=_day(best.get("shutdown")),
        tuning_end=_day(best.get("tuning_end")),
        new_jobs_end=_day(section.get("new_jobs_end")),
        source=str(section.get("source", "")),
        as_of=str(section.get("as_of", "")),
    )
