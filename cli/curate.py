"""Dataset statistics, curation and model evaluation: ``stats``, ``curate``, ``eval``.

Thin: the logic lives in tuneport.curate.stats, tuneport.curate.pipeline and tuneport.evaluate.run.
"""

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tuneport.cli._console import print_json
from tuneport.cli._names import TARGET_HELP, target_for
from tuneport.errors import EXIT_OK, EXIT_PROVIDER, BudgetError, ConfigError, require_extra

FromOpt = Annotated[
    str | None, typer.Option("--from", help="Input format (default: detected from content).")
]
ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p", help="Count tokens as this provider does (default: openai)."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Count tokens for this model (default: gpt-4.1-mini)."),
]
BinsOpt = Annotated[int, typer.Option("--bins", min=1, max=500, help="Histogram bins.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]


class _Bar:
    """Renders :class:`tuneport.progress.Progress` callbacks on stderr (terminals only)."""

    def __init__(self) -> None:
        from tuneport.cli._console import err

        self._err = err
        self._live: Any = None
        self._task: Any = None

    def start(self, task: str, total: int | None = None) -> None:
        self.finish()
        if not self._err.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._live = Progress(
            "[bold]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._err,
            transient=True,
        )
        self._live.start()
        self._task = self._live.add_task(task, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._live is not None:
            self._live.advance(self._task, amount)

    def note(self, text: str) -> None:
        self._err.print(escape(text))

    def finish(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _stats_table(stats: Any) -> Table:
    table = Table(title=None, show_edge=False, header_style="bold")
    table.add_column("tokens per")
    for name in ("count", "mean", "p50", "p90", "p95", "p99", "max"):
        table.add_column(name, justify="right")
    rows = [("example", stats.per_example)] + [
        (f"{role} turn", dist) for role, dist in stats.per_role.items()
    ]
    for label, d in rows:
        table.add_row(
            label,
            f"{d.count:,}",
            _fmt(d.mean),
            _fmt(d.p50),
            _fmt(d.p90),
            _fmt(d.p95),
            _fmt(d.p99),
            f"{d.max:,}",
        )
    return table


def _text_histogram(stats: Any, width: int = 40) -> list[str]:
    hist = stats.histogram
    top = max(hist.counts) or 1
    lines = []
    for i, count in enumerate(hist.counts):
        lo, hi = hist.edges[i], hist.edges[i + 1]
        bar = "█" * round(width * count / top)
        lines.append(f"{lo:>8,.0f} – {hi:<8,.0f} {bar} {count:,}")
    return lines


def _counter_line(stats: Any) -> str:
    if stats.exact:
        return f"tokens: {stats.counter} (exact)"
    band = "" if "±" in stats.counter else f", ±{(stats.error_band or 0) * 100:.0f}%"
    return f"tokens: {stats.counter} (approximate{band})"


# --- stats -------------------------------------------------------------------------------------


def stats(
    data: Annotated[Path, typer.Argument(help="Dataset file (any format tuneport reads).")],
    from_: FromOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    bins: BinsOpt = 20,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=1, help="Also count examples over this many tokens."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the histogram as a PNG here.")
    ] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Token-length distribution per example and per role, with a histogram."""
    from tuneport.cli._console import out
    from tuneport.curate.stats import compute_stats, iter_input, plot_histogram
    from tuneport.providers.registry import default_counter

    counter = default_counter(provider, model)
    if plot is not None:
        from tuneport.files import check_output

        check_output(plot, force=force, inputs=(data,))
    result = compute_stats(
        (record for _, record in iter_input(data, from_)),
        counter,
        bins=bins,
        limit=max_tokens,
        source=str(data),
    )
    if plot is not None:
        plot_histogram(result, plot, cutoff=max_tokens, force=force)
    if as_json:
        print_json(result)
        return
    out.print(f"[bold]{escape(str(data))}[/]: {result.records:,} examples")
    out.print(escape(_counter_line(result)))
    out.print(_stats_table(result))
    out.print()
    for line in _text_histogram(result):
        out.print(line, markup=False)
    if result.over_limit is not None:
        out.print(f"{result.over_limit:,} examples over {max_tokens:,} tokens")
    if plot is not None:
        out.print(f"histogram: {escape(str(plot))}")


# --- curate ------------------------------------------------------------------------------------


_BY_ALIASES = {"tokens": "tokens", "longest": "tokens", "-tokens": "-tokens", "shortest": "-tokens"}


def curate(
    data: Annotated[Path, typer.Argument(help="Dataset file (any format tuneport reads).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Curated (training) output file.")],
    from_: FromOpt = None,
    to: Annotated[str, typer.Option("--to", help=TARGET_HELP)] = "canonical",
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=1, help="1. Drop examples over N tokens."),
    ] = None,
    dedup: Annotated[
        str | None,
        typer.Option(
            "--dedup",
            help="2. Drop duplicates: exact (same content), near (embedding cosine), "
            "minhash (Jaccard, for large data).",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Similarity to count as duplicate (near: cosine, default 0.95; minhash: "
            "Jaccard, default 0.8).",
        ),
    ] = None,
    embedding_model: Annotated[
        str | None,
        typer.Option(
            "--embedding-model",
            help="sentence-transformers model folder or cached name for --dedup near "
            "(default: the packaged offline all-MiniLM-L6-v2).",
        ),
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, help="3. Keep K examples ranked --by.")
    ] = None,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            help="Ranking for --top-k: tokens (alias longest) keeps the K longest, -tokens "
            "(alias shortest) the K shortest; ties go to the earlier example.",
        ),
    ] = "tokens",
    sample: Annotated[
        int | None, typer.Option("--sample", min=1, help="4. Keep a random sample of N.")
    ] = None,
    split: Annotated[
        float | None,
        typer.Option(
            "--split", help="5. Move a share (0.1 = 10%) or a count (50) to a validation file."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for --sample and --split.")] = 0,
    validation_out: Annotated[
        Path | None,
        typer.Option(
            "--validation-out", help="Validation file for --split (default: OUT's stem + .val)."
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write the input's token histogram as a PNG here."),
    ] = None,
    bins: BinsOpt = 20,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Filter, deduplicate, rank, sample and split a dataset, in that fixed order.

    Each step is optional and reports how many examples it removed.
    """
    from pydantic import ValidationError

    from tuneport.curate.pipeline import CurateOptions, curate_file
    from tuneport.curate.stats import plot_histogram
    from tuneport.files import check_output
    from tuneport.providers.registry import default_counter

    if by not in _BY_ALIASES:
        raise ConfigError(f"--by {by!r} is not a ranking", hint="use --by longest or shortest")
    if dedup is not None and dedup not in ("exact", "near", "minhash"):
        raise ConfigError(f"--dedup {dedup!r} is not a method", hint="use exact, near or minhash")
    try:
        options = CurateOptions(
            max_tokens=max_tokens,
            dedup=dedup,
            threshold=threshold,
            embedding_model=embedding_model,
            top_k=top_k,
            by=_BY_ALIASES[by],
            sample=sample,
            split=split,
            seed=seed,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "options"
        flag = "--" + field.replace("_", "-")
        raise ConfigError(
            f"{flag.removeprefix('--')}: {first['msg'].removeprefix('Value error, ')}",
            hint=f"change {flag} (see `tuneport curate --help`)",
        ) from None
    if plot is not None:
        check_output(plot, force=force, inputs=(data,))
        require_extra("matplotlib", "curate", "--plot")  # before any output is written
    counter = default_counter(provider, model)
    bar = _Bar()
    result = curate_file(
        data,
        output,
        options,
        counter,
        to=target_for(to),
        fmt=from_,
        validation_out=validation_out,
        force=force,
        progress=bar,
        bins=bins,
    )
    bar.finish()
    if plot is not None and result.input_stats is not None:
        plot_histogram(result.input_stats, plot, cutoff=max_tokens, force=force)
    if as_json:
        print_json(result)
        return
    _print_curation(result, plot)


def _print_curation(result: Any, plot: Path | None) -> None:
    from tuneport.cli._console import out

    stats = result.input_stats
    out.print(f"[bold]{escape(str(result.source))}[/]: {result.input_records:,} examples")
    if stats is not None:
        p = stats.per_example
        out.print(
            escape(
                f"{_counter_line(stats)}; per example mean {_fmt(p.mean)}, p50 {_fmt(p.p50)}, "
                f"p95 {_fmt(p.p95)}, max {p.max:,}"
            )
        )
    table = Table(show_edge=False, header_style="bold")
    for name, justify in (("step", "left"), ("what", "left"), ("in", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("removed", justify="right")
    table.add_column("out", justify="right")
    for step in result.steps:
        table.add_row(
            step.step,
            escape(step.detail),
            f"{step.before:,}",
            f"{step.removed:,}",
            f"{step.after:,}",
        )
    if result.steps:
        out.print(table)
    else:
        out.print("no curation step given: the data is copied as is")
    for step in result.steps:
        pairs = [r for r in step.removals if r.kept_line is not None][:5]
        for r in pairs:
            sim = f" ({r.similarity:.3f})" if r.similarity is not None else ""
            out.print(f"  duplicate: line {r.line} ≈ line {r.kept_line}{sim}")
        more = sum(1 for r in step.removals if r.kept_line is not None) - len(pairs)
        if more > 0:
            out.print(f"  … and {more:,} more (see --json)")
    out.print(f"wrote {result.train_records:,} examples to {escape(str(result.train_out))}")
    if result.validation_out is not None:
        out.print(
            f"wrote {result.validation_records:,} validation examples to "
            f"{escape(str(result.validation_out))}"
        )
    if plot is not None:
        out.print(f"histogram: {escape(str(plot))}")


# --- eval --------------------------------------------------------------------------------------


def eval_(
    data: Annotated[
        Path, typer.Option("--data", help="Held-out data: prompt turns + reference answer.")
    ],
    models: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="A model to compare (repeat): ft:..., local:ID, a job id, a Vertex endpoint, "
            "or provider:model such as openai:gpt-4.1-mini.",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write OUT.md, OUT.csv and OUT.json reports."),
    ] = None,
    from_: FromOpt = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N held-out examples.")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Calls in flight at once.")
    ] = 4,
    max_answer_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Longest answer to ask for (tokens).")
    ] = 512,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, help="Sampling temperature.")
    ] = 0.0,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, max=10, help="Tries per call (first included).")
    ] = 3,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="Refuse to run if the estimate exceeds this (USD)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before paid calls.")] = False,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            help="TOML price file merged over the built-in table (or set TUNEPORT_PRICES).",
            dir_okay=False,
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Backend setting key=value for every model (repeatable), e.g. project=P.",
            show_default=False,
        ),
    ] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> int:
    """Ask every model every held-out prompt; compare answers with exact match, F1, ROUGE-L."""
    from tuneport.cli._console import err, out
    from tuneport.cli.chat import consent_to_hourly
    from tuneport.cli.estimate import load_prices_or_exit
    from tuneport.curate.stats import iter_input
    from tuneport.evaluate.run import (
        EvalOptions,
        cases_from_records,
        check_eval_budget,
        estimate_cost,
        report_paths,
        resolve_targets,
        run_eval,
        write_report,
    )
    from tuneport.files import check_output
    from tuneport.jobs.jobfile import parse_set
    from tuneport.jobs.store import open_store
    from tuneport.pricing.budget import resolve_max_cost
    from tuneport.providers import registry

    targets = resolve_targets(models, settings=parse_set(sets or []))
    cases = cases_from_records(iter_input(data, from_), source=str(data), limit=limit)
    if output is not None:
        for path in report_paths(output).values():
            check_output(path, force=force, inputs=(data,))
    table = load_prices_or_exit(prices, sorted({t.provider for t in targets}))
    estimate = estimate_cost(cases, targets, max_tokens=max_answer_tokens, prices=table)
    for line in estimate.lines:
        if line.cost_usd is not None:
            approx = "" if line.exact else f" (±{(line.error_band or 0) * 100:.0f}%)"
            err.print(
                escape(
                    f"{line.spec}: ≈${line.cost_usd:,.4f}{approx} at most "
                    f"({line.prompt_tokens:,} prompt tokens × ${line.input_per_million}/M + "
                    f"{line.max_output_tokens:,} answer tokens × ${line.output_per_million}/M)"
                )
            )
        elif line.free:
            err.print(escape(f"{line.spec}: no money figure ({line.note})"))
        else:
            err.print(escape(f"{line.spec}: cost unknown ({line.note})"))
    check_eval_budget(estimate, resolve_max_cost(max_cost))
    if estimate.paid and not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"eval would spend up to ${estimate.total_usd:,.4f} on remote models",
                hint="pass --yes to confirm (and --max-cost to cap it)",
            )
        if not typer.confirm(f"Spend up to ${estimate.total_usd:,.4f}?", err=True):
            raise BudgetError("declined the estimated cost; nothing was sent")
    # what a target would start that bills by the hour (a deployment) is said and asked first
    built = {t.spec: registry.get(t.provider, t.settings, store=open_store()) for t in targets}
    for t in targets:
        consent_to_hourly(built[t.spec], t.model, yes=yes)
    options = EvalOptions(
        max_tokens=max_answer_tokens,
        temperature=temperature,
        concurrency=concurrency,
        attempts=attempts,
    )
    bar = _Bar()
    report = run_eval(
        cases, targets, options=options, progress=bar, data=str(data), providers=built
    )
    bar.finish()
    written = write_report(report, output, force=force) if output is not None else {}
    if as_json:
        print_json(report)
    else:
        from tuneport.cli._render import fit_table

        metrics: dict[str, Callable[[Any], str]] = {
            "model": lambda s: escape(s.spec),
            "answered": lambda s: str(s.answered),
            "failed": lambda s: str(s.failed),
            "exact match": lambda s: f"{s.exact_match:.3f}",
            "token F1": lambda s: f"{s.token_f1:.3f}",
            "ROUGE-L": lambda s: f"{s.rouge_l:.3f}",
            "mean s": lambda s: f"{s.mean_seconds:.2f}",
        }

        def build(columns: Sequence[str]) -> Table:
            table = Table(show_edge=False, header_style="bold")
            for name in columns:  # model names are never cut or broken (fit_table stacks)
                table.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
            for s in report.summary:
                table.add_row(*(metrics[name](s) for name in columns))
            return table

        out.print(f"[bold]{escape(str(data))}[/]: {len(cases):,} held-out prompts")
        out.print(fit_table(out, build, list(metrics), []))
        for path in written.values():
            out.print(f"wrote {escape(str(path))}")
    if report.failed:
        err.print(
            f"error: {report.failed} answer(s) failed after {attempts} tries; they score 0 "
            "(see the error column of the report)"
        )
        return EXIT_PROVIDER
    return EXIT_OK


def register(app: typer.Typer) -> None:
    """Add ``stats``, ``curate`` and ``eval`` to ``app``."""
    app.command("stats")(stats)
    app.command("curate")(curate)
    app.command("eval")(eval_)
