"""Server-sent events as the Stainless SDKs (openai, together, fireworks-ai) read a streamed
chat: one ``data: {json}`` event per chunk, then ``data: [DONE]``. The fakes answer a
``stream=True`` chat with an :class:`EventStream`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

USAGE = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}


@dataclass
class EventStream:
    """A server-sent-events answer: ``data: {json}`` per event, then ``data: [DONE]``."""

    events: list[dict[str, Any]]

    def data(self) -> bytes:
        text = "".join(f"data: {json.dumps(e)}\n\n" for e in self.events) + "data: [DONE]\n\n"
        return text.encode()
