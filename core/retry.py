"""Retries for provider API calls (shared by the OpenAI and Vertex backends).

Policy: **tuneport owns retries, the SDKs do not.** Backends build their SDK clients with
retries switched off (OpenAI ``max_retries=0``; google-genai's default of no retries) and wrap
each call in :func:`call_with_retry`, which uses tenacity with exponential backoff plus jitter,
honours ``retry-after-ms`` / ``retry-after`` headers (capped), and retries 408 / 409 / 429 / 5xx
and connection errors. Retrying in one place keeps the attempt count predictable (no
SDK-retries × tenacity-retries), and lets :func:`call_with_retry` run a *reconcile* step before
re-sending a non-idempotent create whose outcome is unknown (see ``before_retry``).

Quota exhaustion (429 with code ``insufficient_quota``) is not retried: waiting will not help.
Neither is a connection the host refused or a host name that does not resolve
(:func:`is_unreachable`): the request never left this machine, and a real API host that refuses
now refuses a few seconds later too, so retrying only made ``cannot reach`` take ~20 s.

Every retry is announced (:func:`retry_notes`): the CLI prints a progress line on stderr, so a
slow failure is never silent; the first comes after ~1 s.
"""

from __future__ import annotations

import email.utils
import os
import random
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from tuneport.errors import ConfigError

T = TypeVar("T")

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
NO_RETRY_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
MAX_RETRY_AFTER_S = 120.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. ``attempts`` counts the first try."""

    attempts: int = 5
    initial_delay: float = 1.0
    max_delay: float = 30.0
    exp_base: float = 2.0
    jitter: float = 0.5  # up to +50% random extra delay

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Delay before retry ``retry_number`` (1-based) when the server gave no Retry-After."""
        base = min(self.max_delay, self.initial_delay * self.exp_base ** (retry_number - 1))
        return min(self.max_delay, base * (1 + self.jitter * rng()))


DEFAULT_POLICY = RetryPolicy()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error (openai ``status_code``, google-genai ``code``)."""
    for attr in ("status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def error_code_of(exc: BaseException) -> str | None:
    """The provider's machine-readable error code (e.g. ``insufficient_quota``) if any."""
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("code"), str):
            return str(inner["code"])
    return None


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        return {str(k).lower(): str(v) for k, v in dict(headers).items()}
    except (TypeError, ValueError):
        return None


