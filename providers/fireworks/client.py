"""The Fireworks client and what every part of the backend uses: the account, its settings
problems, the SDK client (built once, with the SDK's own retries off) and lookups that may find
nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from tuneport.errors import NotFoundError
from tuneport.providers.fireworks import NAME
from tuneport.providers.fireworks.errors import ACCOUNT_FIX, API, sdk
from tuneport.providers.fireworks.options import FireworksOptions
from tuneport.providers.hosted import SdkBackend

if TYPE_CHECKING:
    from fireworks import Fireworks

T = TypeVar("T")


class FireworksBase(SdkBackend["Fireworks"]):
    """The plumbing of :class:`~tuneport.providers.fireworks.provider.FireworksProvider`
    (a job store passed as ``store`` goes unused: datasets are named by their content)."""

    name = NAME
    api = API
    options_model = FireworksOptions
    options: FireworksOptions

    @property
    def account(self) -> str:
        return self.options.account_id or os.environ.get("FIREWORKS_ACCOUNT_ID") or ""

    def settings_problems(self) -> list[tuple[str, str]]:
        problems = super().settings_problems()
        if not self.account:
            problems.append(("FIREWORKS_ACCOUNT_ID is not set", ACCOUNT_FIX))
        return problems

    def _make_client(self) -> Fireworks:
        self._require_settings()
        made: Fireworks = sdk().Fireworks(
            api_key=self._api_key(),
            account_id=self.account,
            # None unless set: the SDK sends chat to its inference path only when the base
            # URL is not overridden (resources/chat/completions.py)
            base_url=self.api.url_override(self.options.base_url),
            timeout=self.options.timeout,
            max_retries=0,  # tenacity (tuneport.retry) owns retries
        )
        return made

    def _error_values(self) -> dict[str, object]:
        return {**super()._error_values(), "account": self.account or "ACCOUNT"}

    def _get_or_none(self, fn: Callable[[], T]) -> T | None:
        try:
            return self._call(fn)
        except NotFoundError:
            return None

    def _full_model(self, model: str) -> str:
        return model if model.startswith("accounts/") else f"accounts/{self.account}/models/{model}"
