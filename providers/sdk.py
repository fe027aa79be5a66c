"""What backends built on a Stainless-generated SDK share (``openai``, ``together``,
``fireworks-ai``): the API key and base URL from a setting or the environment, SDK errors mapped
through the backend's :class:`~tuneport.providers.errormap.ErrorRule` table, calls retried by
:mod:`tuneport.retry` (the SDK's own retries are off), and the ``doctor`` key and server checks.

A backend declares one :class:`Service` with its facts and keeps only what is its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Required, TypedDict, TypeVar, Unpack

from pydantic import SecretStr

from tuneport.errors import (
    ConfigError,
    NotFoundError,
    ProviderError,
    TuneportError,
    UnreachableError,
    mask_url,
    redact,
    register_secret,
)
from tuneport.providers.base import Check, base_url_override
from tuneport.providers.errormap import (
    ErrorRule,
    GenericText,
    apply_rules,
    body_message,
    generic_rules,
)
from tuneport.retry import (
    RetryPolicy,
    call_with_retry,
    error_code_of,
    is_retryable,
    is_unreachable,
    status_of,
    unreachable_reason,
)

T = TypeVar("T")


def import_sdk(module: str, title: str, package: str, hint: str) -> Any:
    """The SDK ``module``, or a one-line ConfigError naming what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"the {title} backend needs the `{package}` SDK, which is not installed", hint=hint
        ) from None


def is_connection_error(exc: BaseException) -> bool:
    """A Stainless ``APIConnectionError`` (no reply: refused, reset or timed out)."""
    return any(cls.__name__ == "APIConnectionError" for cls in type(exc).__mro__)


def is_timeout(exc: BaseException) -> bool:
    return any(cls.__name__ == "APITimeoutError" for cls in type(exc).__mro__)


def retryable(exc: BaseException) -> bool:
    """tuneport's retry rule, plus a 200 reply whose body is not JSON (the request may have
    been carried out: creates look the run up before they are sent again)."""
    return isinstance(exc, json.JSONDecodeError) or is_retryable(exc)


def as_datetime(value: object) -> datetime | None:
    """A timestamp from an SDK object: a datetime, Unix seconds or an ISO string (UTC when no
    zone is given); anything else is ``None``."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def learning_rate(explicit: float | None, multiplier: float | None, default: float) -> float | None:
    """The rate to send: ``--set learning_rate`` as given, else ``--learning-rate-multiplier``
    × the service's documented default, else ``None`` (the service decides)."""
    if explicit is not None:
        return explicit
    return multiplier * default if multiplier is not None else None


def api_message(exc: BaseException) -> str:
    """The server's message of an SDK error (its JSON body), else the exception's text."""
    return body_message(getattr(exc, "body", None)) or str(getattr(exc, "message", None) or exc)


class Pages(TypedDict, total=False):
    """Where a :class:`Service` lives: its API, its key page, its status page, and what the
    "cannot reach" fix adds."""

    default_url: Required[str]
    key_url: Required[str]
    url_hint: str
    status_url: str