def retry_after(exc: BaseException, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` wins over ``retry-after``)."""
    headers = _headers_of(exc)
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = -1
        if 0 < ms <= MAX_RETRY_AFTER_S * 1000:
            return ms / 1000
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = parsed.timestamp() - now()
    if 0 < seconds <= MAX_RETRY_AFTER_S:
        return seconds
    return None


def is_connection_error(exc: BaseException) -> bool:
    """Connection problems and timeouts, recognised by class name across SDKs and httpx."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names
        & {
            "APIConnectionError",
            "APITimeoutError",
            "ConnectError",
            "ConnectTimeout",
            "ReadTimeout",
            "WriteTimeout",
            "PoolTimeout",
            "RemoteProtocolError",
            "ReadError",
            "WriteError",
            "TimeoutException",
            "NetworkError",
            "ConnectionError",
            "TimeoutError",
        }
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during (SDK error -> httpx -> httpcore -> OSError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 32:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_unreachable(exc: BaseException) -> bool:
    """The connection was refused or the host name does not resolve: the request was never
    sent, and retrying within seconds will not change that (unlike a timeout or a reset)."""
    return any(
        isinstance(cause, ConnectionRefusedError | socket.gaierror) for cause in _causes(exc)
    )


def unreachable_reason(exc: BaseException) -> str:
    """``connection refused`` or ``host name not found`` for an :func:`is_unreachable` error."""
    if any(isinstance(cause, socket.gaierror) for cause in _causes(exc)):
        return "host name not found"
    return "connection refused"


def is_retryable(exc: BaseException) -> bool:
    """Worth retrying: rate limits, server errors, timeouts, dropped connections."""
    if is_unreachable(exc):
        return False
    if is_connection_error(exc):
        return True
    status = status_of(exc)
    if status is None:
        return False
    if status == 429 and error_code_of(exc) in NO_RETRY_CODES:
        return False
    return status in RETRY_STATUS or status >= 500


def outcome_unknown(exc: BaseException) -> bool:
    """The request may have been executed by the server although we got an error."""
    if is_unreachable(exc):  # never sent
        return False
    if is_connection_error(exc):
        return True
    status = status_of(exc)
    return status is not None and (status >= 500 or status == 408)


# --- retry notes ----------------------------------------------------------------------------

_listeners: list[Callable[[str], None]] = []


@contextmanager
def retry_notes(listener: Callable[[str], None]) -> Iterator[None]:
    """While inside, every retry of :func:`call_with_retry` is told to ``listener`` as one line
    (the CLI prints it on stderr)."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def describe(exc: BaseException) -> str:
    """A few words for why a call failed: the HTTP status, else the innermost cause's class."""
    status = status_of(exc)
    if status is not None:
        return f"HTTP {status}"
    if any(isinstance(c, TimeoutError) or "Timeout" in type(c).__name__ for c in _causes(exc)):
        return "timed out"
    names = [type(c).__name__ for c in _causes(exc)]
    return names[-1] if names else type(exc).__name__


def _announce(text: str) -> None:
    for listener in list(_listeners):
        listener(text)


def announce_retry(
    where: str,
    exc: BaseException,
    *,
    attempt: int,
    attempts: int | None = None,
    delay: float | None = None,
) -> None:
    """Tell the :func:`retry_notes` listeners that a call to ``where`` failed with ``exc`` and
    is tried again (try ``attempt`` of ``attempts``, in ``delay`` seconds, where known). Also
    for the retries a library runs itself (google-cloud-storage's uploads)."""
    wait = f" in {delay:.0f} s" if delay is not None else ""
    of = f" of {attempts}" if attempts is not None else ""
    _announce(f"{where}: {describe(exc)}; retrying{wait} (try {attempt}{of})")


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    retryable: Callable[[BaseException], bool] = is_retryable,
    sleep: Callable[[float], None] = time.sleep,
    before_retry: Callable[[BaseException], T | None] | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
    where: str | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying per ``policy``; the last error is re-raised.

    ``before_retry(last_error)`` runs before every retry; when it returns a value that value is
    the result and ``fn`` is not called again. Creates use it to look up the object the failed
    attempt may have created (reconcile by a client-generated id) so a retry never duplicates
    it. ``on_retry(error, delay)`` is told about each wait (for a progress note). With
    ``where`` (e.g. ``OpenAI at https://api.openai.com/v1``) each wait is also announced to the
    :func:`retry_notes` listeners.
    """
    attempts = max(1, policy.attempts)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after(exc) if exc is not None else None
        delay = hinted if hinted is not None else policy.backoff(state.attempt_number)
        if exc is not None and state.attempt_number < attempts:  # a retry follows
            if on_retry is not None:
                on_retry(exc, delay)
            if where:
                announce_retry(
                    where, exc, attempt=state.attempt_number + 1, attempts=attempts, delay=delay
                )
        return delay

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception(retryable),
        sleep=sleep,
        reraise=True,
    )
    last_error: list[BaseException] = []

    def attempt() -> T:
        if last_error and before_retry is not None:
            found = before_retry(last_error[-1])
            if found is not None:
                return found
        try:
            return fn()
        except BaseException as exc:
            last_error.append(exc)
            raise

    result: Any = retrying(attempt)
    return result  # type: ignore[no-any-return]


# --- polling --------------------------------------------------------------------------------

POLL_ENV = "TUNEPORT_POLL_INTERVAL"
DEFAULT_INTERVAL = 2.0


def default_interval() -> float:
    """Base poll interval in seconds: ``$TUNEPORT_POLL_INTERVAL`` or 2."""
    raw = os.environ.get(POLL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            f"{POLL_ENV}={raw!r} is not a number of seconds", hint=f"e.g. {POLL_ENV}=5"
        ) from None
    if value < 0:
        raise ConfigError(
            f"{POLL_ENV} must be >= 0, got {value}", hint=f"e.g. {POLL_ENV}=5, or unset it"
        )
    return value
