"""Quiet output: one notice per command, none inside --json, no library chatter.

The estimate/train output is what users read before paying: transformers' "Token indices
sequence length is longer than the specified maximum" (counting long examples is the point),
FutureWarnings and tqdm bars must not leak into it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuneport.cli.main import run

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample" / "chat.jsonl"


def test_openai_notice_once_and_never_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["estimate", str(SAMPLE), "-p", "openai", "-m", "gpt-4.1-mini"]
    assert run(args) == 0
    err = capsys.readouterr().err
    assert err.count("winding down") == 1
    assert run([*args, "--json"]) == 0
    out, err = capsys.readouterr()
    assert "winding down" not in err + out
    json.loads(out)


@pytest.mark.slow
def test_local_estimate_prints_no_library_chatter(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A fresh process (transformers logs to the real stderr): the sample has examples longer
    than the tiny model's 512-token maximum, which transformers would warn about."""
    from tests.fakes.tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    code = "from tuneport.cli.main import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "estimate", str(SAMPLE), "-p", "local", "-m", str(model)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "default"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "tokens per epoch" in done.stdout  # the estimate is there (exact, with the model)
    noise = ("Token indices", "FutureWarning", "it/s]", "%|")
    assert not [n for n in noise if n in done.stderr], done.stderr
