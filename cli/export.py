"""`tuneport export JOB_ID [--merge] [-o DIR]`: write a tuned model's weights to a folder."""

from pathlib import Path
from typing import Annotated

import typer

from tuneport.cli._console import print_json

GGUF_HINT = (
    "to run it with llama.cpp / Ollama, convert it to GGUF: "
    "python llama.cpp/convert_hf_to_gguf.py {out} --outfile {name}.gguf --outtype q8_0"
)


def export(
    job_id: Annotated[
        str, typer.Argument(help="Local job id (tp-...), a unique prefix or run id.")
    ],
    merge: Annotated[
        bool,
        typer.Option(
            "--merge/--adapter",
            help="Merge the adapter into the base weights (safetensors) or copy the adapter.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Folder to create. Default: ./<job id>-merged or -adapter."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> int:
    """Export a finished job's weights (backends that keep weights: local)."""
    from tuneport.cli._console import err, out
    from tuneport.errors import ConfigError
    from tuneport.jobs.resolve import provider_for_record, ref_of
    from tuneport.jobs.store import open_store
    from tuneport.providers.base import Exportable

    record = open_store().get(job_id)
    backend = provider_for_record(record)
    if not isinstance(backend, Exportable):
        raise ConfigError(
            f"the {record.provider} backend keeps the weights on its side; nothing to export",
            hint=f"chat with it: tuneport chat {record.id}",
        )
    target = output or Path(f"{record.id}-{'merged' if merge else 'adapter'}")
    what = "merging the adapter into the base weights" if merge else "copying the adapter"
    err.print(f"{what} -> {target}", markup=False)
    path = backend.export(ref_of(record), target, merge=merge)
    if as_json:
        print_json({"id": record.id, "path": str(path), "merged": merge})
    else:
        out.print(str(path), markup=False)
    if merge:
        err.print(GGUF_HINT.format(out=path, name=record.id), markup=False)
    return 0


def register(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""
    app.command("export")(export)
