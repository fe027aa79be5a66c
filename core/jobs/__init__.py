"""Jobs layer: launch, watch, the job store, chat, plan and the per-backend quote.

Uses backends only through :mod:`tuneport.providers.registry`; the CLI and the public API sit
above it. Import the submodules directly (this package imports nothing, so loading the job store
does not load the launch pipeline).
"""
