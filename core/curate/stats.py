"""Token-length statistics of a dataset: per example, per role, and a histogram as data.

``compute_stats`` takes records and a :class:`~tuneport.tokens.counter.TokenCounter` and returns a
:class:`TokenStats` whose histogram bin edges and counts are plain numbers, so tests and
``--json`` consumers check the data; :func:`plot_histogram` only draws it (matplotlib, Agg,
imported on first use).

Definitions:

- *per example*: ``counter.count(record)``, the tokens the record costs for training (all
  turns, chat overhead and tools as the provider counts them).
- *per role*: ``counter.count_text`` of each message's text (content, plus tool-call names and
  arguments), grouped by role; for preference pairs the prompt turns count under their roles
  and the two replies under ``chosen`` and ``rejected``.
- *percentiles*: linear interpolation between the two nearest ranks (numpy's default), so p50
  of ``[1, 2, 3, 4]`` is 2.5.
- *histogram*: ``bins`` equal-width bins from the shortest to the longest example; a value
  on an inner edge falls in the bin to its right, and the longest value in the last bin
  (numpy's ``histogram`` rules).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tuneport.errors import ConfigError, InputError, require_extra
from tuneport.files import atomic_path, require_file
from tuneport.schemas import AnyRecord, Example, Message
from tuneport.tokens.counter import TokenCounter

"""Counter used when no ``--provider/--model`` is given: exact o200k_base, offline."""


class Distribution(BaseModel):
    """Summary of a list of token counts."""

    model_config = ConfigDict(extra="forbid")

    count: int
    total: int
    mean: float
    min: int
    p50: float
    p90: float
    p95: float
    p99: float
    max: int


class Histogram(BaseModel):
    """``counts[i]`` values lie in ``[edges[i], edges[i+1])`` (the last bin is closed)."""

    model_config = ConfigDict(extra="forbid")

    edges: list[float]
    counts: list[int]


class TokenStats(BaseModel):
    """Token-length distribution of one dataset, as counted by ``counter``."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    counter: str
    exact: bool
    error_band: float | None = None
    records: int
    per_example: Distribution
    per_role: dict[str, Distribution]
    histogram: Histogram
    limit: int | None = None
    over_limit: int | None = None  # examples with more than ``limit`` tokens


def percentile(sorted_values: Sequence[int], q: float) -> float:
    """The ``q``-th percentile (0..100) of ascending values, linearly interpolated."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    rank = q / 100 * (len(sorted_values) - 1)
    lo = math.floor(rank)
    hi = math.ceil(rank)
    low, high = sorted_values[lo], sorted_values[hi]
    return float(low + (high - low) * (rank - lo))


DECIMALS = 2  # of means and percentiles in reports and --json


def describe(values: Iterable[int]) -> Distribution:
    """Count, total, mean, min, p50/p90/p95/p99 and max of ``values`` (all 0 when empty)."""
    data = sorted(values)
    if not data:
        return Distribution(
            count=0, total=0, mean=0.0, min=0, p50=0.0, p90=0.0, p95=0.0, p99=0.0, max=0
        )
    total = sum(data)
    return Distribution(  # token counts: two decimals say all there is (no 17.384615384615383)
        count=len(data),
        total=total,
        mean=round(total / len(data), DECIMALS),
        min=data[0],
        p50=round(percentile(data, 50), DECIMALS),
        p90=round(percentile(data, 90), DECIMALS),
        p95=round(percentile(data, 95), DECIMALS),
        p99=round(percentile(data, 99), DECIMALS),
        max=data[-1],
    )


def histogram(values: Sequence[int], bins: int = 20) -> Histogram:
    """Equal-width histogram of integer values with exact integer bin assignment."""
    if bins < 1:
        raise ConfigError(f"--bins must be at least 1, got {bins}", hint="pass e.g. --bins 20")
    if not values:
        return Histogram(edges=[0.0, 1.0], counts=[0])
    lo, hi = min(values), max(values)
    if lo == hi:
        return Histogram(edges=[float(lo), float(lo + 1)], counts=[len(values)])
    span = hi - lo
    counts = [0] * bins
    for value in values:
        counts[min((value - lo) * bins // span, bins - 1)] += 1
    edges = [lo + span * i / bins for i in range(bins + 1)]
    return Histogram(edges=edges, counts=counts)


def message_text(message: Message) -> str:
    """The text of one turn that its role's statistics count: content and tool calls."""
    parts = [message.content or ""]
    for call in message.tool_calls or ():
        parts.append(call.function.name)
        parts.append(call.function.arguments)
    return "\n".join(p for p in parts if p)


