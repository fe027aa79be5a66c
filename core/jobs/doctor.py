"""`tuneport doctor`: is each backend ready to use, and how old are the prices?

Each backend checks itself (:meth:`~tuneport.providers.base.Provider.doctor`: credentials
present, service reachable, packages and hardware); this module adds what the
descriptor says (the environment variables it reads: set or not, never their values) and the
age of its price-table entries. A backend is *configured* when at least one of its checks is not
``skip``, *usable* when none fails; the doctor passes when every configured backend is usable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from tuneport.errors import TuneportError
from tuneport.providers import registry
from tuneport.providers.base import Check

DEFAULT_TIMEOUT = 3.0  # seconds per network check
STALE_AFTER_DAYS = 180  # price entries older than this are worth re-checking


@dataclass
class BackendHealth:
    name: str
    title: str
    checks: list[Check]
    env: dict[str, bool] = field(default_factory=dict)  # variable -> set?

    @property
    def configured(self) -> bool:
        return any(c.status != "skip" for c in self.checks)

    @property
    def usable(self) -> bool:
        return self.configured and not any(c.status == "fail" for c in self.checks)

    @property
    def verdict(self) -> str:
        if not self.configured:
            return "not configured"
        return "ready" if self.usable else "not usable"


def price_age(name: str, today: date) -> Check:
    """The oldest ``as_of`` of ``name``'s price entries, as a check (``warn`` when stale)."""
    try:
        entries = [e for e in registry.load_price_table(providers=[name]).entries()]
    except TuneportError as exc:
        return Check("prices", "fail", exc.message, exc.hint)
    dated = [date.fromisoformat(e.as_of) for e in entries if e.provider == name]
    if not dated:
        return Check("prices", "warn", "no price entries", "add them with --prices FILE")
    oldest = min(dated)
    age = (today - oldest).days
    unverified = sum(1 for e in entries if e.provider == name and e.unverified)
    note = f"; {unverified} unverified" if unverified else ""
    if age > STALE_AFTER_DAYS:
        return Check(
            "prices",
            "warn",
            f"as of {oldest} ({age} days old{note})",
            fix="check the provider's pricing page; override with --prices FILE",
        )
    return Check("prices", "ok", f"as of {oldest} ({age} days old{note})")


def diagnose(
    names: Iterable[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    today: date | None = None,
) -> list[BackendHealth]:
    """The health of each backend in ``names`` (default: every known backend)."""
    day = today or date.today()
    report = []
    for name in names or registry.names():
        described = registry.backend(name)
        try:
            provider = described.provider({})
        except TuneportError as exc:
            checks = [Check("setup", "fail", exc.message, exc.hint)]
        else:
            try:
                checks = list(provider.doctor(timeout))
            except TuneportError as exc:  # e.g. a base URL that is not a URL
                checks = [Check("setup", "fail", exc.message, exc.hint)]
            if not checks:
                checks = [Check("readiness", "skip", "the backend has no readiness checks")]
        health = BackendHealth(
            name=name,
            title=described.title,
            checks=checks,
            env={var: bool(os.environ.get(var)) for var in described.env},
        )
        if health.configured:
            health.checks.append(price_age(name, day))
        soon = stopping(name, day)
        if soon is not None:
            health.checks.append(soon)
        report.append(health)
    return report


def stopping(name: str, today: date) -> Check | None:
    """A ``warn`` naming the tuned models of ``name`` in the job store that stop working
    within 60 days (the dated calendar, ``shutdowns.toml``), else ``None``."""
    from tuneport.jobs.inventory import WARN_WITHIN_DAYS, stopping_soon
    from tuneport.jobs.store import open_store

    try:
        soon = [s for s in stopping_soon(open_store(), today) if s.provider == name]
    except TuneportError:
        return None
    if not soon:
        return None
    first = soon[0]
    more = f" and {len(soon) - 1} more" if len(soon) > 1 else ""
    verb = "stopped" if first.day < today else "stops"
    return Check(
        "tuned models",
        "warn",
        f"{first.tuned_model} (job {first.job_id}) {verb} working on {first.day}{more}, "
        f"within {WARN_WITHIN_DAYS} days ({first.source})",
        fix=f"move it: `tuneport port {first.job_id} --to PROVIDER[:MODEL]`",
    )
