"""The token-counter interface shared by validation, estimates, stats and curation.

Implementations live in :mod:`tuneport.tokens` (``counter_for(provider, model)``).
"""

from __future__ import annotations

from typing import Protocol

from tuneport.schemas import Example, PreferenceExample


class TokenCounter(Protocol):
    """Counts the tokens one record costs for one provider/model.

    ``exact`` is false for approximations; ``error_band`` is then the relative uncertainty
    (0.15 = ±15%) that every output must show next to the figure.
    """

    exact: bool
    error_band: float | None
    label: str  # e.g. "tiktoken o200k_base", "approx chars/4 (±25%)"

    def count(self, record: Example | PreferenceExample) -> int:
        """Tokens of the whole record as billed for training (prompt + completions + tools)."""
        ...

    def count_text(self, text: str) -> int:
        """Tokens of a bare text (for per-role statistics)."""
        ...
