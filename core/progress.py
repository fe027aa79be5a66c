"""One small callback interface for long operations; the CLI renders it with rich."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress of a long operation (upload, conversion, training, polling)."""

    def start(self, task: str, total: int | None = None) -> None:
        """A new phase begins; ``total`` in its own units (bytes, rows, steps) if known."""

    def advance(self, amount: int = 1) -> None:
        """``amount`` more units of the current phase are done."""

    def note(self, text: str) -> None:
        """A one-line message to show the user."""

    def finish(self) -> None:
        """The current phase is over."""


class NullProgress:
    """Ignores everything: the default for library callers and tests."""

    def start(self, task: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass
