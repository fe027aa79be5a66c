"""What every part of the Together backend stands on: the SDK client, its settings
problems and the model limits it asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuneport.providers.hosted import SdkBackend
from tuneport.providers.together.errors import API, sdk
from tuneport.providers.together.options import NAME, TogetherOptions

if TYPE_CHECKING:
    from together import Together
    from together.types import FinetuneModelLimits


class TogetherBase(SdkBackend["Together"]):
    """The Together backend's client and settings (the other parts extend it)."""

    name = NAME
    api = API
    options_model = TogetherOptions
    options: TogetherOptions

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limits: dict[str, FinetuneModelLimits] = {}

    # --- plumbing ----------------------------------------------------------------------------

    def settings_problems(self) -> list[tuple[str, str]]:
        url = self._url_problem()
        return [*super().settings_problems(), *([url] if url else [])]

    def _url_problem(self) -> tuple[str, str] | None:
        if not self.base_url.endswith("/v1"):
            return None
        return (
            f"the Together base URL {self.base_url} ends with /v1",
            "give the bare host (e.g. https://api.together.ai): the SDK adds /v1",
        )

    def _make_client(self) -> Together:
        self._require_settings()
        made: Together = sdk().Together(
            api_key=self._api_key(),
            base_url=API.url_override(self.options.base_url),  # None: the SDK's own hosts
            timeout=self.options.timeout,
            max_retries=0,  # tenacity (tuneport.retry) owns retries
        )
        return made

    def model_limits(self, model: str) -> FinetuneModelLimits:
        """Together's limits for tuning ``model`` (context, batch sizes, ranks, epochs)."""
        if model not in self._limits:
            self._model = model
            self._limits[model] = self._call(
                lambda: self.client.fine_tuning.model_limits(model_name=model)
            )
        return self._limits[model]

    def _delete_file(self, file_id: str) -> None:
        self._call(lambda: self.client.files.delete(file_id))
