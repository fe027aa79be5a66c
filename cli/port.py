"""`tuneport port SOURCE --to PROVIDER[:MODEL]`, `tuneport port list`, `tuneport port show ID`."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tuneport.cli._console import print_json


def port(
    source: Annotated[
        str,
        typer.Argument(
            help="What to port: a tuneport job id, a tuned model id (ft:...; other providers' "
            "tuned models with --from) or the provider's job id (with --from); or `list`, or "
            "`show ID`. Sources: OpenAI, Azure, Together, Fireworks, Vertex, local.",
            show_default=False,
        ),
    ],
    port_id: Annotated[
        str | None, typer.Argument(help="The port id, after `show`.", show_default=False)
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Target as PROVIDER[:MODEL], e.g. vertex:gemini-2.5-flash."),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option("--from", help="The source's provider, when SOURCE does not tell."),
    ] = None,
    golden: Annotated[
        int, typer.Option("--golden", min=1, help="Held-out prompts to record and compare.")
    ] = 50,
    max_answer_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Longest answer to ask for (tokens).")
    ] = 512,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Calls in flight at once.")
    ] = 4,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="Refuse if recording + training + asking may cost more."),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Target backend option key=value (repeatable).", show_default=False
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before paid steps.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> int:
    """Move a tuned model to another provider: fetch its data, record its answers, train the
    same on the target, and compare. Re-run the same command to continue a stopped port."""
    from tuneport.errors import ConfigError

    if source == "list":
        return _list(as_json)
    if source == "show":
        if port_id is None:
            raise ConfigError("`port show` needs a port id", hint="see `tuneport port list`")
        return _show(port_id, as_json)
    if port_id is not None:
        raise ConfigError(f"unexpected argument {port_id!r}", hint="port one SOURCE at a time")
    if to is None:
        raise ConfigError("port needs a target", hint="pass --to PROVIDER[:MODEL]")
    return _run(
        source, to, from_, golden, max_answer_tokens, concurrency, max_cost, sets, yes, as_json
    )


def _run(
    source: str,
    to: str,
    from_: str | None,
    golden: int,
    max_tokens: int,
    concurrency: int,
    max_cost: float | None,
    sets: list[str] | None,
    yes: bool,
    as_json: bool,
) -> int:
    from tuneport.cli._console import err, out
    from tuneport.cli._render import WatchView
    from tuneport.cli.train import confirm_or_refuse
    from tuneport.jobs.jobfile import parse_set
    from tuneport.jobs.port import new_port, run_port
    from tuneport.pricing.budget import resolve_max_cost

    settings: dict[str, Any] = parse_set(sets or [])
    spec = new_port(
        source,
        to,
        source_provider=from_,
        golden=golden,
        max_tokens=max_tokens,
        concurrency=concurrency,
        settings=settings,
    )
    err.print(
        f"port {spec.id}: {spec.source_provider} {source} -> {spec.target_provider} "
        f"{spec.target_model}",
        markup=False,
    )

    def show(line: str) -> None:
        err.print(line, markup=False)

    def confirm(lines: list[str]) -> bool:
        return confirm_or_refuse(
            "Start the paid steps of this port?", yes=yes, what="start a paid port"
        )

    def step(name: str) -> None:
        err.print(f"{name}: done", markup=False)

    view = WatchView(err)
    try:
        state = run_port(
            spec,
            confirm=confirm,
            show=show,
            max_cost=resolve_max_cost(max_cost),
            after_step=step,
            settings=settings,
            renderer=view,
        )
    finally:
        view.close()
    if as_json:
        print_json(state)
        return 0
    from tuneport.jobs.port import port_dir

    out.print(escape(state.verdict or ""))
    for name in ("report.md", "report.json", "report.csv"):
        out.print(f"wrote {escape(str(port_dir(spec.id) / name))}")
    return 0


def _list(as_json: bool) -> int:
    from rich.table import Table

    from tuneport.cli._console import out
    from tuneport.jobs.port import STEPS, list_ports

    ports = list_ports()
    if as_json:
        print_json([p.model_dump(mode="json") for p in ports])
        return 0
    if not ports:
        out.print("no ports yet; start one with `tuneport port SOURCE --to PROVIDER`")
        return 0
    table = Table()
    for name in ("id", "source", "target", *STEPS):
        # ids and step states are never cut; long source/target names fold, whole
        table.add_column(name, overflow="fold", no_wrap=name not in ("source", "target"))
    for p in ports:
        s = p.spec
        table.add_row(
            s.id,
            escape(f"{s.source_provider} {s.source}"),
            escape(f"{s.target_provider} {s.target_model}"),
            *(escape(p.steps[name]) for name in STEPS),
        )
    out.print(table)
    return 0


def _show(port_id: str, as_json: bool) -> int:
    import json

    from tuneport.cli._console import out
    from tuneport.jobs.port import STEPS, port_dir, state_of

    folder = port_dir(port_id)
    state = state_of(folder)
    report_path: Path = folder / "report.json"
    if as_json:
        body: dict[str, Any] = state.model_dump(mode="json")
        if report_path.is_file():
            body["report"] = json.loads(report_path.read_text(encoding="utf-8"))
        print_json(body)
        return 0
    s = state.spec
    out.print(
        f"[bold]{s.id}[/]: {escape(s.source_provider)} {escape(s.source)} -> "
        f"{escape(s.target_provider)} {escape(s.target_model)}"
    )
    for name in STEPS:
        out.print(f"  {name}: {escape(state.steps[name])}")
    if state.job_id:
        out.print(f"  target job: {state.job_id}")
    if state.verdict:
        out.print(escape(state.verdict))
        md = folder / "report.md"
        out.print(f"report: {escape(str(md))}")
    return 0


def register(app: typer.Typer) -> None:
    """Add ``port`` to ``app``."""
    app.command("port")(port)
