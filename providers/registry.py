"""Backend names → descriptors, imported on first use; plugins through entry points.

Built-in backends are listed below as ``"module:OBJECT"`` strings; third-party backends are
found through the ``tuneport.backends`` entry-point group (name = the provider name, value =
``module:OBJECT`` of a :class:`~tuneport.providers.base.Backend`). A descriptor's module is
imported only when its provider is named (or when a command needs every backend, like ``plan``):
never for ``--help`` and never for other providers. Descriptors import no SDK and no torch; the
implementation behind one is imported by :meth:`Backend.provider`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from tuneport.errors import ConfigError, register_secret_env
from tuneport.pricing.table import PriceTable, load_prices
from tuneport.providers.base import Backend, OnlineCounting, Provider
from tuneport.providers.builtin import BUILTIN
from tuneport.tokens.counter import TokenCounter

GROUP = "tuneport.backends"


_EXTRA: dict[str, str] = {}  # added at run time by register() (tests, embedding applications)
_LOADED: dict[str, Backend] = {}


@cache
def _plugins() -> dict[str, str]:
    """Entry points of the ``tuneport.backends`` group (metadata only: nothing is imported)."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def refresh() -> None:
    """Forget loaded descriptors and re-read the entry points (after installing a plugin)."""
    _plugins.cache_clear()
    _LOADED.clear()


def _targets() -> dict[str, str]:
    return {**_plugins(), **BUILTIN, **_EXTRA}


def names() -> list[str]:
    """Every known provider name: built-in first, then plugins (nothing imported)."""
    targets = _targets()
    return [*BUILTIN, *sorted(n for n in targets if n not in BUILTIN)]


def register(name: str, target: str | Backend) -> None:
    """Add or replace a backend: a descriptor or its ``"module:OBJECT"`` import path."""
    _LOADED.pop(name, None)
    if isinstance(target, Backend):
        _load(name, target)
        _EXTRA[name] = f"<registered {name}>"
    else:
        _EXTRA[name] = target


def unregister(name: str) -> None:
    _EXTRA.pop(name, None)
    _LOADED.pop(name, None)


@contextmanager
def registered(name: str, target: str | Backend) -> Iterator[None]:
    """``register`` for the duration of a ``with`` block (tests), restoring what was there."""
    saved = (_EXTRA.get(name), _LOADED.get(name))
    register(name, target)
    try:
        yield
    finally:
        unregister(name)
        if saved[0] is not None:
            _EXTRA[name] = saved[0]
        if saved[1] is not None:
            _LOADED[name] = saved[1]


def unknown(name: str) -> ConfigError:
    return ConfigError(f"unknown provider {name!r}", hint=f"use --provider {'|'.join(names())}")


def backend(name: str) -> Backend:
    """The descriptor of ``name`` (imported on first use); ConfigError if unknown."""
    loaded = _LOADED.get(name)
    if loaded is not None:
        return loaded
    target = _targets().get(name)
    if target is None:
        raise unknown(name)
    module_name, _, attr = target.partition(":")
    try:
        made = getattr(importlib.import_module(module_name), attr or "BACKEND")
    except (ImportError, AttributeError, ValueError) as exc:  # ValueError: a bad descriptor
        raise ConfigError(
            f"cannot load the {name!r} backend ({target}): {exc}",
            hint="reinstall the package that provides it, or remove it",
        ) from None
    if not isinstance(made, Backend):
        raise ConfigError(
            f"{target} is not a tuneport Backend descriptor",
            hint="a `tuneport.backends` entry point must name a Backend object",
        )
    if made.name != name:
        raise ConfigError(
            f"{target} describes backend {made.name!r}, registered as {name!r}",
            hint="make the entry-point name match the descriptor's name",
        )
    return _load(name, made)


def _load(name: str, made: Backend) -> Backend:
    """Keep a loaded descriptor; from now on its credentials are redacted from every message."""
    register_secret_env(*made.secret_env)
    _LOADED[name] = made
    return made


def backends() -> Iterator[Backend]:
    """Every backend's descriptor (imports them all: for commands about every provider)."""
    for name in names():
        yield backend(name)


def get(name: str, settings: Mapping[str, Any] | None = None, *, store: Any = None) -> Provider:
    """Build the backend ``name`` with ``settings``; ``store`` (the job store) is passed on
    for the backend's upload index and job lookups when given."""
    extra = {"store": store} if store is not None else {}
    return backend(name).provider({**dict(settings or {}), **extra})


def provider_for_model(model: str) -> str | None:
    """The provider serving ``model`` judged by its id's prefix (longest wins), or ``None``.

    Built-in backends are asked first; plugins are imported only when no built-in owns the id.
    """
    for group in (list(BUILTIN), [n for n in names() if n not in BUILTIN]):
        matches = [
            (prefix, b.name)
            for b in (backend(n) for n in group)
            for prefix in b.model_prefixes
            if model.startswith(prefix)
        ]
        if matches:
            return max(matches, key=lambda m: len(m[0]))[1]
    return None


def counter_for(
    provider: str,
    model: str,
    *,
    online: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> TokenCounter:
    """The token counter ``provider`` bills ``model`` with (exact where tuneport can be)."""
    described = backend(provider)
    if not online:
        return described.counter(model, dict(settings or {}))
    implementation = described.provider(settings)
    if not isinstance(implementation, OnlineCounting):
        raise ConfigError(
            f"the {provider} backend cannot count tokens online",
            hint="drop --online (offline counts are shown with their error band)",
        )
    return implementation.online_counter(model)


def counts_online(provider: str) -> bool:
    """Whether ``estimate --online`` can count for ``provider`` (its implementation has an
    ``online_counter``); estimates suggest ``--online`` only then."""
    module_name, _, attr = backend(provider).implementation.partition(":")
    try:
        implementation = getattr(importlib.import_module(module_name), attr)
    except Exception:  # an extra not installed: --online would fail too
        return False
    return callable(getattr(implementation, "online_counter", None))


DEFAULT_COUNTER = ("openai", "gpt-4.1-mini")  # stats/curate without --provider/--model


def default_counter(provider: str | None = None, model: str | None = None) -> TokenCounter:
    """The counter for ``provider``/``model`` (default: OpenAI gpt-4.1-mini, exact, offline)."""
    default_provider, default_model = DEFAULT_COUNTER
    if model is None and provider not in (None, default_provider):
        raise ConfigError(
            f"--provider {provider} needs --model to pick a tokenizer",
            hint=f"pass --model too, or leave both out for {default_model}'s tokenizer",
        )
    return counter_for(provider or default_provider, model or default_model)


def load_price_table(
    path: Path | None = None, providers: Iterable[str] | None = None
) -> PriceTable:
    """The price table (built-in, ``path`` or ``$TUNEPORT_PRICES`` over it) with the sections
    that plugin backends ship: those of ``providers`` (loaded here) and of any loaded already."""
    for name in providers or ():
        backend(name)
    sections = {b.name: b.prices for b in _LOADED.values() if b.prices is not None}
    return load_prices(path, sections=sections)
