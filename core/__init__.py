"""tuneport: one fine-tuning dataset in; validated, priced and launched on any provider.

The public API (typed; see each function's docstring)::

    import tuneport

    records = tuneport.load("data.jsonl")
    report = tuneport.validate("data.jsonl", "vertex", "gemini-2.5-flash")
    cost = tuneport.estimate("data.jsonl", "openai", "gpt-4.1-mini").cost_usd
    rows = tuneport.plan("data.jsonl")
    tuneport.convert("data.jsonl", "vertex", "data.vertex.jsonl")
    job = tuneport.train(tuneport.JobConfig(provider="openai", model="gpt-4.1-mini",
                                            data="data.jsonl"), confirm=lambda est: True)
    tuneport.watch(job.id); tuneport.chat(job.id, "hi")

The names are loaded on first use, so ``import tuneport`` (and the CLI) stays fast. The CLI
(``tuneport.cli``) is a thin layer over the same code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Estimate",
    "JobConfig",
    "JobRecord",
    "Report",
    "TuneportError",
    "__version__",
    "chat",
    "convert",
    "estimate",
    "load",
    "plan",
    "train",
    "validate",
    "watch",
]

# public name -> module that defines it (imported on first access)
_LAZY = {
    "chat": "tuneport.api",
    "convert": "tuneport.api",
    "estimate": "tuneport.api",
    "load": "tuneport.api",
    "plan": "tuneport.api",
    "train": "tuneport.api",
    "validate": "tuneport.api",
    "watch": "tuneport.api",
    "Estimate": "tuneport.schemas",
    "JobConfig": "tuneport.schemas",
    "JobRecord": "tuneport.schemas",
    "Report": "tuneport.schemas",
    "TuneportError": "tuneport.errors",
}

if TYPE_CHECKING:
    from tuneport.api import chat, convert, estimate, load, plan, train, validate, watch
    from tuneport.errors import TuneportError
    from tuneport.schemas import Estimate, JobConfig, JobRecord, Report


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tuneport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
