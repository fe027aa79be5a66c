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


def test_plan_fits_80_columns(screen: io.StringIO) -> None:
    assert run(["plan", str(SAMPLE)]) == 0
    lines = _lines(screen)
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "…" not in screen.getvalue()
    text = screen.getvalue()
    for figure in ("gemini-2.5-flash-lite", "≈7,235", "$0.0082", "own GPU", "yes (1 warn)"):
        assert figure in text
    assert "Not shown at this width: tokens" in " ".join(" ".join(lines).split())


def test_prices_fit_80_columns_and_name_the_source_file(screen: io.StringIO) -> None:
    assert run(["prices"]) == 0
    lines = _lines(screen)
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    text = screen.getvalue()
    assert "…" not in text and "gemini-2.5-flash-lite" in text and "$25.00" in text
    assert "files: core/pricing/prices.toml" in text or "tuneport/pricing/prices.toml" in text
    assert "__editable__" not in text


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
    assert "tp-00000000" in text and "tp-00000001" in text  # whole, on one line
    assert "…" not in text and "JOB_STATE" not in text and "succeeded" in text
    # long names fold whole onto the next lines: every character is still there
    assert "98765432109876" in text.replace("\n", "").replace(" ", "").replace("│", "")
