"""convert / validate / inspect end to end on the real-world fixtures and the samples."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.validation_helpers import rules
from tuneport.cli.main import run
from tuneport.data import detect_format, load_records

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REAL = FIXTURES / "real"
SHARED = FIXTURES.parent.parent / "shared" / "datasets"  # ../shared beside the checkout (CI)

# real file -> (detected format, records, kind)
REAL_FILES: dict[str, tuple[str, int, str]] = {
    "gcp_gemini_patient_1_glucose_examples.jsonl": ("vertex", 1, "chat"),
    "llamafactory_alpaca_en_demo.json": ("alpaca", 999, "chat"),
    "llamafactory_dpo_en_demo.json": ("sharegpt-preference", 300, "preference"),
    "llamafactory_glaive_toolcall_en_demo.json": ("sharegpt", 300, "chat"),
    "llamafactory_identity.json": ("alpaca", 91, "chat"),
    "openai_toy_chat_fine_tuning.jsonl": ("openai", 5, "chat"),
}
TARGETS = ("openai", "vertex", "local", "canonical")


def test_real_fixtures_are_byte_exact_copies() -> None:
    names = {p.name for p in REAL.iterdir()}
    assert names == set(REAL_FILES) | {"llamafactory_dataset_info.json", "SOURCES.md"}
    if SHARED.exists():
        for name in names:
            assert (REAL / name).read_bytes() == (SHARED / name).read_bytes()


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_detect_and_import(name: str) -> None:
    fmt, count, kind = REAL_FILES[name]
    path = REAL / name
    assert detect_format(path) == fmt
    records = load_records(path)
    assert len(records) == count
    assert {r.kind for r in records} == {kind}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_convert_every_target(
    name: str, target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, count, kind = REAL_FILES[name]
    src = REAL / name
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / ("out.hf" if target == "local" else "out.jsonl")
    assert run(["convert", str(src), "--to", target, "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == count
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    back = load_records(out)  # every output reads back as its target format
    assert len(back) == count and {r.kind for r in back} == {kind}


def test_glaive_tool_calls_survive_openai_and_vertex(tmp_path: Path) -> None:
    src = REAL / "llamafactory_glaive_toolcall_en_demo.json"
    original = load_records(src)
    for target in ("openai", "vertex", "canonical"):
        out = tmp_path / f"{target}.jsonl"
        assert run(["convert", str(src), "--to", target, "-o", str(out)]) == 0
        back = load_records(out)
        calls = [c.function.name for r in back for m in r.messages for c in m.tool_calls or []]
        assert len(calls) == 211, target
        assert [len(r.messages) for r in back] == [len(r.messages) for r in original]


def test_glaive_local_keeps_tool_calls_and_tools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import datasets

    src = REAL / "llamafactory_glaive_toolcall_en_demo.json"
    assert run(["convert", str(src), "--to", "local", "-o", str(tmp_path / "x.hf")]) == 0
    out = capsys.readouterr().out
    assert "not carried" not in out
    ds = datasets.load_from_disk(str(tmp_path / "x.hf"))
    with_calls = sum(any(m["tool_calls"] for m in row["messages"]) for row in ds)
    with_tools = sum(row["tools"] is not None for row in ds)
    assert (with_calls, with_tools) == (153, 191)


def test_dataset_registry_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = REAL / "llamafactory_dataset_info.json"
    with pytest.raises(Exception, match="unknown format"):
        detect_format(src)
    for argv in (
        ["validate", str(src)],
        ["inspect", str(src)],
        ["convert", str(src), "--to", "openai", "-o", str(tmp_path / "o.jsonl")],
    ):
        assert run(argv) == 2
        err = capsys.readouterr().err
        assert "unknown format: a single JSON object" in err and f"{src}:1" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_toy_dataset_cookbook_flaws(capsys: pytest.CaptureFixture[str]) -> None:
    src = REAL / "openai_toy_chat_fine_tuning.jsonl"
    assert run(["validate", str(src), "--provider", "openai", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"missing_user": 1, "too_few_examples": 1}
    # the cookbook's old 4,096-token limit catches the 26,000-character answer (~6,500 tokens)
    from tuneport.validation import validate_file

    report2 = validate_file(src, rules("openai"), token_limit=4096)
    assert [p.line for p in report2.problems if p.kind == "token_limit"] == [5]


@pytest.mark.parametrize("provider", ["openai", "vertex", "local"])
@pytest.mark.parametrize("sample", ["chat.jsonl", "preference.jsonl"])
def test_samples_are_valid(sample: str, provider: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "sample" / sample
    assert run(["validate", str(path), "--provider", provider]) == 0, capsys.readouterr().out
    assert "valid" in capsys.readouterr().out


def test_sample_sizes() -> None:
    chat = load_records(FIXTURES / "sample" / "chat.jsonl")
    assert len(chat) >= 20 and detect_format(FIXTURES / "sample" / "chat.jsonl") == "openai"
    assert sum(1 for r in chat for m in r.messages if m.tool_calls) >= 2  # type: ignore[union-attr]
    assert all(r.messages[0].role == "system" for r in chat)  # type: ignore[union-attr]
    assert "{{" not in (FIXTURES / "sample" / "chat.jsonl").read_text()
    pref = FIXTURES / "sample" / "preference.jsonl"
    assert detect_format(pref) == "openai-dpo" and len(load_records(pref)) >= 10


def test_default_output_name_and_no_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "data.json"
    src.write_bytes((REAL / "llamafactory_identity.json").read_bytes())
    assert run(["convert", str(src), "--to", "vertex"]) == 0
    out = tmp_path / "data.vertex.jsonl"
    assert out.exists()
    first = out.read_bytes()
    assert run(["convert", str(src), "--to", "vertex"]) == 3
    assert "already exists" in capsys.readouterr().err
    assert run(["convert", str(src), "--to", "vertex", "--force"]) == 0
    assert out.read_bytes() == first  # deterministic output
    assert run(["convert", str(src), "--to", "openai", "-o", str(src), "--force"]) == 3
    assert "is the input" in capsys.readouterr().err
    assert src.read_bytes() == (REAL / "llamafactory_identity.json").read_bytes()
    assert run(["convert", str(src), "--to", "local"]) == 0
    assert (tmp_path / "data.hf" / "state.json").exists()


def test_convert_method_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pref = FIXTURES / "sample" / "preference.jsonl"
    out = tmp_path / "sft.jsonl"
    assert (
        run(["convert", str(pref), "--to", "openai", "--method", "sft", "-o", str(out), "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["format"] == "openai" and result["dropped"] == {"rejected": 20}
    chat = FIXTURES / "sample" / "chat.jsonl"
    assert (
        run(
            [
                "convert",
                str(chat),
                "--to",
                "openai",
                "--method",
                "dpo",
                "-o",
                str(tmp_path / "d.jsonl"),
            ]
        )
        == 2
    )
    assert "--method dpo needs preference pairs" in capsys.readouterr().err
    assert run(["convert", str(chat), "--to", "openai", "--method", "rl"]) == 3
    assert run(["convert", str(chat), "--to", "bedrock"]) == 2


def test_table_csv_with_map_and_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "qa.csv"
    src.write_text('q,a\n"What is 2+2?","4"\n"Multi\nline?",yes\n', encoding="utf-8")
    out = tmp_path / "qa.jsonl"
    argv = [
        "convert",
        str(src),
        "--to",
        "openai",
        "--map",
        "q=user,a=assistant",
        "--system",
        "Be terse.",
    ]
    assert run([*argv, "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[1]["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Multi\nline?"},
        {"role": "assistant", "content": "yes"},
    ]
    assert run(["convert", str(src), "--to", "openai", "--map", "q"]) == 3
    assert "not column=role" in capsys.readouterr().err


def test_inspect_human_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    src = REAL / "llamafactory_glaive_toolcall_en_demo.json"
    assert run(["inspect", str(src)]) == 0
    out = capsys.readouterr().out
    assert "format sharegpt, 300 records" in out and "tool calls: 211" in out
    assert run(["inspect", str(src), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["roles"] == {"assistant": 957, "tool": 211, "user": 746}
    assert (
        data["chars"]["p50"] <= data["chars"]["p90"] <= data["chars"]["p99"] <= data["chars"]["max"]
    )
    assert data["turns"]["min"] == 2


def test_validate_model_uses_token_counter(capsys: pytest.CaptureFixture[str]) -> None:
    src = FIXTURES / "sample" / "chat.jsonl"
    assert (
        run(["validate", str(src), "--provider", "openai", "--model", "gpt-4o-mini", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "gpt-4o-mini" and "approx" not in report["token_counter"]


def test_missing_file_and_unknown_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    # an unknown provider is a configuration mistake: exit 3 in every command
    assert run(["validate", str(FIXTURES / "sample" / "chat.jsonl"), "--provider", "bedrock"]) == 3
    assert "unknown provider" in capsys.readouterr().err


def test_console_script_end_to_end(tmp_path: Path) -> None:
    """The real entry point in a subprocess: exit code and one-line error, no traceback."""
    bad = FIXTURES / "bad" / "wrong_role.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", "from tuneport.cli.main import main; main()", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and f"{bad}:2" in proc.stdout and "Traceback" not in proc.stderr


def test_progress_bar_on_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from tuneport.cli import _console
    from tuneport.cli import data as cli_data

    buffer = io.StringIO()
    monkeypatch.setattr(_console, "err", Console(file=buffer, force_terminal=True, width=80))
    monkeypatch.setattr(cli_data, "PROGRESS_MIN_BYTES", 0)
    src = REAL / "llamafactory_alpaca_en_demo.json"
    assert run(["convert", str(src), "--to", "openai", "-o", str(tmp_path / "o.jsonl")]) == 0
    assert "converting" in buffer.getvalue()


def test_sharegpt_roles_found_after_first_row(tmp_path: Path) -> None:
    first = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    later = {
        "messages": [{"role": "user", "content": "a"}, {"role": "observation", "content": "b"}]
    }
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(later) + "\n", encoding="utf-8")
    assert detect_format(path) == "sharegpt"


def test_convert_warnings_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = FIXTURES / "bad" / "bom.jsonl"
    assert run(["convert", str(src), "--to", "openai", "-o", str(tmp_path / "o.jsonl")]) == 0
    out, err = capsys.readouterr()
    assert "wrote 2 examples" in out and "warning: bom ×1" in err
    assert not (tmp_path / "o.jsonl").read_bytes().startswith(b"\xef\xbb\xbf")


def test_convert_to_a_backend_writes_its_own_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--to together` then `--to fireworks` (both OpenAI's layout) write two files, as the
    README says (`<stem>.<target>.jsonl`); before, both wrote `<stem>.openai.jsonl`."""
    src = tmp_path / "data.json"
    src.write_bytes((REAL / "llamafactory_identity.json").read_bytes())
    for name in ("together", "fireworks", "openai"):
        assert run(["convert", str(src), "--to", name]) == 0, capsys.readouterr().err
        assert f"data.{name}.jsonl" in capsys.readouterr().out
        assert detect_format(tmp_path / f"data.{name}.jsonl") == "openai"
    assert sorted(p.name for p in tmp_path.glob("data.*.jsonl")) == [
        "data.fireworks.jsonl",
        "data.openai.jsonl",
        "data.together.jsonl",
    ]


