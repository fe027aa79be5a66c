"""Curation steps: counts removed per step, determinism, streaming, real near-dedup model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tuneport.curate import (
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
    kept_records,
    split_items,
    validation_path,
)
from tuneport.embeddings import greedy_near_duplicates
from tuneport.errors import ConfigError
from tuneport.progress import NullProgress
from tuneport.schemas import Example, Message
from tuneport.stats import AnyRecord, role_texts

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
    train = kept_records(run)
    res = run.result
    assert [(s.step, s.before, s.removed, s.after) for s in res.steps] == [
        ("max-tokens", 20, 4, 16),
        ("dedup", 16, 8, 8),
        ("top-k", 8, 2, 6),
        ("sample", 6, 1, 5),
        ("split", 5, 1, 4),
    ]
    assert len(train) == res.train_records == 4
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
