"""Which provider and model a chat/eval target names.

A target is a job-store id (``tp-1a2b3c4d``, a unique prefix, or the job's remote id: the tuned
model comes from the store), a tuned model id (``ft:...``, ``local:ID``, a Vertex endpoint
``projects/.../endpoints/...``), a base model id with ``--provider``, or ``provider:model``
(``openai:gpt-4.1-mini``, as ``eval --model`` writes it). Prefixes are data in
:mod:`tuneport.providers.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tuneport.errors import ConfigError, NotFoundError, mask_url
from tuneport.jobs.store import JobStore, open_store
from tuneport.providers import registry
from tuneport.schemas import JobRecord, JobRef

if TYPE_CHECKING:
    from tuneport.providers.base import Provider

JOB_ID_PREFIX = "tp-"


def settings_of(record: JobRecord) -> dict[str, Any]:
    """The provider settings a job was launched with (secrets were never stored)."""
    options = record.config.get("options") if isinstance(record.config, dict) else None
    return dict(options) if isinstance(options, dict) else {}


def provider_for_record(
    record: JobRecord,
    store: JobStore | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
) -> Provider:
    """Build the backend that runs ``record`` with the settings it was launched with, ``settings``
    (``--set``) laid over them, and the job store (its upload index and job lookups)."""
    stored = settings_of(record)
    merged = {**stored, **dict(settings or {})}
    masked = merged.get("base_url")
    if not isinstance(masked, str) or mask_url(masked) != masked or "***" not in masked:
        return registry.get(record.provider, merged, store=store or open_store())
    # the job was launched against a URL with credentials, stored masked: take the real URL from
    # where it came from (the environment; ``--set base_url=`` is laid over above) if it is the
    # same one, else say so (a masked URL would only get a refusal from the server)
    del merged["base_url"]
    provider = registry.get(record.provider, merged, store=store or open_store())
    if mask_url(str(getattr(provider, "base_url", ""))) != masked:
        raise ConfigError(
            f"job {record.id} was launched at {masked}; its credentials were not stored",
            hint="set the same URL, with its credentials, in the environment variable you used "
            "or pass --set base_url=URL",
        )
    return provider


def ref_of(record: JobRecord) -> JobRef:
    """The provider-side reference of a stored job (error if it was never created remotely)."""
    if record.remote_id is None:
        if record.raw_state == "creating":
            raise NotFoundError(
                f"job {record.id} is being created at {record.provider} by another tuneport "
                "process, or its launch stopped before the provider answered",
                hint=f"wait for it, or run `tuneport jobs watch {record.id}` to complete it",
            )
        raise NotFoundError(
            f"job {record.id} was never created at {record.provider} "
            f"({record.error or record.raw_state or 'no remote id'})",
            hint="launch it again with the same `tuneport train` command",
        )
    return JobRef(provider=record.provider, remote_id=record.remote_id, run_id=record.run_id)


def _from_store(spec: str, store: JobStore | None) -> JobRecord | None:
    if store is None:
        store = open_store()
    try:
        return store.get(spec)
    except NotFoundError:
        return None


def resolve_target(
    spec: str, provider: str | None = None, *, store: JobStore | None = None
) -> tuple[str, str, dict[str, Any]]:
    """``(provider name, model id, provider settings)`` for a chat/eval target."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty chat target", hint="give a job id, a model id or an endpoint")
    if provider is not None and provider not in registry.names():
        raise ConfigError(
            f"unknown provider {provider!r}", hint=f"use --provider {'|'.join(registry.names())}"
        )
    by_prefix = registry.provider_for_model(spec)
    named, sep, rest = spec.partition(":")
    if (
        sep
        and rest
        and by_prefix is None
        and provider in (None, named)
        and named in registry.names()
    ):  # provider:model, e.g. openai:gpt-4.1-mini
        return resolve_target(rest, named, store=store)
    if spec.startswith(JOB_ID_PREFIX) or (by_prefix is None and provider is None):
        record = _from_store(spec, store)
        if record is not None:
            if not record.tuned_model:
                raise NotFoundError(
                    f"job {record.id} has no tuned model yet (state {record.state.value})",
                    hint=f"wait for it with `tuneport jobs watch {record.id}`",
                )
            return record.provider, record.tuned_model, settings_of(record)
        if spec.startswith(JOB_ID_PREFIX):
            raise NotFoundError(
                f"no job {spec!r} in the job store", hint="see `tuneport jobs list` for the ids"
            )
    name = provider or by_prefix
    if name is None:
        raise ConfigError(
            f"cannot tell which provider serves {spec!r}",
            hint=f"pass --provider {'|'.join(registry.names())}",
        )
    return name, spec, {}


def base_model_of(provider: str, model: str, *, store: JobStore | None = None) -> str | None:
    """The base model a tuned ``model`` of ``provider`` was trained from, when a stored job
    produced it (a Vertex endpoint's price is its base model's), else ``None``."""
    jobs = store or open_store()
    for record in jobs.list_jobs(10_000, provider=provider):
        if record.tuned_model == model:
            return record.model
    return None
