"""Curation steps: counts removed per step, determinism, streaming, real near-dedup model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tuneport.cli.main import run
from tuneport.curate.embeddings import greedy_near_duplicates
from tuneport.curate.pipeline import (
    CurateOptions,
    ExactDedup,
    Item,
    MaxTokens,
    MinHashDedup,
    NearDedup,
    Sample,
    StepReport,
    TopK,
    build_steps,
    content_digest,
    curate,
    split_items,
    validation_path,
)
from tuneport.curate.stats import role_texts
from tuneport.errors import ConfigError
from tuneport.progress import NullProgress
from tuneport.schemas import AnyRecord, Example, Message

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "curate"


class WordCounter:
    exact = True
    error_band: float | None = None
    label = "words"

    def count(self, record: AnyRecord) -> int:
        return sum(len(text.split()) for _, text in role_texts(record))

    def count_text(self, text: str) -> int:
        return len(text.split())


def chat(user: str, assistant: str, **extra: object) -> Example:
    return Example(
        messages=[Message(role="user", content=user), Message(role="assistant", content=assistant)],
        **extra,  # type: ignore[arg-type]
    )


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def items_of(records: Sequence[AnyRecord]) -> list[Item]:
    counter = WordCounter()
    return [
        Item(index=i, line=i + 1, record=r, tokens=counter.count(r)) for i, r in enumerate(records)
    ]


def run_step(step: object, records: Sequence[AnyRecord]) -> tuple[list[int], StepReport]:
    report = StepReport(step="t", detail="t")
    kept = list(step.run(items_of(records), report, NullProgress()))  # type: ignore[attr-defined]
    return [it.line for it in kept], report


def lengths_2_to_11() -> list[AnyRecord]:
    return [chat("q", words(k, f"k{k}_")) for k in range(1, 11)]  # totals 2..11, lines 1..10


def test_max_tokens_counts_removed_rows() -> None:
    kept, report = run_step(MaxTokens(6), lengths_2_to_11())
    assert kept == [1, 2, 3, 4, 5]
    assert (report.before, report.after, report.removed) == (10, 5, 5)
    assert [r.line for r in report.removals] == [6, 7, 8, 9, 10]
    assert [r.tokens for r in report.removals] == [7, 8, 9, 10, 11]


def test_exact_dedup_ignores_id_and_metadata_only() -> None:
    rows = [
        chat("hi", "hello"),
        chat("hi", "hello", id="other", metadata={"src": "b"}),  # same content -> duplicate
        chat("hi", "hello "),  # one space differs -> not exact
        chat("Hi", "hello"),
        chat("hi", "hello"),
    ]
    kept, report = run_step(ExactDedup(), rows)
    assert kept == [1, 3, 4]
    assert report.removed == 2
    assert [(r.line, r.kept_line) for r in report.removals] == [(2, 1), (5, 1)]
    assert content_digest(rows[0]) == content_digest(rows[1]) != content_digest(rows[2])


def test_minhash_dedup_finds_near_copies_and_keeps_distinct() -> None:
    base = words(60, "t")
    one_changed = base.replace("t30", "changed")
    rows = [
        chat("question", base),
        chat("question", base.upper()),  # case variant -> same shingles
        chat("question", one_changed),  # 3 of ~60 shingles differ -> Jaccard ~0.9
        chat("question", words(60, "u")),  # distinct
        chat("other question", words(60, "v")),  # distinct
    ]
    kept, report = run_step(MinHashDedup(0.8), rows)
    assert kept == [1, 4, 5]
    assert [(r.line, r.kept_line) for r in report.removals] == [(2, 1), (3, 1)]
    assert report.removals[0].similarity == 1.0
    assert 0.8 <= (report.removals[1].similarity or 0) < 1.0
    # a stricter threshold keeps the one-word edit
    kept_strict, _ = run_step(MinHashDedup(0.99), rows)
    assert kept_strict == [1, 3, 4, 5]


def test_top_k_longest_and_shortest_keep_input_order_and_break_ties_early() -> None:
    rows = [chat("q", words(n)) for n in (3, 9, 1, 9, 5, 1)]  # totals 4,10,2,10,6,2
    kept, report = run_step(TopK(3, "tokens"), rows)
    assert kept == [2, 4, 5]
    assert report.removed == 3
    kept, _ = run_step(TopK(1, "tokens"), rows)
    assert kept == [2]  # tie between lines 2 and 4 goes to the earlier
    kept, _ = run_step(TopK(2, "-tokens"), rows)
    assert kept == [3, 6]
    kept, report = run_step(TopK(10), rows)
    assert kept == [1, 2, 3, 4, 5, 6] and report.removed == 0


def test_sample_is_seeded_and_keeps_order() -> None:
    rows = [chat("q", words(n + 1, f"s{n}_")) for n in range(50)]
    a, report = run_step(Sample(10, seed=3), rows)
    b, _ = run_step(Sample(10, seed=3), rows)
    c, _ = run_step(Sample(10, seed=4), rows)
    assert a == b and a != c
    assert len(a) == 10 and a == sorted(a)
    assert report.removed == 40
    everything, report = run_step(Sample(80, seed=0), rows)
    assert len(everything) == 50 and report.removed == 0


def test_split_is_deterministic_disjoint_and_sized() -> None:
    items = items_of([chat("q", words(n + 1, f"p{n}_")) for n in range(40)])
    train, val = split_items(items, 0.1, seed=7)
    again_train, again_val = split_items(items, 0.1, seed=7)
    _, other_val = split_items(items, 0.1, seed=8)
    lines = lambda xs: [x.line for x in xs]  # noqa: E731
    assert lines(val) == lines(again_val) and lines(train) == lines(again_train)
    assert lines(val) != lines(other_val)
    assert len(val) == 4 and len(train) == 36
    assert sorted(lines(train) + lines(val)) == list(range(1, 41))
    assert lines(val) == sorted(lines(val))
    _, val_count = split_items(items, 5, seed=0)
    assert len(val_count) == 5
    _, tiny = split_items(items, 0.001, seed=0)
    assert len(tiny) == 1  # at least one validation example
    with pytest.raises(ConfigError, match="cannot move"):
        split_items(items, 40, seed=0)
    with pytest.raises(ConfigError, match="whole count"):
        split_items(items, 2.5, seed=0)


def test_options_reject_misplaced_flags() -> None:
    with pytest.raises(ValidationError, match="threshold"):
        CurateOptions(dedup="exact", threshold=0.9)
    with pytest.raises(ValidationError, match="embedding-model"):
        CurateOptions(dedup="minhash", embedding_model="x")
    with pytest.raises(ValidationError):
        CurateOptions(max_tokens=0)
    assert CurateOptions(dedup="near").effective_threshold() == 0.95
    assert CurateOptions(dedup="minhash").effective_threshold() == 0.8
    assert CurateOptions(dedup="near", threshold=0.9).effective_threshold() == 0.9


def test_steps_follow_the_fixed_order() -> None:
    opts = CurateOptions(sample=5, top_k=10, dedup="exact", max_tokens=100, split=0.1)
    assert [s.name for s in build_steps(opts)] == ["max-tokens", "dedup", "top-k", "sample"]


def test_pipeline_streams_when_every_step_streams() -> None:
    pulled: list[int] = []

    def source() -> Iterator[tuple[int, AnyRecord]]:
        for i, rec in enumerate([*lengths_2_to_11(), chat("q", words(1, "k1_"))]):
            pulled.append(i)
            yield i + 1, rec

    run = curate(source(), CurateOptions(max_tokens=6, dedup="exact"), WordCounter())
    assert pulled == []  # nothing read before the output pulls rows
    first = next(run.train)
    assert first.line == 1 and pulled == [0]
    rest = list(run.train)
    run.finish(WordCounter(), bins=3, limit=6)
    assert [it.line for it in rest] == [2, 3, 4, 5]
    res = run.result
    assert [(s.step, s.removed) for s in res.steps] == [("max-tokens", 5), ("dedup", 1)]
    assert res.input_records == 11
    assert res.input_stats is not None and res.input_stats.over_limit == 5


def test_full_pipeline_counts_chain() -> None:
    records = [(i + 1, r) for i, r in enumerate(lengths_2_to_11() * 2)]  # 20 rows, 10 dupes
    opts = CurateOptions(max_tokens=9, dedup="exact", top_k=6, sample=5, split=0.2, seed=1)
    run = curate(iter(records), opts, WordCounter())
    train = [item.record for item in run.train]
    res = run.result
    assert [(s.step, s.before, s.removed, s.after) for s in res.steps] == [
        ("max-tokens", 20, 4, 16),
        ("dedup", 16, 8, 8),
        ("top-k", 8, 2, 6),
        ("sample", 6, 1, 5),
        ("split", 5, 1, 4),
    ]
    assert len(train) == 4
    assert len(run.validation) == res.validation_records == 1


def test_greedy_near_duplicates_with_designed_vectors() -> None:
    def unit(*xs: float) -> list[float]:
        v = np.asarray(xs, dtype=np.float32)
        return list(v / np.linalg.norm(v))

    vectors = np.asarray(
        [unit(1, 0, 0), unit(0, 1, 0), unit(1, 0.1, 0), unit(0, 0, 1), unit(0.05, 1, 0)],
        dtype=np.float32,
    )
    expected = [(2, 0), (4, 1)]
    for block, kept_slice in ((512, 16384), (1, 1), (2, 1), (3, 2)):
        got = greedy_near_duplicates(vectors, 0.95, block=block, kept_slice=kept_slice)
        assert [(a, b) for a, b, _ in got] == expected
    assert greedy_near_duplicates(vectors, 0.999) == []


def load_fixture(name: str) -> list[AnyRecord]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [Example.model_validate(json.loads(line)) for line in lines]


@pytest.mark.slow
def test_near_dedup_with_the_packaged_model() -> None:
    rows = load_fixture("near_dupes.jsonl")
    kept, report = run_step(NearDedup(0.95), rows)
    # 2 = lower-case copy, 3 = extra spaces, 4 = paraphrase of 1; 7 = paraphrase of 6
    assert kept == [1, 5, 6, 8, 9]
    assert [(r.line, r.kept_line) for r in report.removals] == [(2, 1), (3, 1), (4, 1), (7, 6)]
    paraphrase = report.removals[2].similarity or 0
    assert 0.95 <= paraphrase < 0.99
    # a stricter threshold keeps the paraphrase but still drops case/whitespace variants
    kept_strict, _ = run_step(NearDedup(0.99), rows)
    assert kept_strict == [1, 4, 5, 6, 8, 9]


def test_validation_path_naming() -> None:
    assert validation_path(Path("d/out.jsonl")) == Path("d/out.val.jsonl")
    assert validation_path(Path("out.train.jsonl")) == Path("out.val.jsonl")
    assert validation_path(Path("ds.train")) == Path("ds.val")
    assert validation_path(Path("folder")) == Path("folder.val")


# --- files and CLI -----------------------------------------------------------------------------

REAL = FIXTURES.parent / "real" / "llamafactory_alpaca_en_demo.json"


def curate_cli(tmp_path: Path, *extra: str, out: str = "curated.jsonl") -> list[str]:
    return ["curate", str(REAL), "-o", str(tmp_path / out), *extra]


def test_cli_pipeline_on_bundled_data_is_deterministic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--max-tokens", "512", "--dedup", "exact", "--top-k", "500", "--split", "0.1"]
    code = run(
        curate_cli(tmp_path, *args, "--seed", "0", "--plot", str(tmp_path / "h.png"), "--json")
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    steps = [(s["step"], s["before"], s["after"]) for s in result["steps"]]
    assert steps[0][:2] == ("max-tokens", 999)
    over = result["input_stats"]["over_limit"]
    assert steps[0][2] == 999 - over and over > 0
    assert steps[2] == ("top-k", steps[1][2], 500)
    assert steps[3] == ("split", 500, 450)
    assert result["train_records"] == 450 and result["validation_records"] == 50
    assert sum(result["input_stats"]["histogram"]["counts"]) == 999
    train = (tmp_path / "curated.jsonl").read_text().splitlines()
    val = (tmp_path / "curated.val.jsonl").read_text().splitlines()
    assert (len(train), len(val)) == (450, 50)
    assert not set(train) & set(val)
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    # every kept example is within the limit, as the default counter counts it
    from tuneport.data import load_records
    from tuneport.providers.registry import default_counter

    counter = default_counter()
    kept = load_records(tmp_path / "curated.jsonl")
    assert max(counter.count(r) for r in kept) <= 512

    # same seed -> same bytes; another seed -> another validation set
    again = tmp_path / "again"
    again.mkdir()
    assert run(curate_cli(again, *args, "--seed", "0")) == 0
    assert (again / "curated.val.jsonl").read_text().splitlines() == val
    assert (again / "curated.jsonl").read_text().splitlines() == train
    other = tmp_path / "other"
    other.mkdir()
    assert run(curate_cli(other, *args, "--seed", "1")) == 0
    assert (other / "curated.val.jsonl").read_text().splitlines() != val


def test_cli_exports_the_chosen_format_and_prints_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "small.openai.jsonl"
    code = run(
        ["curate", str(REAL), "-o", str(out), "--to", "openai", "--top-k", "3", "--by", "shortest"]
    )
    text = capsys.readouterr().out
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(set(r) == {"messages"} for r in rows)
    assert "top-k" in text and "keep the 3 shortest examples" in text
    assert "996" in text  # removed
    # the same with '--by=-tokens'
    out2 = tmp_path / "small2.openai.jsonl"
    assert (
        run(
            ["curate", str(REAL), "-o", str(out2), "--to", "openai", "--top-k", "3", "--by=-tokens"]
        )
        == 0
    )
    assert out2.read_text() == out.read_text()


def test_cli_near_dedup_on_small_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = FIXTURES / "near_dupes.jsonl"
    out = tmp_path / "dedup.jsonl"
    code = run(["curate", str(src), "-o", str(out), "--dedup", "near", "--threshold", "0.95"])
    text = capsys.readouterr().out
    assert code == 0
    assert len(out.read_text().splitlines()) == 5
    assert "line 4 ≈ line 1" in text and "line 7 ≈ line 6" in text


def test_cli_minhash_dedup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    body = words(50, "m")
    rows = [chat("q", body), chat("q", body.replace("m25", "x")), chat("q", words(50, "n"))]
    src.write_text("".join(json.dumps(r.model_dump(exclude_none=True)) + "\n" for r in rows))
    code = run(
        ["curate", str(src), "-o", str(tmp_path / "o.jsonl"), "--dedup", "minhash", "--json"]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(r["line"], r["kept_line"]) for r in result["steps"][0]["removals"]] == [(2, 1)]


def test_cli_errors_are_one_line_and_leave_outputs_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text("keep me\n")
    assert run(curate_cli(tmp_path, "--max-tokens", "100", out="o.jsonl")) == 3
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"

    assert run(curate_cli(tmp_path, "--dedup", "exact", "--threshold", "0.9", out="x.jsonl")) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "threshold" in err and len(err.strip().splitlines()) == 1

    assert run(curate_cli(tmp_path, "--dedup", "fuzzy", out="x.jsonl")) == 3
    assert "exact, near or minhash" in capsys.readouterr().err

    bad = FIXTURES.parent / "bad" / "truncated.jsonl"
    assert run(["curate", str(bad), "-o", str(tmp_path / "y.jsonl"), "--max-tokens", "9"]) == 2
    err = capsys.readouterr().err
    assert "truncated.jsonl:3" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y.jsonl").exists()

    assert (
        run(curate_cli(tmp_path, "--split", "0.1", "--validation-out", str(out), out="z.jsonl"))
        == 3
    )
    assert not (tmp_path / "z.jsonl").exists()
