"""Provider name -> implementation, imported on first use.

Importing one backend never imports another (nor torch): entries are import paths.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from tuneport.errors import ConfigError
from tuneport.providers.base import Provider

# name -> "module:factory". The factory takes keyword settings and returns a Provider.
_REGISTRY: dict[str, str] = {
    "openai": "tuneport.providers.openai:OpenAIProvider",
    "vertex": "tuneport.providers.vertex:VertexProvider",
    "local": "tuneport.providers.local.provider:LocalProvider",
}


def names() -> list[str]:
    return list(_REGISTRY)


def register(name: str, target: str) -> None:
    """Add or replace a backend (used by tests and plugins)."""
    _REGISTRY[name] = target


def factory(name: str) -> Callable[..., Provider]:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown provider {name!r}", hint=f"use --provider {'|'.join(_REGISTRY)}"
        ) from None
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    made: Callable[..., Provider] = getattr(module, attr)
    return made


def get(name: str, settings: Mapping[str, Any] | None = None) -> Provider:
    """Build the backend ``name`` with ``settings`` (its own options, from config/flags)."""
    return factory(name)(**dict(settings or {}))


# model-id prefix -> provider name; longest prefix wins. Data, not code: extend with
# register_model_prefix().
_MODEL_PREFIXES: dict[str, str] = {
    "ft:": "openai",
    "gpt-": "openai",
    "local:": "local",
    "projects/": "vertex",
    "gemini-": "vertex",
}


def register_model_prefix(prefix: str, name: str) -> None:
    """Teach :func:`provider_for_model` that ids starting with ``prefix`` belong to ``name``."""
    _MODEL_PREFIXES[prefix] = name


def provider_for_model(model: str) -> str | None:
    """The provider serving ``model`` judged by its id's prefix, or ``None`` if unknown."""
    matches = [p for p in _MODEL_PREFIXES if model.startswith(p)]
    if not matches:
        return None
    return _MODEL_PREFIXES[max(matches, key=len)]
