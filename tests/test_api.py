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
