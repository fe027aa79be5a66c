"""Fine-tuning backends behind one Protocol; see :mod:`tuneport.providers.registry`.

The names below are loaded on first use, so importing a light submodule (such as
:mod:`tuneport.providers.builtin`) does not load the Protocol and its models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuneport.providers.base import ChatOptions, PreparedData, Provider, UploadedData

__all__ = ["ChatOptions", "PreparedData", "Provider", "UploadedData"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tuneport.providers import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
