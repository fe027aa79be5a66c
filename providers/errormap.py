"""Data-driven mapping of a service's API errors to one-line tuneport errors.

Every hosted backend declares a tuple of :class:`ErrorRule`; :func:`apply_rules` picks the first
rule whose criteria all hold and fills its message and fix. Backends keep only their rules (the
facts) and how they read status, code and message from their SDK's exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuneport.errors import TuneportError, redact


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


__all__ = ["ErrorRule", "apply_rules", "body_message", "one_line"]
