"""Token-length statistics: distribution numbers and histogram data, checked without PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuneport.curate.stats import (
    TokenStats,
    compute_stats,
    describe,
    histogram,
    percentile,
    plot_histogram,
    role_texts,
)
from tuneport.errors import ConfigError
from tuneport.providers.registry import default_counter
from tuneport.schemas import AnyRecord, Example, Message, PreferenceExample


class WordCounter:
    """Counts whitespace-separated words: lengths in tests are obvious from the data."""

    exact = True
    error_band: float | None = None
    label = "words"

    def count(self, record: AnyRecord) -> int:
        return sum(len(text.split()) for _, text in role_texts(record))

    def count_text(self, text: str) -> int:
        return len(text.split())


def chat(user: str, assistant: str, system: str | None = None) -> Example:
    messages = [Message(role="system", content=system)] if system else []
    messages += [Message(role="user", content=user), Message(role="assistant", content=assistant)]
    return Example(messages=messages)


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def known_records() -> list[AnyRecord]:
    # user = 1 word, assistant = k words -> example totals 2..11
    return [chat("q", words(k)) for k in range(1, 11)]


def test_distribution_and_histogram_of_known_lengths() -> None:
    stats = compute_stats(known_records(), WordCounter(), bins=3, limit=6, source="mem")
    ex = stats.per_example
    assert (ex.count, ex.total, ex.min, ex.max) == (10, 65, 2, 11)
    assert ex.mean == pytest.approx(6.5)
    assert ex.p50 == pytest.approx(6.5)
    assert ex.p90 == pytest.approx(10.1)
    assert ex.p95 == pytest.approx(10.55)
    assert ex.p99 == pytest.approx(10.91)
    # equal-width bins over [2, 11]: [2,5) [5,8) [8,11]
    assert stats.histogram.edges == [2.0, 5.0, 8.0, 11.0]
    assert stats.histogram.counts == [3, 3, 4]
    assert list(stats.per_role) == ["user", "assistant"]
    assert stats.per_role["user"].count == 10
    assert stats.per_role["user"].max == 1
    assert stats.per_role["assistant"].p50 == pytest.approx(5.5)
    assert stats.per_role["assistant"].max == 10
    assert stats.over_limit == 5  # totals 7..11
    assert (stats.records, stats.counter, stats.exact, stats.source) == (10, "words", True, "mem")


def test_roles_of_preference_pairs_and_system() -> None:
    pref = PreferenceExample(
        prompt=[Message(role="user", content="a b")],
        chosen=Message(role="assistant", content="c d e"),
        rejected=Message(role="assistant", content="f"),
    )
    stats = compute_stats([pref, chat("x", "y z", system="be brief")], WordCounter())
    assert list(stats.per_role) == ["system", "user", "assistant", "chosen", "rejected"]
    assert stats.per_role["chosen"].max == 3
    assert stats.per_role["rejected"].max == 1
    assert stats.per_role["user"].count == 2
    assert stats.per_example.max == 6


def test_single_value_and_empty_inputs() -> None:
    assert histogram([7, 7, 7], 5).model_dump() == {"edges": [7.0, 8.0], "counts": [3]}
    assert histogram([], 5).counts == [0]
    empty = describe([])
    assert empty.count == 0 and empty.max == 0
    with pytest.raises(ConfigError):
        histogram([1, 2], 0)
    with pytest.raises(ValueError):
        percentile([], 50)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=5000), min_size=2, max_size=200),
    st.integers(min_value=1, max_value=40),
)
def test_matches_numpy(values: list[int], bins: int) -> None:
    if min(values) == max(values):
        values = [*values, max(values) + 1]
    hist = histogram(values, bins)
    counts, edges = np.histogram(values, bins=bins, range=(min(values), max(values)))
    assert hist.counts == counts.tolist()
    assert hist.edges == pytest.approx(edges.tolist())
    for q in (50, 90, 95, 99):
        assert percentile(sorted(values), q) == pytest.approx(float(np.percentile(values, q)))


def test_plot_histogram_writes_png_and_refuses_overwrite(tmp_path: Path) -> None:
    stats = compute_stats(known_records(), WordCounter(), bins=4)
    out = plot_histogram(stats, tmp_path / "hist.png", cutoff=6)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    with pytest.raises(ConfigError, match="already exists"):
        plot_histogram(stats, out)
    plot_histogram(stats, out, force=True)


def test_default_counter_is_exact_o200k() -> None:
    counter = default_counter()
    assert counter.exact
    assert "o200k" in counter.label
    assert counter.count_text("hello world") == 2
    with pytest.raises(ConfigError, match="--model"):
        default_counter("vertex", None)


def test_stats_json_roundtrip() -> None:
    stats = compute_stats(known_records(), WordCounter(), bins=2)
    again = TokenStats.model_validate_json(stats.model_dump_json())
    assert again == stats


REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"


def test_cli_stats_json_on_bundled_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tuneport.cli.main import run
    from tuneport.data import load_records

    src = REAL / "llamafactory_alpaca_en_demo.json"
    png = tmp_path / "h.png"
    code = run(
        ["stats", str(src), "--json", "--bins", "5", "--max-tokens", "512", "--plot", str(png)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = TokenStats.model_validate_json(captured.out)
    counter = default_counter()
    lengths = sorted(counter.count(r) for r in load_records(src))
    assert data.records == 999 == sum(data.histogram.counts)
    assert data.per_example.max == lengths[-1] and data.per_example.min == lengths[0]
    assert data.per_example.p50 == pytest.approx(float(np.percentile(lengths, 50)))
    assert data.over_limit == sum(1 for n in lengths if n > 512)
    assert list(data.per_role) == ["user", "assistant"]
    assert len(data.histogram.edges) == 6
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_stats_table_and_approximate_label(capsys: pytest.CaptureFixture[str]) -> None:
    from tuneport.cli.main import run

    src = REAL / "llamafactory_dpo_en_demo.json"
    assert run(["stats", str(src), "--provider", "vertex", "--model", "gemini-2.5-flash"]) == 0
    out = capsys.readouterr().out
    assert "300 examples" in out and "approximate" in out
    assert "chosen turn" in out and "rejected turn" in out
    assert run(["stats", str(REAL / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_json_means_and_percentiles_are_rounded(capsys: pytest.CaptureFixture[str]) -> None:
    from tuneport.cli.main import run

    sample = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
    assert run(["stats", str(sample), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for dist in [doc["per_example"], *doc["per_role"].values()]:
        for key in ("mean", "p50", "p90", "p95", "p99"):
            assert dist[key] == round(dist[key], 2), (key, dist[key])
    assert doc["per_role"]["system"]["mean"] == 17.38
