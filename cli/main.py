"""Entry point: runs the typer app and turns TuneportError into one line + exit code."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from tuneport.errors import EXIT_INTERRUPTED, TuneportError, redact


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (used by tests in-process)."""
    from tuneport.cli._console import err, reset_notices
    from tuneport.cli._hints import adapt, flags_of
    from tuneport.cli.app import app
    from tuneport.retry import retry_notes

    def retrying(text: str) -> None:  # a slow failure is never silent
        err.print(f"note: {redact(text)}", markup=False, style="dim")

    args = list(sys.argv[1:] if argv is None else argv)
    reset_notices()
    try:
        with retry_notes(retrying):
            result = app(args=args, prog_name="tuneport", standalone_mode=False)
    except TuneportError as exc:
        known = flags_of(app, args)
        for line in exc.lines():
            print(f"error: {adapt(line, known)}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print(
            "interrupted (remote jobs keep running; resume with `tuneport jobs watch ID`)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except typer.Exit as exc:  # --version: raised from an eager callback
        code = getattr(exc, "exit_code", 0)
        return code if isinstance(code, int) else 0
    except SystemExit as exc:  # typer's --show-completion / --install-completion exit this way
        return exc.code if isinstance(exc.code, int) else 0
    except typer.TyperException as exc:  # usage errors from typer's bundled click
        if type(exc).__name__ == "NoArgsIsHelpError":
            return 0  # bare `tuneport` / `tuneport jobs`: the help was printed, nothing is wrong
        fmt = getattr(exc, "format_message", None)
        message = " ".join(str(fmt() if callable(fmt) else exc).split())
        path = getattr(getattr(exc, "ctx", None), "command_path", None) or "tuneport"
        fix = f" (fix: see `{path} --help`)" if "(fix: " not in message else ""
        print(f"error: {redact(message)}{fix}", file=sys.stderr)
        code = getattr(exc, "exit_code", 2)
        return code if isinstance(code, int) else 2
    return result if isinstance(result, int) else 0


def main() -> NoReturn:
    sys.exit(run())
