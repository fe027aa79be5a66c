"""Every setting is checked (finite, in range) before anything is uploaded, all at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run
from tuneport.errors import ConfigError
from tuneport.jobs.jobfile import build_config
from tuneport.jobs.store import open_store

KEY = "sk-test-SETTINGS12345678"
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY) as server:
        yield server


def test_bad_numbers_are_refused_together_before_any_request(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        ["train", "--provider", "openai", "--data", str(SAMPLE), "--model", "gpt-4.1-mini",
         "--learning-rate-multiplier", "nan", "--batch-size", "-2", "--epochs", "0",
         "--seed", "-1", "--max-cost", "inf", "--yes"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3
    for field in ("epochs", "learning_rate_multiplier", "batch_size", "seed", "max_cost"):
        assert field in err
    assert "got nan" in err and "got -2" in err and "Traceback" not in err
    assert all(ln.startswith("error: ") for ln in err.strip().splitlines())  # one line each
    assert fake.requests == []  # nothing uploaded, nothing created
    assert open_store().list_jobs() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("learning_rate_multiplier", float("nan")),
        ("learning_rate_multiplier", float("inf")),
        ("learning_rate_multiplier", -0.5),
        ("learning_rate_multiplier", 0.0),
        ("batch_size", 0),
        ("batch_size", -4),
        ("epochs", -1),
        ("max_cost", float("-inf")),
        ("max_cost", -1.0),
    ],
)
def test_each_bound(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        build_config({"provider": "openai", "model": "m", "data": "d.jsonl", field: value})


def test_job_file_values_of_the_wrong_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "provider: [openai]\nmodel: gpt-4.1-mini\ndata: d.jsonl\n"
        "learning_rate_multiplier: .nan\nepochs: 2.5\n"
    )
    assert run(["train", str(job)]) == 3
    err = capsys.readouterr().err
    assert "provider" in err and "learning_rate_multiplier" in err and "epochs" in err
    assert "Traceback" not in err
    assert all(ln.startswith("error: ") for ln in err.strip().splitlines())  # one line each


def test_the_backends_checks_run_on_the_valid_settings_and_no_problem_is_said_twice(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schema error (--seed -1) no longer hides the backend's own checks (the suffix), and an
    epoch count outside OpenAI's bounds is reported once, not by the backend and the table."""
    code = run(
        ["train", "-p", "openai", "--data", str(SAMPLE), "-m", "gpt-4.1-mini", "--seed", "-1",
         "--epochs", "100", "--suffix", "x" * 70, "--yes"]
    )  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and all(ln.startswith("error: ") for ln in lines)
    assert any("seed" in ln for ln in lines)
    assert any("suffix is 70 characters; OpenAI takes 1..64" in ln for ln in lines)
    assert len([ln for ln in lines if "epochs" in ln]) == 1
    assert len(lines) == 3 and fake.requests == []
