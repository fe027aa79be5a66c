"""The typer application: each command group lives in its own module and registers itself."""

from __future__ import annotations

import typer

from tuneport.cli import chat, curate, data, estimate, export, jobs, train

app = typer.Typer(
    name="tuneport",
    help="One fine-tuning dataset in; validated, priced and launched on OpenAI, Vertex AI or a "
    "local GPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (data, estimate, train, jobs, chat, export, curate):
    _module.register(app)


@app.command()
def version() -> None:
    """Print tuneport's version."""
    from tuneport import __version__
    from tuneport.cli._console import out

    out.print(f"tuneport {__version__}")