@dataclass(frozen=True)
class Service:
    """The facts of one hosted API, as the backend's plumbing needs them."""

    title: str  # "Together" (in messages)
    module: str  # the SDK's top-level module: its exceptions are mapped
    key_env: str  # TOGETHER_API_KEY
    url_env: str  # TOGETHER_BASE_URL
    default_url: str
    key_url: str  # where a user gets a key
    rules: tuple[ErrorRule, ...] = ()  # see :meth:`with_rules`
    url_hint: str = ""  # appended to the "cannot reach" fix, e.g. "(the bare host, no /v1)"
    status_url: str = ""

    @classmethod
    def of(cls, title: str, env: str, *, module: str = "", **pages: Unpack[Pages]) -> Service:
        """The service ``title`` whose key and base URL are read from ``{env}_API_KEY`` and
        ``{env}_BASE_URL``; its SDK's module is ``module``, by default the title in lower case."""
        return cls(title, module or title.lower(), f"{env}_API_KEY", f"{env}_BASE_URL", **pages)

    @property
    def key_fix(self) -> str:
        return f"set {self.key_env} to a valid key ({self.key_url})"

    def with_rules(self, *own: ErrorRule, **text: Unpack[GenericText]) -> Service:
        """This service with its error table: its ``own`` rules, then :func:`generic_rules`
        naming its title and status page; ``key_fix`` defaults to :attr:`key_fix`, ``text``
        says the rest."""
        fixes: GenericText = {"key_fix": self.key_fix, **text}
        generic = generic_rules(self.title, status_url=self.status_url, **fixes)
        return replace(self, rules=(*own, *generic))

    # --- settings -----------------------------------------------------------------------------

    def api_key(self, option: SecretStr | None) -> str | None:
        """The key from the ``api_key`` setting, else the environment (registered as a secret
        so that no log or error can show it)."""
        key = option.get_secret_value() if option is not None else os.environ.get(self.key_env)
        register_secret(key)
        if key and any(c.isspace() or not c.isprintable() for c in key):
            source = "the api_key setting" if option is not None else self.key_env
            raise ConfigError(
                f"{source} contains a space, line break or control character (a copy-paste slip?)",
                hint=f"copy the key again ({self.key_url}) without spaces or line breaks",
            )
        if key and not key.isascii():  # an HTTP header cannot carry it (UnicodeEncodeError)
            source = "the api_key setting" if option is not None else self.key_env
            raise ConfigError(
                f"{source} contains a non-ASCII character (a look-alike letter or a typographic "
                "quote?); API keys are plain ASCII",
                hint=f"copy the key again ({self.key_url}), or retype it",
            )
        return key or None

    def base_url(self, option: str | None) -> str:
        return self.url_override(option) or self.default_url

    def url_override(self, option: str | None) -> str | None:
        """The base URL the user set (setting, else environment); ``None``: the SDK's default
        hosts, which may differ per route (Together sends chat to its inference host)."""
        url = base_url_override(option, self.url_env)
        return url.rstrip("/") if url else None

    def store_key(self, name: str, base_url: str) -> str:
        """The uploads index key: ids of one server mean nothing on another (its credentials
        masked: the store never holds them)."""
        return name if base_url == self.default_url else f"{name}@{mask_url(base_url)}"

    def key_problem(self) -> tuple[str, str]:
        return (
            f"{self.key_env} is not set",
            f"export {self.key_env}=... (from {self.key_url}) or --set api_key=...",
        )

    # --- errors and calls ---------------------------------------------------------------------

    def map_error(self, exc: BaseException, *, base_url: str, **values: object) -> TuneportError:
        """One line for an SDK error, by the first matching rule (never showing the key)."""
        where = base_url or self.default_url
        if isinstance(exc, json.JSONDecodeError):
            return ProviderError(
                f"{self.title} at {where} sent a reply that is not JSON (still after retries)",
                hint=f"retry later; if it persists check {self.url_env}",
            )
        if is_connection_error(exc):
            what = "timed out talking to" if is_timeout(exc) else "cannot reach"
            why = f" ({unreachable_reason(exc)})" if is_unreachable(exc) else ""
            fix = f"check the network, or {self.url_env} if you set it"
            return UnreachableError(
                f"{what} {self.title} at {where}{why}",
                hint=f"{fix} {self.url_hint}".rstrip(),
            )
        return apply_rules(
            self.rules,
            status=status_of(exc),
            code=error_code_of(exc),
            message=api_message(exc),
            values=values,
        )

    def unreadable(self, what: str, exc: BaseException | None = None) -> ProviderError:
        """A reply tuneport cannot read (not JSON, fields missing, wrong shape): whether the
        server carried the request out is unknown, so a create is looked up, never repeated."""
        detail = f" ({type(exc).__name__}: {redact(str(exc))[:120]})" if exc is not None else ""
        status = f" (see {self.status_url})" if self.status_url else ""
        error = ProviderError(
            f"{self.title} sent a reply to {what} that tuneport cannot read{detail}",
            hint="run the same command again: tuneport checks what the server did before it "
            f"repeats anything{status}",
        )
        error.outcome_unknown = True
        return error

    def owns(self, exc: BaseException) -> bool:
        """An exception of this service's SDK (or a reply that is not JSON)."""
        return isinstance(exc, json.JSONDecodeError) or (
            type(exc).__module__.split(".")[0] == self.module
        )

    def call(
        self,
        fn: Callable[[], T],
        *,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        base_url: str,
        values: Mapping[str, object],
        before_retry: Callable[[BaseException], T | None] | None = None,
    ) -> T:
        """``fn()`` retried by ``policy``; the SDK's errors come out as one-line tuneport
        errors. ``before_retry`` may look a create up again and return its result instead."""
        try:
            return call_with_retry(
                fn,
                policy=policy,
                retryable=retryable,
                sleep=sleep,
                before_retry=before_retry,
                where=f"{self.title} at {base_url or self.default_url}",
            )
        except Exception as exc:
            if self.owns(exc):
                raise self.map_error(exc, base_url=base_url, **values) from None
            raise

    # --- doctor ------------------------------------------------------------------------------

    def key_check(self, option: SecretStr | None) -> Check:
        """``ok`` when a key is set (never shown), ``skip`` when the backend is not set up."""
        if not self.api_key(option):
            return Check(
                "API key",
                "skip",
                f"{self.key_env} is not set: the {self.title} backend is not configured",
                fix=f"export {self.key_env}=... (from {self.key_url})",
            )
        source = "the api_key setting" if option is not None else self.key_env
        return Check("API key", "ok", f"set (from {source})")

    def probe(
        self,
        url: str,
        key: str,
        timeout: float,
        *,
        params: Mapping[str, str | int] | None = None,
        what: str = "key accepted",
    ) -> Check:
        """One authenticated GET: ``fail`` when unreachable or the key is refused, ``warn`` on a
        server error, else ``ok``. Any other answer proves the server and the key."""
        import httpx

        try:
            answer = httpx.get(
                url, headers={"Authorization": f"Bearer {key}"}, params=params, timeout=timeout
            )
        except httpx.HTTPError as exc:
            fix = f"check the network, or {self.url_env} if you set it {self.url_hint}"
            return Check(
                "server", "fail", f"cannot reach {url}: {type(exc).__name__}", fix=fix.rstrip()
            )
        if answer.status_code in (401, 403):
            return Check(
                "server",
                "fail",
                f"{url} rejected the key ({answer.status_code})",
                fix=self.key_fix,
            )
        if answer.status_code >= 500:
            fix = f"retry later; see {self.status_url}" if self.status_url else ""
            return Check("server", "warn", f"{url} answered {answer.status_code}", fix=fix)
        if answer.status_code == 404:  # a compatible server may lack the route: not fatal
            return Check(
                "server",
                "warn",
                f"{url} answered 404: reachable, but is it the {self.title} API?",
                fix=f"check {self.url_env} {self.url_hint}".rstrip(),
            )
        return Check("server", "ok", f"{url} reachable, {what}")


__all__ = [
    "Service",
    "api_message",
    "as_datetime",
    "import_sdk",
    "is_connection_error",
    "learning_rate",
    "retryable",
]


def download_file(
    read: Callable[[], Any], out: Path, *, title: str, base_url: str, ref: str
) -> None:
    """Write the bytes of an uploaded file (``read`` calls the SDK's ``files.content``, retried
    by the backend) to ``out``; a file the service no longer holds is one line (port's fetch)."""
    try:
        reply = read()
    except NotFoundError:
        raise NotFoundError(
            f"{title} at {base_url} no longer holds file {ref!r} (deleted?)",
            hint="port from a copy of the data instead: `tuneport train` with the file",
        ) from None
    out.write_bytes(reply.read())
