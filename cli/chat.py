"""`tuneport chat TARGET`: talk to a tuned model (job id, ft:..., local:ID, endpoint)."""

import sys
from typing import Annotated

import typer

from tuneport.cli._console import print_json


def chat(
    target: Annotated[
        str,
        typer.Argument(
            help="Job id (tp-...), tuned model (ft:..., local:ID), Vertex endpoint, or a base "
            "model with --provider."
        ),
    ],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send one message and exit.")
    ] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Provider of TARGET.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Provider option key=value (repeatable).", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
) -> None:
    """Chat with a model: one-shot with -m, else a REPL keeping history (/exit or EOF ends)."""
    from tuneport.cli._console import err, out
    from tuneport.jobs.chat import EXIT_WORDS, open_chat
    from tuneport.jobs.jobfile import parse_set
    from tuneport.providers.base import ChatOptions

    session = open_chat(
        target,
        provider=provider,
        system=system,
        options=ChatOptions(temperature=temperature, max_tokens=max_tokens),
        settings=parse_set(sets or []),
    )
    if message is not None:
        reply = session.send(message)
        if as_json:
            print_json(reply.model_dump(mode="json", exclude_none=True))
        else:
            out.print(reply.content or "", markup=False)
        return
    err.print(f"chatting with {session.model} ({session.provider.name}); /exit or Ctrl-D ends")
    while True:
        try:
            sys.stderr.write("you> ")  # the prompt on stderr: stdout holds replies only
            sys.stderr.flush()
            text = input()
        except EOFError:
            err.print()
            return
        if text.strip() in EXIT_WORDS:
            return
        if not text.strip():
            continue
        reply = session.send(text)
        if as_json:
            print_json(reply.model_dump(mode="json", exclude_none=True))
        else:
            out.print(reply.content or "", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``chat`` to ``app``."""
    app.command("chat")(chat)
