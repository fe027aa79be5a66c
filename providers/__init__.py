"""Fine-tuning backends behind one Protocol; see :mod:`tuneport.providers.registry`.

``__all__`` is the plugin contract: everything a backend author needs (the :class:`Backend`
descriptor, the :class:`Provider` Protocol and the optional capabilities, the data models, the
shared steps, the rules and counters a descriptor holds, the errors to raise and the job
models) is importable from here, so a plugin imports ``tuneport.providers`` and nothing else of
tuneport (``tests/fakes/plugin_backend.py`` is the example).

The names are loaded on first use, so importing a light submodule (such as
:mod:`tuneport.providers.builtin`) does not load the Protocol and its models."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuneport.errors import (
        AuthError,
        ConfigError,
        InputError,
        JobFailedError,
        NotFoundError,
        ProviderError,
        QuotaError,
        TuneportError,
        UnreachableError,
    )
    from tuneport.pricing.estimate import BudgetFigure, Extras
    from tuneport.pricing.table import ModelPrice
    from tuneport.progress import NullProgress, Progress
    from tuneport.providers.base import (
        Backend,
        BudgetRule,
        ChatOptions,
        Check,
        Checkpoint,
        CheckStatus,
        ConcurrencyLimited,
        ConfigWarnings,
        CounterFactory,
        Exportable,
        ExtrasFactory,
        FindsRuns,
        HasCheckpoints,
        HourlyResource,
        JobLookup,
        KnowsShutdowns,
        Measure,
        MemoryUploads,
        OnlineCounting,
        Pausable,
        PreparedData,
        PriceModel,
        Provider,
        Resumable,
        ReturnsData,
        SourceJob,
        StartsHourly,
        StreamingChat,
        UploadedData,
        UploadIndex,
        base_url_override,
        create_once,
        export_prepared,
        parse_options,
    )
    from tuneport.providers.chat import CompatChat
    from tuneport.providers.errormap import ErrorRule, generic_rules
    from tuneport.providers.hosted import HostedBackend, HostedOptions, SdkBackend
    from tuneport.providers.openai_api import (
        Bounds,
        FileLimits,
        OpenAIProtocol,
        ProtocolOptions,
    )
    from tuneport.providers.openai_api import Service as ProtocolService
    from tuneport.providers.sdk import Service as SdkService
    from tuneport.schemas import (
        ALL_GENERIC,
        GENERIC_SETTINGS,
        AnyRecord,
        Example,
        JobConfig,
        JobEvent,
        JobRecord,
        JobRef,
        JobState,
        JobStatus,
        Message,
        Method,
        PreferenceExample,
    )
    from tuneport.tokens.approx import ScaledTextCounter
    from tuneport.tokens.counter import Counts, TokenCounter
    from tuneport.validation.rules import COMMON_CHAT, COMMON_PREFERENCE, Finding, Rules

# name -> the module it lives in (imported when the name is first used)
_HOMES: dict[str, str] = {
    **dict.fromkeys(
        (
            # the descriptor and the Protocol every backend implements
            "Backend",
            "Provider",
            # what the descriptor's functions are
            "BudgetRule",
            "ConfigWarnings",
            "CounterFactory",
            "ExtrasFactory",
            "Measure",
            "PriceModel",
            # optional capabilities (implement the methods; nothing to subclass)
            "ConcurrencyLimited",
            "Exportable",
            "FindsRuns",
            "HasCheckpoints",
            "KnowsShutdowns",
            "OnlineCounting",
            "Pausable",
            "Resumable",
            "ReturnsData",
            "StartsHourly",
            "StreamingChat",
            # what the methods take and return
            "ChatOptions",
            "Check",
            "CheckStatus",
            "Checkpoint",
            "HourlyResource",
            "PreparedData",
            "SourceJob",
            "UploadedData",
            # what the jobs layer passes in (the ``store`` setting) and the shared steps
            "JobLookup",
            "MemoryUploads",
            "UploadIndex",
            "base_url_override",
            "create_once",
            "export_prepared",
            "parse_options",
        ),
        "tuneport.providers.base",
    ),
    **dict.fromkeys(
        (
            "AuthError",
            "ConfigError",
            "InputError",
            "JobFailedError",
            "NotFoundError",
            "ProviderError",
            "QuotaError",
            "TuneportError",
            "UnreachableError",
        ),
        "tuneport.errors",
    ),
    **dict.fromkeys(
        (
            "ALL_GENERIC",
            "GENERIC_SETTINGS",
            "AnyRecord",
            "Example",
            "JobConfig",
            "JobEvent",
            "JobRecord",
            "JobRef",
            "JobState",
            "JobStatus",
            "Message",
            "Method",
            "PreferenceExample",
        ),
        "tuneport.schemas",
    ),
    **dict.fromkeys(("NullProgress", "Progress"), "tuneport.progress"),
    **dict.fromkeys(("Counts", "TokenCounter"), "tuneport.tokens.counter"),
    "ScaledTextCounter": "tuneport.tokens.approx",
    **dict.fromkeys(
        ("COMMON_CHAT", "COMMON_PREFERENCE", "Finding", "Rules"), "tuneport.validation.rules"
    ),
    **dict.fromkeys(("BudgetFigure", "Extras"), "tuneport.pricing.estimate"),
    "ModelPrice": "tuneport.pricing.table",
    # a hosted backend builds on these (what OpenAI, Azure, Together and Fireworks share)
    **dict.fromkeys(("HostedBackend", "HostedOptions", "SdkBackend"), "tuneport.providers.hosted"),
    "SdkService": "tuneport.providers.sdk:Service",  # a hosted API's facts (SdkBackend.api)
    "CompatChat": "tuneport.providers.chat",  # OpenAI-compatible chat and streaming
    # a service speaking the OpenAI fine-tuning protocol (Azure: providers/azure/service.py)
    **dict.fromkeys(
        ("Bounds", "FileLimits", "OpenAIProtocol", "ProtocolOptions"),
        "tuneport.providers.openai_api",
    ),
    "ProtocolService": "tuneport.providers.openai_api:Service",
    **dict.fromkeys(("ErrorRule", "generic_rules"), "tuneport.providers.errormap"),
}

__all__ = [
    "ALL_GENERIC",
    "COMMON_CHAT",
    "COMMON_PREFERENCE",
    "GENERIC_SETTINGS",
    "AnyRecord",
    "AuthError",
    "Backend",
    "Bounds",
    "BudgetFigure",
    "BudgetRule",
    "ChatOptions",
    "Check",
    "CheckStatus",
    "Checkpoint",
    "CompatChat",
    "ConcurrencyLimited",
    "ConfigError",
    "ConfigWarnings",
    "CounterFactory",
    "Counts",
    "ErrorRule",
    "Example",
    "Exportable",
    "Extras",
    "ExtrasFactory",
    "FileLimits",
    "Finding",
    "FindsRuns",
    "HasCheckpoints",
    "HostedBackend",
    "HostedOptions",
    "HourlyResource",
    "InputError",
    "JobConfig",
    "JobEvent",
    "JobFailedError",
    "JobLookup",
    "JobRecord",
    "JobRef",
    "JobState",
    "JobStatus",
    "KnowsShutdowns",
    "Measure",
    "MemoryUploads",
    "Message",
    "Method",
    "ModelPrice",
    "NotFoundError",
    "NullProgress",
    "OnlineCounting",
    "OpenAIProtocol",
    "Pausable",
    "PreferenceExample",
    "PreparedData",
    "PriceModel",
    "Progress",
    "ProtocolOptions",
    "ProtocolService",
    "Provider",
    "ProviderError",
    "QuotaError",
    "Resumable",
    "ReturnsData",
    "Rules",
    "ScaledTextCounter",
    "SdkBackend",
    "SdkService",
    "SourceJob",
    "StartsHourly",
    "StreamingChat",
    "TokenCounter",
    "TuneportError",
    "UnreachableError",
    "UploadIndex",
    "UploadedData",
    "base_url_override",
    "create_once",
    "export_prepared",
    "generic_rules",
    "parse_options",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name) if name in __all__ else None
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = home.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
