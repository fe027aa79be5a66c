"""What the hosted providers' tests (Together, Fireworks, OpenAI) share: a progress recorder,
an injected clock, JSONL training files written as the backends' ``prepare`` would, and strict
checks of request bodies against the SDKs' own ``TypedDict`` types."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, with_config

from tuneport.providers.base import PreparedData


class Recorder:
    """A :class:`~tuneport.progress.Progress` that remembers what it was told."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int | None]] = []
        self.advanced = 0
        self.notes: list[str] = []

    def start(self, task: str, total: int | None = None) -> None:
        self.started.append((task, total))

    def advance(self, amount: int = 1) -> None:
        self.advanced += amount

    def note(self, text: str) -> None:
        self.notes.append(text)

    def finish(self) -> None:
        pass


class Clock:
    """Injected time: ``sleep`` moves ``now`` on (and runs ``on_sleep``, e.g. the fake's
    ``advance``, when set), so polling loops end without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 1.0)
        if self.on_sleep is not None:
            self.on_sleep()

    def __call__(self) -> float:
        return self.now


def rows(n: int, dpo: bool = False) -> list[dict[str, Any]]:
    """``n`` chat rows (OpenAI format), or preference rows with ``dpo``."""
    if dpo:
        return [
            {
                "input": {"messages": [{"role": "user", "content": f"question {i}"}]},
                "preferred_output": [{"role": "assistant", "content": f"good {i}"}],
                "non_preferred_output": [{"role": "assistant", "content": f"bad {i}"}],
            }
            for i in range(n)
        ]
    return [
        {
            "messages": [
                {"role": "user", "content": f"question {i}"},
                {"role": "assistant", "content": f"answer {i}"},
            ]
        }
        for i in range(n)
    ]


def write_rows(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def prepared(tmp_path: Path, n: int, name: str = "train.jsonl", dpo: bool = False) -> PreparedData:
    """A prepared training file of ``n`` rows in ``tmp_path``."""
    path = write_rows(tmp_path / name, rows(n, dpo))
    return PreparedData(
        training=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), examples=n
    )


def strict(typed_dict: Any) -> TypeAdapter[Any]:
    """A validator of ``typed_dict`` that also refuses keys the SDK's type does not declare."""
    closed = type(typed_dict.__name__, (typed_dict,), {})
    with_config(ConfigDict(extra="forbid"))(closed)
    return TypeAdapter(closed)
