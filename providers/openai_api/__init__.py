"""The OpenAI files + fine-tuning + chat protocol, once, for every service that speaks it.

A backend built on it (``openai``, ``azure``) declares a :class:`Service` (:mod:`.service`): who
it is (its :class:`~tuneport.providers.sdk.Service` holds the title, environment variables,
base-URL and error rules), how its SDK client is built (called once, lazily, under a lock), its
job states, request bounds, file limits and the extra body fields its create takes. The
protocol does the rest, on the hosted base (:mod:`.backend`): uploads with lost-reply recovery
(an upload is found again by its content-derived name) and the Uploads API in parts
(:mod:`.files`), create-once (the run id travels in the job's metadata), status / events /
checkpoints and cancel (:mod:`.jobs`), streamed chat with a non-streamed fallback, cleanup of
the uploaded files, a finished job's data given back (:mod:`.port`) and the doctor's key and
server checks.
"""

from __future__ import annotations

from tuneport.providers.openai_api.files import Files
from tuneport.providers.openai_api.jobs import Jobs
from tuneport.providers.openai_api.port import Port
from tuneport.providers.openai_api.service import (
    HYPERPARAMETERS,
    METHOD_TYPES,
    RUN_ID_KEY,
    SEARCH_FILES,
    SEARCH_JOBS,
    SEARCH_SOURCE_JOBS,
    STEP_OF_TOTAL,
    Bounds,
    FileLimits,
    ProtocolOptions,
    Service,
    key_from,
)


class OpenAIProtocol(Files, Jobs, Port):
    """Fine-tune and chat through a service speaking the OpenAI API (:attr:`service`)."""


__all__ = [
    "HYPERPARAMETERS",
    "METHOD_TYPES",
    "RUN_ID_KEY",
    "SEARCH_FILES",
    "SEARCH_JOBS",
    "SEARCH_SOURCE_JOBS",
    "STEP_OF_TOTAL",
    "Bounds",
    "FileLimits",
    "OpenAIProtocol",
    "ProtocolOptions",
    "Service",
    "key_from",
]
