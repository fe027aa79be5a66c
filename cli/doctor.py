"""`tuneport doctor`: is every configured backend ready? (credentials, reachability, packages,
GPU, price-table age; secrets are never printed)."""

from typing import Annotated

import typer

from tuneport.cli._console import print_json

MARK = {
    "ok": "[green]ok[/]",
    "warn": "[yellow]warn[/]",
    "fail": "[red]FAIL[/]",
    "skip": "[dim]skip[/]",
}
VERDICT = {"ready": "[green]ready[/]", "not usable": "[red]not usable[/]"}


def doctor(
    provider: Annotated[
        list[str] | None, typer.Option("--provider", "-p", help="Only these providers.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=3600, help="Seconds per network check.")
    ] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> int:
    """Is each backend ready? Exit 1 when a configured one is not usable.

    Checks keys (never printed) and servers, Vertex credentials, project and bucket,
    torch/CUDA/bitsandbytes for local, and the age of the prices.
    """
    from rich.markup import escape

    from tuneport.cli._console import out
    from tuneport.errors import EXIT_OK, EXIT_PROBLEMS
    from tuneport.jobs.doctor import diagnose
    from tuneport.providers import registry

    for name in provider or []:
        registry.backend(name)  # an unknown provider is exit 3, like everywhere
    report = diagnose(provider, timeout=timeout)
    ok = all(h.usable for h in report if h.configured)
    if as_json:
        print_json(
            {
                "ok": ok,
                "backends": [
                    {
                        "name": h.name,
                        "configured": h.configured,
                        "usable": h.usable,
                        "env": h.env,
                        "checks": [
                            {"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix}
                            for c in h.checks
                        ],
                    }
                    for h in report
                ],
            }
        )
        return EXIT_OK if ok else EXIT_PROBLEMS
    for health in report:
        verdict = VERDICT.get(health.verdict, f"[dim]{health.verdict}[/]")
        out.print(f"[bold]{health.name}[/] ({escape(health.title)}): {verdict}")
        for check in health.checks:
            out.print(
                f"  {MARK[check.status]} {escape(check.name)}: {escape(check.detail)}",
                soft_wrap=False,
            )
            if check.fix and check.status != "ok":
                out.print(f"       fix: {escape(check.fix)}", soft_wrap=False)
        if health.env:
            shown = ", ".join(f"{var} {'set' if on else 'unset'}" for var, on in health.env.items())
            out.print(f"  [dim]env: {escape(shown)}[/]", soft_wrap=False)
    configured = [h.name for h in report if h.configured]
    if not configured:
        out.print("no backend is configured yet (see the fixes above)")
    elif ok:
        out.print(f"every configured backend is ready ({', '.join(configured)})")
    else:
        broken = [h.name for h in report if h.configured and not h.usable]
        out.print(f"[red]not usable:[/] {', '.join(broken)}")
    return EXIT_OK if ok else EXIT_PROBLEMS


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to ``app``."""
    app.command("doctor")(doctor)
