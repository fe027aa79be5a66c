"""The one exception hierarchy of tuneport.

Every error a user can cause or fix is a :class:`TuneportError`. The CLI turns it into a
single line (``error: <where>: <what> (fix: <hint>)``) and the documented exit code; anything
else escaping is a bug and may show a traceback.

Exit codes (documented in the README):

====  ===========================================================
0     success / data valid
1     problems found (``validate``) or the watched job failed
2     unusable input: missing/unreadable file, unknown format
3     configuration error: bad flags, job file, missing credentials
4     provider error: the remote API or the local trainer refused
5     budget guard: the estimate exceeds ``--max-cost``
130   interrupted (Ctrl-C); remote jobs keep running
====  ===========================================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_INPUT = 2
EXIT_CONFIG = 3
EXIT_PROVIDER = 4
EXIT_BUDGET = 5
EXIT_INTERRUPTED = 130


class TuneportError(Exception):
    """Base class. ``message`` says what went wrong, ``hint`` what to do next."""

    exit_code: int = EXIT_PROVIDER
    # True when a request may have been carried out although it failed (a lost or unreadable
    # reply): a create must then be looked up, not repeated
    outcome_unknown: bool = False

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None) -> None:
        super().__init__(message)
        self.message = redact(message)
        self.hint = redact(hint) if hint else None
        self.where = where

    def one_line(self) -> str:
        """The message as the CLI prints it: one line, no traceback, no secrets."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text} (fix: {self.hint})"
        return " ".join(text.split())

    def lines(self) -> list[str]:
        """One line per problem (a combined error has several; see :class:`Collector`)."""
        return [self.one_line()]

    def __str__(self) -> str:
        return self.one_line()

    def __reduce__(self) -> tuple[object, ...]:
        # keep hint and where across processes (worker pools pickle the errors they raise)
        return (_rebuild, (type(self), self.message, self.hint, self.where))


def _rebuild(
    cls: type[TuneportError], message: str, hint: str | None, where: str | None
) -> TuneportError:
    error = cls.__new__(cls)
    TuneportError.__init__(error, message, hint=hint, where=where)
    return error


class InputError(TuneportError):
    """The data file is missing, unreadable or in no format tuneport knows."""

    exit_code = EXIT_INPUT


class ConfigError(TuneportError):
    """Flags, job file, price table or credentials are wrong or missing.

    ``separate`` holds the errors a combined one stands for (:func:`combine`): the CLI prints
    each on its own line.
    """

    exit_code = EXIT_CONFIG

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        where: str | None = None,
        separate: Sequence[TuneportError] = (),
    ) -> None:
        super().__init__(message, hint=hint, where=where)
        self.separate = list(separate)

    def lines(self) -> list[str]:
        if len(self.separate) > 1:
            return [e.one_line() for e in self.separate]
        return [self.one_line()]


class ProviderError(TuneportError):
    """A provider (remote API or local trainer) refused or failed."""

    exit_code = EXIT_PROVIDER


class AuthError(ProviderError):
    """Credentials rejected."""


class UnreachableError(ProviderError):
    """The service cannot be reached (refused, unknown host, or no answer after retries): every
    further call to it would fail alike."""


class QuotaError(ProviderError):
    """Rate limit or quota exhausted after retries."""


class NotFoundError(ProviderError):
    """The job, file or model does not exist at the provider (or in the job store)."""


class JobFailedError(ProviderError):
    """A watched job ended in ``failed``."""

    exit_code = EXIT_PROBLEMS


class JobPausedError(ProviderError):
    """A watched job is paused: it does not go on until it is resumed, so watching stops."""

    exit_code = EXIT_PROBLEMS


class BudgetError(TuneportError):
    """The estimated cost exceeds ``--max-cost``."""

    exit_code = EXIT_BUDGET


def require_extra(module: str, extra: str, what: str) -> None:
    """A :class:`ConfigError` naming the extra to install when ``module`` cannot be imported.

    ``what`` says what needs it, e.g. ``"--plot"``. Call it before any output is written, so a
    core-only install stops with ``pip install 'tuneport[EXTRA]'`` and nothing half done.
    """
    import importlib.util
    import sys

    if module in sys.modules:
        found = sys.modules[module] is not None
    else:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
    if not found:
        raise ConfigError(
            f"{what} needs the optional package {module!r}, which is not installed",
            hint=f"pip install 'tuneport[{extra}]'",
        )


