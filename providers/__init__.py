"""Fine-tuning backends behind one Protocol; see :mod:`tuneport.providers.registry`."""

from tuneport.providers.base import ChatOptions, PreparedData, Provider, UploadedData

__all__ = ["ChatOptions", "PreparedData", "Provider", "UploadedData"]
