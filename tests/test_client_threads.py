"""Lazily built SDK clients are built once, whatever the number of threads asking at once.

``eval`` at ``--concurrency`` ≥ 2 used to crash on Vertex with "Cannot send a request, as the
client has been closed": two threads built a client each and one was closed under the other.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.vertex_server import running_fake_vertex
from tuneport.cli.main import run
from tuneport.providers.openai import OpenAIProvider
from tuneport.providers.vertex.provider import VertexProvider


def _heldout(path: Path, n: int) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            record = {
                "messages": [
                    {"role": "user", "content": f"say {i}"},
                    {"role": "assistant", "content": f"{i}"},
                ]
            }
            fh.write(json.dumps(record) + "\n")
    return path


def test_eval_on_vertex_at_concurrency_8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_fake_vertex() as fake:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", fake.url)
        monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.eval-threads-0123456789")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
        data = _heldout(tmp_path / "heldout.jsonl", 48)
        out = tmp_path / "report"
        code = run(
            ["eval", "--data", str(data), "--model", "vertex:gemini-2.5-flash",
             "--concurrency", "8", "--attempts", "1", "--max-cost", "1", "--yes", "-o", str(out)]
        )  # fmt: skip
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "closed" not in captured.err
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["summary"][0]["answered"] == 48
        assert len(fake.calls("POST", r":generateContent$")) == 48


@pytest.mark.parametrize("backend", ["openai", "vertex"])
def test_the_client_is_built_once_under_contention(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-threads-0123456789")
    monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.threads-0123456789")
    provider: OpenAIProvider | VertexProvider
    if backend == "openai":
        with FakeOpenAI() as server:
            provider = OpenAIProvider(base_url=server.base_url)
    else:
        provider = VertexProvider(project="p", base_url="http://127.0.0.1:9")
    start = threading.Barrier(16)
    seen: list[int] = []

    def grab() -> None:
        start.wait()
        seen.append(id(provider.client))

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 16 and len(set(seen)) == 1
