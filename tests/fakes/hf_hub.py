"""A local stand-in for the Hugging Face Hub's file endpoint (``HF_ENDPOINT``): serves the files
of a few repos from folders at ``/{repo}/resolve/{revision}/{file}`` (HEAD and GET, the headers
``huggingface_hub.hf_hub_download`` reads) and records every path asked for."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos: dict[str, dict[str, bytes]], gated: tuple[str, ...] = ()) -> None:
        self.repos = repos
        self.gated = gated  # repos answered as gated (no licence accepted)
        self.requested: list[str] = []
        self.base_url = ""

    def files_asked(self) -> set[str]:
        return {p.rsplit("/", 1)[-1] for p in self.requested}


def repo_from_folder(folder: Path, *, weights: bool = True) -> dict[str, bytes]:
    """A repo's files from a tokenizer folder (plus a weights file that must never be fetched)."""
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    if weights:
        files["model.safetensors"] = b"\0" * 64
        files["config.json"] = b'{"model_type": "llama"}'
    return files


@contextmanager
def serving_hub(hub: FakeHub) -> Iterator[FakeHub]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, body: bool) -> None:
            hub.requested.append(self.path)
            path = self.path.split("?", 1)[0].lstrip("/")
            repo, sep, rest = path.partition("/resolve/")
            _, _, name = rest.partition("/")
            if repo in hub.gated:
                self.send_response(403)
                self.send_header("X-Error-Code", "GatedRepo")
                self.send_header("X-Error-Message", "Access to this model is restricted")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not sep or repo not in hub.repos:
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = hub.repos[repo].get(name)
            if data is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", '"' + hashlib.sha1(data).hexdigest() + '"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_HEAD(self) -> None:
            self._answer(False)

        def do_GET(self) -> None:
            self._answer(True)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
