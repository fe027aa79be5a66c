"""`tuneport ui`: a local web dashboard over the job store (jobs, loss curves, plan, a chat
playground, eval and port reports). The web framework is imported only when the command runs."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from tuneport.errors import ConfigError


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one line saying why not (a port in use, an unknown address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(
            f"--host {host}: not an address of this machine ({exc.strerror})",
            hint="use 127.0.0.1 (the default) or an address this machine has",
        ) from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="pick another --port (0 lets the system choose one)",
        ) from None
    sock.listen(128)
    return sock


def serve(host: str, port: int, reports: list[Path]) -> int:
    try:
        import uvicorn

        from tuneport.cli.ui.app import UISettings, create_app
    except ImportError as exc:
        raise ConfigError(
            f"the dashboard needs the [ui] extra ({exc.name} is not installed)",
            hint="pip install 'tuneport[ui]'",
        ) from None
    from tuneport.cli._console import err
    from tuneport.jobs.store import open_store

    settings = UISettings(host=host, port=port, reports=reports, store=open_store())
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    err.print(f"tuneport ui: http://{shown}:{bound}/  (Ctrl-C stops it)", markup=False)
    if not settings.loopback:
        err.print(
            f"warning: listening on {host}: anyone who can reach it sees your jobs; cancel, "
            f"clean-up, chat and plan need this token: {settings.token}",
            markup=False,
        )
    config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        host: Annotated[
            str,
            typer.Option(help="Address to listen on; anything but loopback needs the token."),
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port.")] = 8765,
        reports: Annotated[
            list[Path] | None,
            typer.Option(
                "--reports",
                help="A folder with eval reports (`eval -o`) to show (repeatable).",
                show_default=False,
            ),
        ] = None,
    ) -> int:
        """A local web dashboard: jobs across providers, loss curves, plan, a chat playground
        and eval/port reports."""
        return serve(host, port, list(reports or []))
