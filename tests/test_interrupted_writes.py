"""An interrupted write leaves no litter: SIGTERM cleans up at once, what SIGKILL leaves is
removed by the next write into the same folder; the output never appears half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuneport.cli.main import run
from tuneport.files import atomic_writer, clean_stale_temps

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"


def _big_input(path: Path, copies: int = 4000) -> Path:
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    with path.open("wb") as fh:
        for _ in range(copies):
            fh.writelines(lines)
    return path


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _convert_until_writing(data: Path, out: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from tuneport.cli.main import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "convert", str(data), "--to", "openai", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not _temps(out.parent):
        assert proc.poll() is None, "convert ended before it was interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_during_convert_removes_the_temp_at_once(
    tmp_path: Path, sig: signal.Signals
) -> None:
    data = _big_input(tmp_path / "big.jsonl")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _convert_until_writing(data, out_dir / "big.openai.jsonl")
    proc.send_signal(sig)
    code = proc.wait(60)
    assert code in (128 + sig, 130, -sig)
    assert list(out_dir.iterdir()) == []  # no temp, no partial output
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in err


def test_what_sigkill_leaves_is_removed_by_the_next_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _big_input(tmp_path / "big.jsonl")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _convert_until_writing(data, out_dir / "big.openai.jsonl")
    proc.kill()
    proc.wait(60)
    assert _temps(out_dir) and not (out_dir / "big.openai.jsonl").exists()
    assert run(["convert", str(SAMPLE), "--to", "vertex", "-o", str(out_dir / "s.jsonl")]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["s.jsonl"]


def test_temps_of_live_processes_are_kept(tmp_path: Path) -> None:
    mine = tmp_path / f".x.jsonl.tp{os.getpid()}-abc.tmp"
    mine.mkdir()
    parent = tmp_path / f".y.jsonl.tp{os.getppid()}-abc.tmp"
    parent.mkdir()
    dead = tmp_path / ".z.jsonl.tp999999999-abc.tmp"
    dead.mkdir()
    unrelated = tmp_path / ".notes.tmp"
    unrelated.write_text("mine")
    assert clean_stale_temps(tmp_path) == [dead]
    assert mine.exists() and parent.exists() and unrelated.exists()


def test_an_error_while_writing_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    with pytest.raises(RuntimeError), atomic_writer(out) as fh:
        fh.write(json.dumps({"a": 1}))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
