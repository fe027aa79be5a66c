"""Provider and format names as the CLI shows and accepts them, from the backend registry.

Help texts list the built-in backends without reading plugin metadata (that would slow every
command); error messages list every installed backend, plugins included."""

from __future__ import annotations

from tuneport.providers.builtin import BUILTIN

PROVIDERS = " | ".join(BUILTIN)
PROVIDER_HELP = f"{PROVIDERS}, or an installed plugin's name."
TARGET_HELP = f"canonical | {PROVIDERS} (hosted backends write their service's format)."


def target_for(name: str) -> str:
    """The export format for ``--to NAME``: a format name as it is, a backend's name as the
    format its descriptor exports (Together and Fireworks take OpenAI's chat JSONL)."""
    from tuneport.data.exporters import EXPORTERS
    from tuneport.providers import registry

    if name in EXPORTERS:
        return name
    if name in registry.names():
        return registry.backend(name).target
    from tuneport.errors import InputError

    choices = ", ".join(["canonical", *registry.names()])
    raise InputError(f"unknown target {name!r}", hint=f"use one of: {choices}")
