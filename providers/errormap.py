"""Data-driven mapping of a service's API errors to one-line tuneport errors.

Every hosted backend declares a tuple of :class:`ErrorRule`; :func:`apply_rules` picks the first
rule whose criteria all hold and fills its message and fix. Backends keep only their rules (the
facts) and how they read status, code and message from their SDK's exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Required, TypedDict

from tuneport.errors import (
    AuthError,
    NotFoundError,
    ProviderError,
    QuotaError,
    TuneportError,
    redact,
)


@dataclass(frozen=True)
class ErrorRule:
    """An API error (HTTP ``status``, the service's ``code``, message fragments) -> a
    tuneport error class, a one-line message and the fix.

    Empty criteria match anything; ``contains`` matches case-insensitively. A rule with both
    ``codes`` and ``contains`` matches when either does (the code when the service sends one,
    else its message's wording). ``message`` and
    ``hint`` are :meth:`str.format` templates: ``{msg}`` is the server's message (one line,
    secrets redacted), ``{status}`` the HTTP status, any other field is what the backend passes
    to :func:`apply_rules`.
    """

    kind: type[TuneportError]
    message: str
    hint: str
    status: frozenset[int] = frozenset()
    codes: frozenset[str] = frozenset()
    contains: tuple[str, ...] = ()

    def matches(self, status: int | None, code: str | None, text: str) -> bool:
        if self.status and status not in self.status:
            return False
        if not (self.codes or self.contains):
            return True
        low = text.lower()
        return code in self.codes or any(c in low for c in self.contains)


def one_line(text: object, limit: int = 400) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def body_message(body: object) -> str | None:
    """The message of a JSON error body: ``{"error": {"message": …}}`` (OpenAI style) or
    ``{"message": …}`` (gRPC-gateway style); a non-empty text body as it is."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        return None
    if isinstance(body, str) and body.strip():
        return body
    return None


def apply_rules(
    rules: Sequence[ErrorRule],
    *,
    status: int | None,
    code: str | None,
    message: str,
    match_text: str | None = None,
    values: Mapping[str, object] | None = None,
) -> TuneportError:
    """The error of the first rule in ``rules`` matching ``status``/``code`` and the text
    (``match_text``, default the message); ``values`` fill the templates' other fields. The
    last rule of every table should match everything."""
    msg = one_line(redact(message or code or "no message"))
    fields: dict[str, object] = {"status": status if status is not None else "?", **(values or {})}
    fields["msg"] = msg
    text = msg if match_text is None else redact(match_text)
    for rule in rules:
        if rule.matches(status, code, text):
            return rule.kind(rule.message.format(**fields), hint=rule.hint.format(**fields))
    raise AssertionError("no error rule matched; end every table with a catch-all rule")


def generic_rules(
    title: str,
    *,
    status_url: str,
    key_fix: str,
    denied_fix: str,
    rate_fix: str = "wait a few minutes and run the command again",
    not_found_fix: str = "check the id (see `tuneport jobs list`)",
    refused_fix: str = "check the flags and the job file",
    key_message: str = "",
    denied_message: str = "",
    rate_message: str = "",
    rate_status: frozenset[int] = frozenset({429}),
) -> tuple[ErrorRule, ...]:
    """The rules every hosted API needs, in the order they must be tried after the backend's
    own: a refused key (401), denied access (403), a rate limit still hit after retries (429),
    not found (404), a server error still failing after retries (5xx) and the catch-all.

    ``title`` names the service in every message; the ``*_fix`` texts say what to do, the
    ``*_message`` texts replace the default wording where a service says more (templates as
    in :class:`ErrorRule`)."""
    return (
        ErrorRule(
            AuthError,
            key_message or f"{title} rejected the API key",
            key_fix,
            status=frozenset({401}),
        ),
        ErrorRule(
            AuthError,
            denied_message or f"{title} denied access: {{msg}}",
            denied_fix,
            status=frozenset({403}),
        ),
        ErrorRule(
            QuotaError,
            rate_message or f"{title} rate limit still hit after retries: {{msg}}",
            rate_fix,
            status=rate_status,
        ),
        ErrorRule(NotFoundError, f"{title}: not found: {{msg}}", not_found_fix, status=_NOT_FOUND),
        ErrorRule(
            ProviderError,
            f"{title} server error {{status}} (still failing after retries): {{msg}}",
            f"retry later; see {status_url}",
            status=_SERVER,
        ),
        ErrorRule(ProviderError, f"{title} refused the request ({{status}}): {{msg}}", refused_fix),
    )


class GenericText(TypedDict, total=False):
    """What a service says in :func:`generic_rules` beyond its title and status page."""

    key_fix: str
    denied_fix: Required[str]
    rate_fix: str
    not_found_fix: str
    refused_fix: str
    key_message: str
    denied_message: str
    rate_message: str
    rate_status: frozenset[int]


def rule(
    kind: type[TuneportError],
    message: str,
    hint: str,
    *,
    status: Iterable[int] = (),
    codes: Iterable[str] = (),
    contains: Iterable[str] = (),
) -> ErrorRule:
    """An :class:`ErrorRule` from plain iterables of its criteria."""
    return ErrorRule(kind, message, hint, frozenset(status), frozenset(codes), tuple(contains))


def untunable_model(
    fix: str,
    *,
    where: str = "",
    status: Iterable[int] = (400, 404),
    codes: Iterable[str] = (),
    contains: Iterable[str] = (),
) -> ErrorRule:
    """The service will not fine-tune ``{model}`` (``where``: on what, e.g. " on Together")."""
    message = f"model {{model}} cannot be fine-tuned{where}: {{msg}}"
    return rule(NotFoundError, message, fix, status=status, codes=codes, contains=contains)


def validate_fix(provider: str, *, then: str = "fix what it reports", flags: str = "") -> str:
    """The fix for data or a request the service refused: tuneport's own check first."""
    return f"run `tuneport validate DATA --provider {provider}{flags}` and {then}"


def refused_file(
    title: str,
    provider: str,
    *,
    status: Iterable[int] = (400,),
    codes: Iterable[str] = (),
    contains: Iterable[str] = (),
) -> ErrorRule:
    """The service refused the training file (its format, its examples)."""
    message = f"{title} refused the training file: {{msg}}"
    return rule(
        ProviderError,
        message,
        validate_fix(provider),
        status=status,
        codes=codes,
        contains=contains,
    )


def not_serving(
    title: str,
    where: str,
    fix: str,
    *,
    status: Iterable[int] = (400, 403, 404),
    codes: Iterable[str] = (),
    contains: Iterable[str] = (),
) -> ErrorRule:
    """Chat with a tuned model that the service serves only from ``where`` (a deployment, a
    dedicated endpoint) while none is running."""
    message = f"{title} serves {{model}} only from {where}, and none is running"
    return rule(ProviderError, message, fix, status=status, codes=codes, contains=contains)


_NOT_FOUND = frozenset({404})
_SERVER = frozenset(range(500, 600))

__all__ = [
    "ErrorRule",
    "GenericText",
    "apply_rules",
    "body_message",
    "generic_rules",
    "not_serving",
    "one_line",
    "refused_file",
    "rule",
    "untunable_model",
    "validate_fix",
]
