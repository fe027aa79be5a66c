"""The settings of the Vertex backend and the defaults it falls back on (cheap to import: the
descriptor lists the settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tuneport.providers.base import MAX_WAIT_S

DEFAULT_LOCATION = "us-central1"
TUNING_REGIONS = "us-central1, europe-west4"  # shown in hints; the API decides
TOKEN_ENV = "TUNEPORT_VERTEX_ACCESS_TOKEN"
BASE_URL_ENV = "GOOGLE_VERTEX_BASE_URL"


class VertexOptions(BaseModel):
    """Settings of the Vertex backend (``--set key=value`` or ``options:`` in a job file)."""

    model_config = ConfigDict(extra="forbid")

    project: str | None = None
    location: str | None = None
    bucket: str | None = None  # NAME or gs://NAME/prefix where datasets are staged
    credentials_file: Path | None = None  # service-account / ADC JSON file
    access_token: SecretStr | None = None  # an OAuth access token (never printed)
    base_url: str | None = None  # default: $GOOGLE_VERTEX_BASE_URL, else the SDK's
    adapter_size: Literal[1, 2, 4, 8, 16, 32] | None = None
    beta: float | None = Field(default=None, gt=0)  # preference tuning only
    labels: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    export_last_checkpoint_only: bool | None = None
    timeout: float = Field(default=120.0, gt=0, le=MAX_WAIT_S)  # seconds per HTTP request
    max_attempts: int = Field(default=5, ge=1, le=20)
    chunk_size: int = Field(default=8 * 1024 * 1024, gt=0)  # GCS resumable chunk (256 KiB units)
    # cleanup: wait for undeploy/delete
    operation_timeout: float = Field(default=1800.0, gt=0, le=MAX_WAIT_S)


__all__ = ["BASE_URL_ENV", "DEFAULT_LOCATION", "TOKEN_ENV", "TUNING_REGIONS", "VertexOptions"]
