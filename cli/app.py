"""The typer application: each command group lives in its own module and registers itself."""

from __future__ import annotations

from typing import Annotated, Any, get_args

import typer
from typer.core import TyperOption

from tuneport.cli import chat, curate, data, doctor, estimate, export, jobs, port, train, ui

# -h works like --help on every command (click passes it down to subcommand contexts)
CONTEXT = {"help_option_names": ["-h", "--help"]}
SUMMARY = (
    "One fine-tuning dataset in; validated, priced and launched on OpenAI, Vertex AI, Together "
    "AI, Fireworks AI or a local GPU."
)
# what a repeatable option takes, by its flag (others show their element type, e.g. <str>)
METAVARS = {"--set": "KEY=VALUE"}
_typer_type = TyperOption.display_type_rich


def _readable_type(self: TyperOption, ctx: Any) -> str | None:
    """The type column of ``-h``: typer 0.29 shows ``<bool>`` for a flag (it takes no value)
    and ``<list[str]>`` for a repeatable option (it takes one value per use)."""
    if self.metavar is not None:
        return self.metavar
    if self.is_flag:
        return None
    if self.multiple:
        element = self.type_descriptor.annotation
        inner = self._bare_type(get_args(element)[0]) if get_args(element) else "str"
        return METAVARS.get(self.opts[0], f"<{inner}>")
    return _typer_type(self, ctx)


TyperOption.display_type_rich = _readable_type  # type: ignore[method-assign]


app = typer.Typer(
    name="tuneport",
    help=SUMMARY,
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
    """One fine-tuning dataset in; validated, priced and launched on OpenAI, Vertex AI,
    Together AI, Fireworks AI or a local GPU."""


@app.command()
def version() -> None:
    """Print tuneport's version."""
    _print_version(True)
