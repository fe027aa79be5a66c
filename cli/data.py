"""Data commands: ``convert``, ``validate``, ``inspect`` (thin: logic lives in tuneport.data)."""

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tuneport.cli._names import PROVIDER_HELP, TARGET_HELP, target_for
from tuneport.errors import EXIT_OK, EXIT_PROBLEMS, ConfigError

# A progress bar is worth drawing only for files at least this big (bytes).
PROGRESS_MIN_BYTES = 4 << 20

FromOpt = Annotated[
    str | None, typer.Option("--from", help="Input format (default: detected from content).")
]
MapOpt = Annotated[
    str | None,
    typer.Option("--map", help="Table columns to roles, e.g. question=user,answer=assistant."),
]
SystemOpt = Annotated[
    str | None, typer.Option("--system", help="Fixed system prompt for table rows.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
DesirableOpt = Annotated[
    bool,
    typer.Option(
        "--desirable-only",
        help="KTO data (a true/false label per row): keep the label: true rows as SFT examples "
        "and leave out the rest (refused otherwise).",
    ),
]


def parse_map(text: str | None) -> dict[str, str] | None:
    """``a=b,c=d`` → ``{"a": "b", "c": "d"}``; ConfigError on a malformed pair."""
    if not text:
        return None
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        column, sep, role = pair.partition("=")
        if not sep or not column.strip() or not role.strip():
            raise ConfigError(
                f"--map: {pair!r} is not column=role", hint="e.g. --map q=user,a=assistant"
            )
        if role.strip() not in ("system", "user", "assistant", "id"):
            raise ConfigError(
                f"--map: unknown role {role.strip()!r}",
                hint="map columns to system, user, assistant or id",
            )
        mapping[column.strip()] = role.strip()
    return mapping


@contextmanager
def _progress(path: Path, task: str) -> Iterator[Callable[[int], None] | None]:
    """A rich bar on stderr for big files when stderr is a terminal; else nothing."""
    from tuneport.cli._console import err

    size = path.stat().st_size if path.is_file() else 0
    if not err.is_terminal or size < PROGRESS_MIN_BYTES:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(f"[bold]{task}", *columns, console=err, transient=True) as bar:
        handle = bar.add_task(task, total=size)
        yield lambda n: bar.advance(handle, n)


def _read_kw(map_: str | None, system: str | None, desirable_only: bool) -> dict[str, Any]:
    return {"column_map": parse_map(map_), "system": system, "desirable_only": desirable_only}


def _print_json(data: Any) -> None:
    from tuneport.cli._console import print_json

    print_json(data)


# --- convert ------------------------------------------------------------------------------------


def convert(
    input: Annotated[
        Path, typer.Argument(help="Dataset file (or HF dataset folder); - reads stdin.")
    ],
    to: Annotated[str, typer.Option("--to", help=TARGET_HELP)],
    from_: FromOpt = None,
    map_: MapOpt = None,
    system: SystemOpt = None,
    desirable_only: DesirableOpt = False,
    method: Annotated[
        str | None, typer.Option("--method", help="sft|dpo (default: from the records).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Output path (default: <stem>.<target>.jsonl); - writes to stdout.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
    as_json: JsonOpt = False,
) -> int:
    """Convert a dataset to a provider's training format (written atomically)."""
    from tuneport.cli._console import err, out
    from tuneport.cli._stdio import STDOUT_NAME, is_stdio, reading, text, writing
    from tuneport.data import default_output, export_records, read_records, records_only
    from tuneport.data.exporters import METHOD_KIND, target_of
    from tuneport.files import check_output, require_file

    name, to = to, target_for(to)
    target = target_of(to)
    if method is not None and method not in METHOD_KIND:
        raise ConfigError(f"unknown method {method!r}", hint="use --method sft or --method dpo")
    to_stdout = is_stdio(output)
    if to_stdout and as_json:
        raise ConfigError(
            "-o - writes the converted data to stdout; --json would mix into it",
            hint="drop --json, or write to a file with -o PATH",
        )
    if output is None and is_stdio(input):
        raise ConfigError(
            "reading stdin: say where the output goes", hint="pass -o PATH (or -o - for stdout)"
        )
    with ExitStack() as stack:
        source = stack.enter_context(reading(input))
        require_file(source)
        if to_stdout:  # written to a private file first, then copied to stdout whole
            dest = stack.enter_context(writing(Path("-"), folder_output=target.writer == "hf"))
        else:
            dest = output or default_output(source, to, name)
            check_output(dest, force=force, inputs=(source,), folder=target.writer == "hf")
        warnings: Counter[str] = Counter()
        with _progress(source, "converting") as advance:
            rows = read_records(
                source, from_, advance=advance, **_read_kw(map_, system, desirable_only)
            )
            result = export_records(
                records_only(rows, warnings),
                to,
                dest,
                force=force or to_stdout,
                inputs=(source,),
                method=method,
            )
        where = STDOUT_NAME if to_stdout else text(str(result.path), source, input)
    if as_json:
        _print_json({**result.model_dump(mode="json"), "path": where, "warnings": dict(warnings)})
        return EXIT_OK
    shown = err if to_stdout else out  # stdout holds the data itself with -o -
    shown.print(
        f"wrote {result.examples} examples to {escape(where)} "
        f"({result.format}, sha256 {result.sha256[:12]})"
    )
    for kind, count in result.dropped.items():
        shown.print(f"  not carried by {name}: {kind} in {count} example(s)")
    for kind, count in warnings.items():
        err.print(f"warning: {kind} ×{count} (run `tuneport validate` for lines)")
    return EXIT_OK


# --- validate -----------------------------------------------------------------------------------


def validate(
    file: Annotated[
        Path, typer.Argument(help="Dataset file (or HF dataset folder); - reads stdin.")
    ],
    provider: Annotated[str, typer.Option("--provider", "-p", help=PROVIDER_HELP)] = "openai",
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model: exact token counts and limit.")
    ] = None,
    from_: FromOpt = None,
    map_: MapOpt = None,
    system: SystemOpt = None,
    desirable_only: DesirableOpt = False,
    as_json: JsonOpt = False,
) -> int:
    """Check a dataset for a provider: every problem with file:line. Exit 1 if any error."""
    from tuneport.cli._stdio import reading, renamed
    from tuneport.providers import registry
    from tuneport.tokens.approx import CharCounter
    from tuneport.validation import validate_file

    backend = registry.backend(provider)
    # with --model: the counter the run is priced with (tuneport.jobs.quote) and its limit
    counter = registry.counter_for(provider, model) if model else CharCounter()
    effective = backend.limit_for(model)
    with reading(file) as source, _progress(source, "validating") as advance:
        report = renamed(
            validate_file(
                source,
                backend.rules,
                model,
                from_,
                counter=counter,
                token_limit=effective,
                advance=advance,
                **_read_kw(map_, system, desirable_only),
            ),
            source,
            file,
        )
    label = counter.label
    if as_json:
        data = report.model_dump(mode="json")
        extra = {"token_counter": label, "token_limit": effective}
        _print_json({"ok": report.ok, "counts": report.counts(), **extra, **data})
    else:
        limit_text = f"limit {effective:,} per example" if effective else "no per-example limit"
        _render_report(report, f"{label}, {limit_text}")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _render_report(report: Any, label: str) -> None:
    from tuneport.cli._console import out
    from tuneport.validation import group_problems

    out.print(
        f"{escape(report.file)}: {report.records} examples ({report.format}) for "
        f"{report.provider}{' ' + escape(report.model) if report.model else ''}; tokens: {label}"
    )
    for group in group_problems(report):
        style = "red" if group.severity == "error" else "yellow"
        out.print(
            f"[{style}]{group.severity}[/] {group.kind} ×{group.total} — fix: {escape(group.fix)}"
        )
        for p in group.first:
            out.print(f"  {escape(p.where)}: {escape(p.message)}")
        if group.total > len(group.first):
            out.print(f"  … and {group.total - len(group.first)} more")
    errors, warnings = len(report.errors), len(report.problems) - len(report.errors)
    verdict = "[green]valid[/]" if report.ok else f"[red]{errors} error(s)[/]"
    out.print(f"{verdict}, {warnings} warning(s)")


# --- inspect ------------------------------------------------------------------------------------


def inspect(
    input: Annotated[
        Path, typer.Argument(help="Dataset file (or HF dataset folder); - reads stdin.")
    ],
    from_: FromOpt = None,
    map_: MapOpt = None,
    system: SystemOpt = None,
    desirable_only: DesirableOpt = False,
    as_json: JsonOpt = False,
) -> int:
    """Show a dataset's format, record counts, roles, turns and lengths (characters)."""
    from tuneport.cli._console import out
    from tuneport.cli._stdio import reading, renamed
    from tuneport.data.summary import inspect_file

    with reading(input) as source, _progress(source, "reading") as advance:
        found = inspect_file(
            source, from_, advance=advance, **_read_kw(map_, system, desirable_only)
        )
        summary = renamed(found, source, input)
    if as_json:
        _print_json(summary.model_dump(mode="json"))
        return EXIT_OK
    kinds = f"{summary.chat} chat, {summary.preference} preference"
    out.print(
        f"{escape(summary.file)}: format {summary.format}, {summary.records} records ({kinds})"
    )
    if summary.unusable_rows:
        out.print(f"  unusable rows: {summary.unusable_rows} (see `tuneport validate`)")
    roles = ", ".join(f"{role} {n}" for role, n in summary.roles.items())
    out.print(f"  messages by role: {roles or 'none'}; tool calls: {summary.tool_calls}")
    t = summary.turns
    out.print(f"  turns per example: min {t['min']:g}, mean {t['mean']:g}, max {t['max']:g}")
    c = summary.chars
    out.print(
        f"  characters per example: p50 {c['p50']:,}, p90 {c['p90']:,}, p99 {c['p99']:,}, "
        f"max {c['max']:,}"
    )
    return EXIT_OK


def register(app: typer.Typer) -> None:
    """Add ``convert``, ``validate`` and ``inspect`` to ``app``."""
    app.command("convert")(convert)
    app.command("validate")(validate)
    app.command("inspect")(inspect)
