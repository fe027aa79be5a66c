"""KTO data (LLaMA-Factory's kto shape: ``{"messages", "label": true|false}``) is never read as
SFT data: refused in one line with the fix, or, with ``--desirable-only``, only its
``label: true`` rows are kept (the others are counted, never silently dropped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneport.cli.main import run
from tuneport.data import load_records
from tuneport.errors import InputError

KTO = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "kto.json"


def _rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(KTO.read_text(encoding="utf-8"))
    return rows


def test_the_fixture_has_the_llamafactory_kto_shape() -> None:
    rows = _rows()
    assert all(set(r) == {"messages", "label"} and isinstance(r["label"], bool) for r in rows)
    assert {r["label"] for r in rows} == {True, False}


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", str(KTO), "-p", "local"],
        ["convert", str(KTO), "--to", "openai"],
        ["inspect", str(KTO)],
        ["estimate", str(KTO), "-p", "local", "-m", "missing-model"],
    ],
)
def test_kto_data_is_refused_in_one_line_with_the_fix(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Before: one "unknown top-level key(s) ['label'] ignored" warning per row, and every
    reply - label: false ones too - trained as an SFT target."""
    if argv[0] == "convert":
        argv = [*argv, "-o", str(tmp_path / "out.jsonl")]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {KTO}:2: KTO data")
    assert "--desirable-only" in err and "unknown top-level key" not in err
    assert not (tmp_path / "out.jsonl").exists()


def test_train_refuses_kto_data_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"  # a model folder the checks accept (nothing is loaded)
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    argv = ["train", "-p", "local", "--data", str(KTO), "-m", str(model), "--yes"]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "KTO data" in err and "--desirable-only" in err


def test_desirable_only_keeps_the_label_true_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sft.jsonl"
    argv = ["convert", str(KTO), "--to", "openai", "-o", str(out), "--desirable-only"]
    assert run(argv) == 0
    captured = capsys.readouterr()
    assert "wrote 3 examples" in captured.out
    assert "kto_undesirable ×2" in captured.err  # what was left out is said
    kept = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    wanted = [r["messages"] for r in _rows() if r["label"] is True]
    assert [k["messages"] for k in kept] == wanted
    assert all("label" not in k for k in kept)

    assert run(["validate", str(KTO), "-p", "local", "--desirable-only", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["records"] == 3
    assert [p["line"] for p in report["problems"] if p["kind"] == "kto_undesirable"] == [9, 23]


def test_a_label_that_is_not_a_boolean_is_not_kto(tmp_path: Path) -> None:
    """Only LLaMA-Factory's boolean kto tag counts; another 'label' stays an ignored key."""
    path = tmp_path / "other.jsonl"
    row = {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}
    path.write_text(json.dumps({**row, "label": "topic-a"}) + "\n", encoding="utf-8")
    assert len(load_records(path)) == 1
    path.write_text(json.dumps({**row, "label": False}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="KTO data"):
        load_records(path)


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-4.1-mini"), ("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference")],
)
def test_estimate_on_kto_jsonl_refuses_it_like_validate(
    provider: str, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: JSONL KTO data took estimate's fast path, which counted every row (label:
    false ones too) and priced them as SFT targets while validate and train refused it."""
    data = tmp_path / "kto.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    assert run(["estimate", str(data), "-p", provider, "-m", model]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {data}:1: KTO data") and "--desirable-only" in err
    assert run(["validate", str(data), "-p", provider]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == err
