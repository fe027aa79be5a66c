"""`tuneport chat TARGET`: talk to a tuned model (job id, ft:..., local:ID, endpoint, or
provider:model)."""

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from tuneport.cli._console import print_json

HISTORY_FILE = "chat_history"  # in $TUNEPORT_HOME: the REPL's line history (mode 0600)
HISTORY_LINES = 1000


def _line_editing(path: Path) -> Callable[[], None]:
    """Line editing and history for the REPL (stdlib readline, where Python has it); returns
    the function that saves the history."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input()
        return lambda: None
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LINES)

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
            path.chmod(0o600)
        except OSError:
            pass

    return save


def _ask(prompt: str) -> str:
    """One line from the user; the prompt goes to stderr unless stdout is the terminal (replies
    alone go to a pipe)."""
    if sys.stdout.isatty():
        return input(prompt)
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return input()


def chat(
    target: Annotated[
        str | None,
        typer.Argument(
            help="Job id (tp-...), tuned model (ft:..., local:ID), Vertex endpoint, "
            "provider:model (openai:gpt-4.1-mini), or a base model with --provider.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="The model to talk to (instead of TARGET)."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="Provider of the model.")
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", help="Send one message, print the reply, exit.")
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Provider option key=value (repeatable).", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Start what bills by the hour (a deployment) unasked."),
    ] = False,
) -> None:
    """Chat with a model: one reply with --message, else a REPL (/exit or Ctrl-D ends).

    The REPL has line editing and history; replies stream where the backend streams.
    """
    from tuneport.cli._console import err, out
    from tuneport.errors import ConfigError
    from tuneport.jobs.chat import EXIT_WORDS, open_chat
    from tuneport.jobs.jobfile import parse_set
    from tuneport.paths import home
    from tuneport.providers.base import ChatOptions

    if target is not None and model is not None:
        raise ConfigError(
            f"both TARGET {target!r} and --model {model!r} name a model",
            hint="give one of them (send a message with --message TEXT)",
        )
    name = target if target is not None else model
    if name is None:
        raise ConfigError(
            "no model to chat with",
            hint="give a job id, a tuned model or provider:model (or --model M --provider P)",
        )
    session = open_chat(
        name,
        provider=provider,
        system=system,
        options=ChatOptions(temperature=temperature, max_tokens=max_tokens),
        settings=parse_set(sets or []),
    )
    consent_to_hourly(session.provider, session.model, yes=yes)

    def write(piece: str) -> None:
        out.file.write(piece)
        out.file.flush()

    def reply_to(text: str) -> None:
        if as_json:
            print_json(session.send(text).model_dump(mode="json", exclude_none=True))
            return
        streamed: list[str] = []

        def shown(piece: str) -> None:
            streamed.append(piece)
            write(piece)

        reply = session.send(text, on_text=shown)
        if not streamed:
            write(reply.content or "")
        write("\n")

    if message is not None:
        reply_to(message)
        return
    interactive = sys.stdin.isatty()
    save_history = _line_editing(home() / HISTORY_FILE) if interactive else (lambda: None)
    err.print(
        f"chatting with {session.model} ({session.provider.name}); /exit or Ctrl-D ends",
        markup=False,
    )
    try:
        while True:
            try:
                text = _ask("you> ")
            except EOFError:
                err.print()
                return
            if text.strip() in EXIT_WORDS:
                return
            if not text.strip():
                continue
            reply_to(text)
    finally:
        save_history()


def consent_to_hourly(provider: object, model: str, *, yes: bool) -> None:
    """Say what chatting would start that bills by the hour (what, price per hour, how to delete
    it) and ask as `train` does; nothing starts without consent."""
    from tuneport.cli._console import err
    from tuneport.cli.train import confirm_or_refuse
    from tuneport.jobs.launch import NotConfirmedError
    from tuneport.providers.base import StartsHourly

    if not isinstance(provider, StartsHourly):
        return
    resources = provider.hourly_resources(model)
    for r in resources:
        rate = (
            f"${r.per_hour_usd:,.2f} per hour"
            if r.per_hour_usd is not None
            else "price per hour unknown"
        )
        err.print(
            f"this starts {r.what}, billed by the hour while it runs, used or not: {rate} "
            f"({r.price_source}). Delete it with {r.delete}",
            markup=False,
        )
    what = "start a resource billed by the hour"
    if resources and not confirm_or_refuse("Start it?", yes=yes, what=what):
        raise NotConfirmedError("not started: declined at the prompt; nothing was created")
    if resources:
        provider.consent_hourly()  # the backend starts nothing billed by the hour without it


def register(app: typer.Typer) -> None:
    """Add ``chat`` to ``app``."""
    app.command("chat")(chat)
