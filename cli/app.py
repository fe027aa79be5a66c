"""The typer application: each command group lives in its own module and registers itself."""

from __future__ import annotations

from typing import Annotated

import typer

from tuneport.cli import chat, curate, data, doctor, estimate, export, jobs, port, train, ui

# -h works like --help on every command (click passes it down to subcommand contexts)
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="tuneport",
    help="One fine-tuning dataset in; validated, priced and launched on OpenAI, Vertex AI or a "
    "local GPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, pwsh
    context_settings=CONTEXT,
)

for _module in (data, estimate, train, jobs, port, chat, export, curate, doctor, ui):
    _module.register(app)


def _print_version(value: bool) -> None:
    if value:
        from tuneport import __version__
        from tuneport.cli._console import out

        out.print(f"tuneport {__version__}", markup=False)
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print tuneport's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """One fine-tuning dataset in; validated, priced and launched on OpenAI, Vertex AI or a
    local GPU."""


@app.command()
def version() -> None:
    """Print tuneport's version."""
    _print_version(True)