def test_together_leaves_out_parallel_tool_calls_and_validate_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Together's conversational columns are `messages` and `tools` (together SDK
    lib/constants.py, docs.together.ai fine-tuning function calling): OpenAI's top-level
    `parallel_tool_calls` is not written, it is reported as not carried, and `validate -p
    together` flags it (OpenAI keeps it)."""
    row = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "Cold."},
        ],
        "parallel_tool_calls": False,
    }
    src = tmp_path / "tools.jsonl"
    src.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert run(["convert", str(src), "--to", "together"]) == 0
    out = capsys.readouterr().out
    assert "not carried by together: parallel_tool_calls in 1 example(s)" in out
    written = json.loads((tmp_path / "tools.together.jsonl").read_text(encoding="utf-8"))
    assert set(written) == {"messages"}
    assert run(["convert", str(src), "--to", "openai"]) == 0
    kept = json.loads((tmp_path / "tools.openai.jsonl").read_text(encoding="utf-8"))
    assert kept["parallel_tool_calls"] is False
    capsys.readouterr()
    assert run(["validate", str(src), "-p", "together", "--json"]) == 0  # a warning
    flagged = [p for p in json.loads(capsys.readouterr().out)["problems"]]
    assert [(p["kind"], p["line"], p["severity"]) for p in flagged] == [
        ("unsupported_field", 1, "warning")
    ]
    assert "'parallel_tool_calls'" in flagged[0]["message"]
    run(["validate", str(src), "-p", "openai", "--json"])  # exit 1: OpenAI wants 10 examples
    assert "parallel_tool_calls" not in capsys.readouterr().out