# --- every problem at once ------------------------------------------------------------------


def _flatten(errors: Iterable[TuneportError]) -> list[TuneportError]:
    flat: list[TuneportError] = []
    for error in errors:
        inner = error.separate if isinstance(error, ConfigError) else []
        flat.extend(inner if len(inner) > 1 else [error])
    return flat


def combine(errors: Sequence[TuneportError], *, where: str | None = None) -> TuneportError:
    """One error standing for all of ``errors`` (each kept in ``separate``, one line each).

    A single error is returned as it is. The combined error is a :class:`ConfigError` whose exit
    code is the one the errors share, else :data:`EXIT_CONFIG`.
    """
    flat = _flatten(errors)
    if not flat:
        raise ValueError("combine() needs at least one error")
    if len(flat) == 1:
        return flat[0]
    hints = list(dict.fromkeys(e.hint for e in flat if e.hint))
    combined = ConfigError(
        f"{len(flat)} problems: " + "; ".join(e.message for e in flat),
        hint="; ".join(hints) or None,
        where=where,
        separate=flat,
    )
    codes = {e.exit_code for e in flat}
    combined.exit_code = codes.pop() if len(codes) == 1 else EXIT_CONFIG
    return combined


class Collector:
    """Runs checks and keeps every :class:`ConfigError` / :class:`InputError` they raise, so a
    command reports all problems of its flags, job file and settings at once::

        problems = Collector()
        cfg = problems.check(lambda: build(...))      # None when it failed
        problems.check(lambda: backend_options(...))
        problems.raise_if_any()                       # one combined error, one line each

    Any check may add problems (schema bounds, provider options, file paths, price lookups): the
    mechanism does not care where they come from.
    """

    catches: tuple[type[TuneportError], ...] = ()

    def __init__(self, *catches: type[TuneportError]) -> None:
        self.catches = catches or (ConfigError, InputError)
        self.errors: list[TuneportError] = []

    def add(self, error: TuneportError) -> None:
        self.errors.append(error)

    def check(self, fn: Callable[[], T]) -> T | None:
        """``fn()``; ``None`` (with the error kept) when it raises one of the caught kinds."""
        try:
            return fn()
        except self.catches as exc:
            self.errors.append(exc)
            return None

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self, *, where: str | None = None) -> None:
        if self.errors:
            raise combine(self.errors, where=where)


# --- secrets -----------------------------------------------------------------------------------

# credentials inside URLs: the user:password@ part, and secret-looking query parameters
_URL_SECRETS = [
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#@'\"<>]+(?=@)"),
    re.compile(
        r"(?i)([?&;](?:api[-_]?key|key|(?:access[-_]?|id[-_]?|refresh[-_]?)?token|secret|"
        r"client[-_]?secret|password|passwd|pwd|sig|signature|auth|code)=)[^&#\s'\"<>]+"
    ),
]
_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),  # OpenAI keys (sk-, sk-proj-, sk-svcacct-)
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{8,}"),
    re.compile(r"ya29\.[A-Za-z0-9._\-]+"),  # Google OAuth access tokens
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    *_URL_SECRETS,
]
# environment variables whose values are credentials: the engine's own (the Hugging Face Hub's
# token, read by tokenizer downloads) and those each backend's descriptor declares
# (``Backend.secret_env``), added by the registry as it loads the descriptor
_secret_env: set[str] = {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
_extra_secrets: set[str] = set()


def register_secret_env(*names: str) -> None:
    """Hide the values of the environment variables ``names`` (read at each :func:`redact`)."""
    _secret_env.update(names)


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. a key passed by flag) so :func:`redact` hides it."""
    if value and len(value) >= 6:
        _extra_secrets.add(value)


def _known_secrets() -> Iterable[str]:
    for name in sorted(_secret_env):
        value = os.environ.get(name)
        if value and len(value) >= 6:
            yield value
    yield from _extra_secrets


def mask_url(url: str) -> str:
    """``url`` with its credentials masked: ``http://u:pw@host/v1?key=k`` becomes
    ``http://***@host/v1?key=***``. :func:`redact` applies the same to any text."""
    for pattern in _URL_SECRETS:
        url = pattern.sub(lambda m: m.group(1) + "***", url)
    return url


def redact(text: str) -> str:
    """Replace anything that looks like a credential with ``***``."""
    # longest first: a secret that contains a shorter one must not be left half shown
    for secret in sorted(set(_known_secrets()), key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text
