"""The Vertex backend as tuneport builds it: Gemini tuning on Vertex AI with the datasets staged
in Cloud Storage, put together from the parts in this package."""

from __future__ import annotations

from tuneport.providers.vertex.chat import VertexChat
from tuneport.providers.vertex.cleanup import VertexCleanup
from tuneport.providers.vertex.port import VertexPort


class VertexProvider(VertexPort, VertexCleanup, VertexChat):
    """Tune Gemini models on Vertex AI; datasets are staged in GCS."""


__all__ = ["VertexProvider"]
