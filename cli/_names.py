"""Provider and format names as the CLI shows and accepts them, from the backend registry.

Help texts list the built-in backends without reading plugin metadata (that would slow every
command); error messages list every installed backend, plugins included."""

from __future__ import annotations

from tuneport.providers.builtin import BUILTIN

PROVIDERS = " | ".join(BUILTIN)
PROVIDER_HELP = f"{PROVIDERS}, or an installed plugin's name."
TARGET_HELP = f"canonical | {PROVIDERS} (hosted backends write their service's format)."


def target_for(name: str) -> str:
    """The export format for ``--to NAME`` (see :func:`tuneport.api.export_format`)."""
    from tuneport.api import export_format

    return export_format(name)
