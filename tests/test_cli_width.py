"""Tables fit an 80-column terminal: secondary columns drop, names fold, nothing is cut off."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from tuneport.cli.main import run
from tuneport.jobs.store import open_store
from tuneport.schemas import JobRecord, JobState

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """stdout as an 80-column terminal (what COLUMNS=80 gives rich)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, highlight=False, soft_wrap=True, color_system=None)
    monkeypatch.setattr("tuneport.cli._console.out", console)
    yield buffer


def _lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def _whole(lines: list[str], token: str) -> bool:
    """``token`` (an id, model name or URL) appears unbroken on one line."""
    return any(token in line for line in lines)


def test_plan_fits_80_columns(screen: io.StringIO) -> None:
    from tuneport.pricing.table import load_prices

    assert run(["plan", str(SAMPLE)]) == 0
    lines = _lines(screen)
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "…" not in screen.getvalue()
    text = screen.getvalue()
    for figure in ("gemini-2.5-flash-lite", "≈7,235", "$0.0082", "own GPU", "yes (1 warn)"):
        assert figure in text
    assert "Not shown at this width: tokens" in " ".join(" ".join(lines).split())
    # no model id is broken, however long (rows stack when the table cannot hold them whole)
    models = {e.model for e in load_prices().entries() if e.provider != "local"}
    assert "accounts/fireworks/models/llama-v3p1-8b-instruct" in models
    assert [m for m in sorted(models) if not _whole(lines, m)] == []


def test_plan_is_a_table_where_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, highlight=False, soft_wrap=True, color_system=None)
    monkeypatch.setattr("tuneport.cli._console.out", console)
    assert run(["plan", str(SAMPLE)]) == 0
    lines = buffer.getvalue().splitlines()
    assert any(line.split() == ["provider", "model", "lifecycle", "valid", "tokens", "epochs",
                                "billed", "$/1M", "cost"] for line in lines)  # fmt: skip
    assert any("gpt-4.1-nano" in line and "tuning ended 2026-10-23" in line for line in lines)


def test_prices_fit_80_columns(screen: io.StringIO) -> None:
    assert run(["prices"]) == 0
    lines = _lines(screen)
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    text = screen.getvalue()
    assert "…" not in text and "gemini-2.5-flash-lite" in text and "$25.00" in text
    for name in ("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                 "accounts/fireworks/models/llama-v3p1-70b-instruct",
                 "https://cloud.google.com/vertex-ai/generative-ai/pricing"):  # fmt: skip
        assert _whole(lines, name), name


@pytest.mark.shipped_prices
def test_prices_names_the_shipped_file_as_users_know_it(screen: io.StringIO) -> None:
    assert run(["prices"]) == 0
    text = screen.getvalue()
    assert "files: core/pricing/prices.toml" in text or "tuneport/pricing/prices.toml" in text
    assert "__editable__" not in text


@pytest.mark.shipped_prices
def test_prices_json_names_the_source_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["prices", "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert files and all("__editable__" not in f for f in files)
    assert files[0].endswith("pricing/prices.toml")


def test_jobs_list_never_cuts_ids(screen: io.StringIO) -> None:
    now = datetime.now(UTC)
    store = open_store()
    for i in range(2):
        store.add(
            JobRecord(
                id=f"tp-0000000{i}",
                run_id=f"run-{i}",
                provider="vertex",
                model="gemini-2.5-flash-lite-preview-with-a-long-name",
                dataset_sha256="x",
                remote_id=f"projects/p/locations/us-central1/tuningJobs/12345678901234{i}",
                state=JobState.SUCCEEDED,
                raw_state="JOB_STATE_SUCCEEDED",
                tuned_model=f"projects/p/locations/us-central1/endpoints/98765432109876{i}",
                created_at=now,
                updated_at=now,
            )
        )
    assert run(["jobs", "list"]) == 0
    lines = _lines(screen)
    assert max(len(line) for line in lines) <= 80
    text = screen.getvalue()
    assert "…" not in text and "JOB_STATE" not in text and "succeeded" in text
    for i in range(2):  # ids and names whole, on one line; the provider shown
        endpoint = f"projects/p/locations/us-central1/endpoints/98765432109876{i}"
        for token in (f"tp-0000000{i}", endpoint, "gemini-2.5-flash-lite-preview-with-a-long-name"):
            assert _whole(lines, token), token
    assert "vertex" in text


def test_estimate_never_cuts_the_price_source(screen: io.StringIO, tmp_path: Path) -> None:
    """A source URL longer than the table's value column (62 of 80 columns) stays whole."""
    url = "https://cloud.google.com/vertex-ai/generative-ai/docs/reference/models/tuning"
    prices = tmp_path / "prices.toml"
    prices.write_text(
        f'[providers.openai.models."gpt-4.1-mini"]\nsource = "{url} (read 2026-12-06)"\n',
        encoding="utf-8",
    )
    argv = ["estimate", str(SAMPLE), "-p", "openai", "-m", "gpt-4.1-mini", "--prices", str(prices)]
    assert run(argv) == 0
    lines = _lines(screen)
    assert _whole(lines, url), lines
    broken = [line for line in lines if "https://cloud" in line and url not in line]
    assert broken == [] and "…" not in screen.getvalue()


def test_eval_never_cuts_model_names(
    screen: io.StringIO, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.fake_provider import FakeProvider
    from tuneport.providers import registry
    from tuneport.schemas import Message

    def answer(self: object, model: str, messages: object, options: object) -> Message:
        return Message(role="assistant", content="an answer")

    monkeypatch.setattr(FakeProvider, "chat", answer)
    held_out = SAMPLE.parent.parent / "curate" / "heldout.jsonl"
    long_name = "fake:accounts/someone/models/a-model-with-a-rather-long-name-v3p1-70b-instruct"
    registry.register("fake", "tests.fakes.fake_provider:BACKEND")
    try:
        code = run(["eval", "--data", str(held_out), "-m", "fake:good", "-m", long_name])
    finally:
        registry.unregister("fake")
    assert code == 0, capsys.readouterr().err
    lines = _lines(screen)
    assert _whole(lines, long_name) and _whole(lines, "fake:good")
    assert max(len(line) for line in lines) <= 80 and "…" not in screen.getvalue()
