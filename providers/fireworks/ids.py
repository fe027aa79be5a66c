"""The ids tuneport chooses at Fireworks (resource ids are the client's): datasets by their
bytes, jobs and tuned models by the run, deployments by the model; and Fireworks resource names."""

from __future__ import annotations

import hashlib
import re

from tuneport.schemas import JobConfig

# resource ids: 1-63 of [a-z0-9-] (fireworks SDK training/sdk/fireworks_client.py); starting
# with a letter and not ending with '-' is tuneport's choice, stricter than the SDK
ID_MAX = 63


def digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def dataset_id(sha256: str) -> str:
    """The dataset id of bytes with ``sha256``: the same bytes always name the same dataset."""
    return f"tp-{sha256[:40]}"


def job_id(run_id: str) -> str:
    """The job id of a run: a retry or a re-run of the same run names the same job."""
    return f"tp-{digest(run_id, 24)}"


def slug(text: str) -> str:
    """``text`` as an id fragment: lowercase letters, digits and single hyphens."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def output_model_id(cfg: JobConfig, run_id: str) -> str:
    """``<suffix>-<12 hex of the run id>`` (or the job id): the tuned model's id."""
    if not cfg.suffix or not slug(cfg.suffix):
        return job_id(run_id)
    tag = digest(run_id, 12)
    head = slug(cfg.suffix)[: ID_MAX - len(tag) - 1].strip("-")
    if not head[:1].isalpha():
        head = f"m-{head}"[: ID_MAX - len(tag) - 1].strip("-")
    return f"{head}-{tag}"


def deployment_id(model: str) -> str:
    """The id of the deployment tuneport creates for ``model`` (found again by cleanup)."""
    return f"tp-{digest(model, 24)}"


def short(name: str) -> str:
    """The last part of a resource name (``accounts/A/models/ID`` -> ``ID``)."""
    return name.rstrip("/").rsplit("/", 1)[-1]
