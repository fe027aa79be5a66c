"""The public API: ``tuneport.__all__`` is importable, typed, documented, and the README's Python
example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import tuneport

ROOT = Path(__file__).resolve().parent.parent


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API") : text.index("## Write a backend")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_all_names_resolve_and_are_documented() -> None:
    for name in tuneport.__all__:
        value = getattr(tuneport, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), name
    assert {"load", "convert", "validate", "estimate", "plan", "train", "watch", "chat"} <= set(
        tuneport.__all__
    )


def test_importing_tuneport_loads_nothing_heavy() -> None:
    code = (
        "import sys, tuneport; "
        "print(sorted(m for m in sys.modules if m.startswith(('tuneport.', 'openai', 'torch'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_readme_python_example_runs(tmp_path: Path) -> None:
    (block,) = _readme_python_blocks()
    env = {**os.environ, "TUNEPORT_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", block], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("True")  # the sample is valid for Vertex
    assert lines[1].split()[:3] == ["26", "1814", "3"]  # examples, tokens, epochs


def test_convert_takes_a_backend_name_as_the_cli_does(tmp_path: Path) -> None:
    """`convert(path, "fireworks")` writes the format Fireworks uploads (OpenAI chat JSONL),
    named after the backend, as `tuneport convert --to fireworks` does."""
    source = tmp_path / "chat.jsonl"
    source.write_bytes((ROOT / "fixtures" / "sample" / "chat.jsonl").read_bytes())
    result = tuneport.convert(source, "fireworks")
    assert result.path == tmp_path / "chat.fireworks.jsonl"
    openai = tuneport.convert(source, "openai", tmp_path / "o.jsonl")
    assert result.path.read_bytes() == openai.path.read_bytes()


def test_convert_names_every_target_for_an_unknown_one(tmp_path: Path) -> None:
    import pytest

    from tuneport.errors import InputError

    with pytest.raises(InputError, match="unknown target 'fireworx'") as info:
        tuneport.convert(ROOT / "fixtures" / "sample" / "chat.jsonl", "fireworx", tmp_path / "x")
    assert "fireworks" in (info.value.hint or "")
