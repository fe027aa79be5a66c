"""Local chat from several threads (``eval`` asks in parallel): each model is loaded once, and
local replies are generated one at a time (the backend's ``max_concurrency``).

Before: the chat model cache had no lock, so every ``eval`` thread that missed it loaded the same
model again (``--concurrency`` copies of the weights), and nothing capped local calls in flight.
The loader and the generator are stand-ins that count (no weights are read)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tuneport.evaluate.run import EvalCase, EvalOptions, EvalTarget, run_eval
from tuneport.providers import ChatOptions, ConcurrencyLimited, Message
from tuneport.providers.local.provider import LocalProvider


class Stand:
    """Counts loads per model folder and the most replies generated at once."""

    def __init__(self) -> None:
        self.loads: Counter[Path] = Counter()
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def load_tuned(self, path: Path, precision: Any) -> tuple[Any, Any]:
        with self.lock:
            self.loads[path] += 1
        time.sleep(0.05)  # loading takes a while: other threads ask meanwhile
        return (f"model:{path.name}", "tokenizer")

    def generate_reply(self, model: Any, tokenizer: Any, messages: Any, **kw: Any) -> str:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.01)
        with self.lock:
            self.active -= 1
        return f"{model} says {messages[-1]['content']}"


@pytest.fixture
def stand(monkeypatch: pytest.MonkeyPatch) -> Stand:
    from tuneport.providers.local import trainer

    fake = Stand()
    monkeypatch.setattr(trainer, "load_tuned", fake.load_tuned)
    monkeypatch.setattr(trainer, "generate_reply", fake.generate_reply)
    monkeypatch.setattr(trainer, "quiet_libraries", lambda: None)
    return fake


def _model_dir(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # a merged-weights folder, as `export` writes
    return folder.resolve()


def test_threads_asking_one_model_load_it_once(stand: Stand, tmp_path: Path) -> None:
    model = _model_dir(tmp_path, "merged")
    provider = LocalProvider()
    start = threading.Barrier(8)

    def ask(i: int) -> str:
        start.wait()
        reply = provider.chat(
            str(model), [Message(role="user", content=f"q{i}")], ChatOptions(max_tokens=4)
        )
        return reply.content or ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(ask, range(8)))
    assert stand.loads == {model: 1}
    assert replies == [f"model:merged says q{i}" for i in range(8)]


def test_eval_of_two_local_models_loads_each_once_and_asks_one_at_a_time(
    stand: Stand, tmp_path: Path
) -> None:
    first, second = _model_dir(tmp_path, "a"), _model_dir(tmp_path, "b")
    cases = [
        EvalCase(
            index=i,
            line=i + 1,
            prompt=[Message(role="user", content=f"q{i}")],
            reference=f"q{i}",
        )
        for i in range(6)
    ]
    targets = [
        EvalTarget(spec=f"local:{p}", provider="local", model=str(p)) for p in (first, second)
    ]
    report = run_eval(
        cases,
        targets,
        options=EvalOptions(concurrency=4),  # eval builds one provider per target
        providers={t.spec: LocalProvider() for t in targets},
    )
    assert stand.loads == {first: 1, second: 1}
    assert stand.peak == 1  # one local reply at a time, over both models
    assert [s.failed for s in report.summary] == [0, 0]
    provider = LocalProvider()
    assert isinstance(provider, ConcurrencyLimited) and provider.max_concurrency == 1