def role_texts(record: AnyRecord) -> Iterator[tuple[str, str]]:
    """``(role, text)`` for every turn of a record (preference replies: chosen/rejected)."""
    if isinstance(record, Example):
        for message in record.messages:
            yield message.role, message_text(message)
    else:
        for message in record.prompt:
            yield message.role, message_text(message)
        yield "chosen", message_text(record.chosen)
        yield "rejected", message_text(record.rejected)


def compute_stats(
    records: Iterable[AnyRecord],
    counter: TokenCounter,
    *,
    bins: int = 20,
    limit: int | None = None,
    source: str | None = None,
) -> TokenStats:
    """Token-length distribution of ``records`` (streamed; keeps only the integer counts)."""
    per_example: list[int] = []
    per_role: dict[str, list[int]] = {}
    for record in records:
        per_example.append(counter.count(record))
        for role, text in role_texts(record):
            per_role.setdefault(role, []).append(counter.count_text(text))
    return stats_from_counts(per_example, per_role, counter, bins=bins, limit=limit, source=source)


def stats_from_counts(
    per_example: Sequence[int],
    per_role: dict[str, list[int]],
    counter: TokenCounter,
    *,
    bins: int = 20,
    limit: int | None = None,
    source: str | None = None,
) -> TokenStats:
    """Build :class:`TokenStats` from counts already taken (curate reuses its own counts)."""
    order = ["system", "user", "assistant", "tool", "chosen", "rejected"]
    roles = sorted(per_role, key=lambda r: (order.index(r) if r in order else len(order), r))
    return TokenStats(
        source=source,
        counter=counter.label,
        exact=counter.exact,
        error_band=counter.error_band,
        records=len(per_example),
        per_example=describe(per_example),
        per_role={role: describe(per_role[role]) for role in roles},
        histogram=histogram(per_example, bins),
        limit=limit,
        over_limit=None if limit is None else sum(1 for n in per_example if n > limit),
    )


def iter_input(path: Path, fmt: str | None = None) -> Iterator[tuple[int, AnyRecord]]:
    """``(line, record)`` for every record of a data file, in any format tuneport reads.

    A row with an error stops with an :class:`InputError` naming its ``file:line`` and the fix:
    curating or counting around broken rows would hide them. Warnings do not stop it.
    """
    from tuneport.data import read_records

    require_file(path)
    for row in read_records(path, fmt):
        errors = [p for p in row.problems if p.severity == "error"]
        if errors:
            first = errors[0]
            raise InputError(
                first.message,
                hint=f"{first.fix}; `tuneport validate {path}` lists every problem",
                where=first.where,
            )
        if row.record is not None:
            yield row.line, row.record


def plot_histogram(
    stats: TokenStats,
    out: Path,
    *,
    title: str | None = None,
    cutoff: int | None = None,
    force: bool = False,
) -> Path:
    """Draw ``stats.histogram`` as a PNG at ``out`` (atomic; refuses to overwrite without force).

    ``cutoff`` (e.g. ``--max-tokens``) is drawn as a dashed vertical line.
    """
    require_extra("matplotlib", "curate", "--plot")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in threads

    hist = stats.histogram
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    ax.stairs(hist.counts, hist.edges, fill=True, alpha=0.75, label="examples")
    p = stats.per_example
    for value, name, style in ((p.p50, "p50", ":"), (p.p95, "p95", "-.")):
        ax.axvline(value, color="0.3", linestyle=style, linewidth=1, label=f"{name} = {value:g}")
    if cutoff is not None:
        ax.axvline(cutoff, color="tab:red", linestyle="--", label=f"max tokens = {cutoff}")
    approx = "" if stats.exact else f" (approx ±{(stats.error_band or 0) * 100:.0f}%)"
    ax.set_xlabel(f"tokens per example — {stats.counter}{approx}")
    ax.set_ylabel("examples")
    name = Path(stats.source).name if stats.source else "dataset"
    ax.set_title(title or f"{name}: {stats.records:,} examples")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    with atomic_path(out, force=force) as tmp:
        fig.savefig(tmp, format="png")
    return out
