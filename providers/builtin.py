"""The backends that ship with tuneport: name -> ``module:OBJECT`` of each one's descriptor.

Kept apart from :mod:`tuneport.providers.registry` and importing nothing, so the CLI can name
the backends in its help without loading any of them."""

BUILTIN: dict[str, str] = {
    "openai": "tuneport.providers.openai:BACKEND",
    "vertex": "tuneport.providers.vertex:BACKEND",
    "local": "tuneport.providers.local:BACKEND",
    "together": "tuneport.providers.together:BACKEND",
    "fireworks": "tuneport.providers.fireworks:BACKEND",
    "azure": "tuneport.providers.azure:BACKEND",
}

__all__ = ["BUILTIN"]
