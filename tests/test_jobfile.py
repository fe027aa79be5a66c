"""Job files + flags → JobConfig, with every problem reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuneport.errors import ConfigError, InputError
from tuneport.jobs.jobfile import build_config, parse_set, read_job_file
from tuneport.providers import registry
from tuneport.schemas import JobConfig

PROVIDERS = registry.names()  # every built-in backend: the example file has a section for each


def load_config(
    job_file: Path,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | tuple[str, ...] = (),
    *,
    known_providers: list[str] | None = None,
) -> JobConfig:
    """Job file + flags + ``--set`` items → JobConfig, as the CLI composes them."""
    return build_config(
        read_job_file(job_file),
        overrides,
        parse_set(sets),
        source=str(job_file),
        known_providers=known_providers,
    )


def test_example_job_file_loads(fixtures_dir: Path) -> None:
    cfg = load_config(fixtures_dir / "jobs" / "openai-sft.yaml", known_providers=PROVIDERS)
    assert (cfg.provider, cfg.model, cfg.method, cfg.epochs) == ("openai", "gpt-4.1-mini", "sft", 3)
    assert cfg.data.resolve() == (fixtures_dir / "sample" / "chat.jsonl").resolve()
    assert cfg.data.is_file()


def test_flags_override_file_and_set_adds_options(tmp_path: Path) -> None:
    job = tmp_path / "sub" / "job.yaml"
    job.parent.mkdir()
    job.write_text(
        "provider: openai\nmodel: gpt-4.1-mini\ndata: d.jsonl\nepochs: 3\n"
        "options: {metadata: {team: a}, beta: 0.1}\n"
    )
    cfg = load_config(
        job,
        {"provider": "vertex", "epochs": None, "model": "gemini-2.5-flash", "seed": 3},
        ["bucket=gs://b", "lora.rank=16", "beta=0.2"],
        known_providers=PROVIDERS,
    )
    assert cfg.provider == "vertex" and cfg.model == "gemini-2.5-flash"
    assert cfg.epochs == 3  # None flag = not given
    assert cfg.seed == 3
    assert cfg.data == tmp_path / "sub" / "d.jsonl"  # relative to the job file
    assert cfg.options == {
        "metadata": {"team": "a"},
        "beta": 0.2,
        "bucket": "gs://b",
        "lora": {"rank": 16},
    }


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("provider: nope\ndata: d.jsonl\nepochs: many\nmethod: rlhf\ncolour: blue\n")
    with pytest.raises(ConfigError) as info:
        load_config(job, known_providers=PROVIDERS)
    text = info.value.one_line()
    assert text.startswith(f"{job}: ")
    for part in (
        "model is required (--model",
        "epochs: Input should be a valid integer",
        "method: Input should be 'sft' or 'dpo'",
        "unknown setting 'colour'",
        "unknown provider 'nope'",
        f"choose --provider {'|'.join(PROVIDERS)}",
        "allowed settings: provider, model, data",
    ):
        assert part in text, part
    lines = info.value.lines()  # the CLI prints one line per problem
    assert len(lines) == 5 and all(line.startswith(f"{job}: ") for line in lines)
    (epochs,) = [ln for ln in lines if ": epochs: Input should be a valid integer" in ln]
    assert "(fix: change --epochs (or `epochs:` in the job file))" in epochs


def test_flags_only_need_no_file() -> None:
    cfg = build_config(None, {"provider": "openai", "model": "m", "data": Path("x.jsonl")})
    assert cfg.options == {} and cfg.method == "sft"
    with pytest.raises(ConfigError, match="provider is required"):
        build_config(None, {"model": "m", "data": Path("x")})


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("provider: openai\nmodel: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        read_job_file(job)
    assert info.value.where is not None and info.value.where.startswith(f"{job}:")
    job.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_job_file(job)
    with pytest.raises(InputError, match="no such job file"):
        read_job_file(tmp_path / "missing.yaml")


def test_options_must_be_a_mapping(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("provider: openai\nmodel: m\ndata: d\noptions: [1, 2]\n")
    with pytest.raises(ConfigError, match="options: must be a mapping"):
        load_config(job)


def test_parse_set() -> None:
    assert parse_set(["a=1", "b=0.5", "c=true", "d=text", "e=", "f=x=y"]) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": "text",
        "e": "",
        "f": "x=y",
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["novalue"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["a=1", "a.b=2"])  # a is not a mapping


def test_provider_section_applies_only_to_the_chosen_provider(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "provider: openai\nmodel: gpt-4.1-mini\ndata: d.jsonl\nepochs: 3\n"
        "options: {timeout: 30}\n"
        "vertex:\n  model: gemini-2.5-flash\n  validation: v.jsonl\n"
        "  options: {bucket: gs://b}\n"
        "local:\n  model: ./m\n  epochs: 1\n",
        encoding="utf-8",
    )
    as_openai = load_config(job, known_providers=PROVIDERS)
    assert (as_openai.model, as_openai.epochs, as_openai.options) == (
        "gpt-4.1-mini",
        3,
        {"timeout": 30},
    )
    as_vertex = load_config(job, {"provider": "vertex"}, known_providers=PROVIDERS)
    assert as_vertex.model == "gemini-2.5-flash"
    assert as_vertex.epochs == 3  # top-level value kept
    assert as_vertex.options == {"timeout": 30, "bucket": "gs://b"}  # merged
    assert as_vertex.validation == tmp_path / "v.jsonl"  # section paths are file-relative too
    as_local = load_config(
        job, {"provider": "local", "model": "./other"}, known_providers=PROVIDERS
    )
    assert (as_local.model, as_local.epochs) == ("./other", 1)  # flags still win


def test_provider_section_must_be_a_mapping(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("provider: openai\nmodel: m\ndata: d.jsonl\nvertex: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="provider section vertex"):
        load_config(job, known_providers=PROVIDERS)


def test_check_job_reports_settings_options_bounds_and_files_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stage that can fail is run: the schema, the provider's options, its preflight, the
    price table's epoch bounds and the data file (they used to stop at the first)."""
    from tuneport.jobs.checks import check_job

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    sample = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
    flags = {"provider": "openai", "model": "gpt-4.1-mini", "data": sample}
    with pytest.raises(ConfigError) as info:
        check_job(None, {**flags, "epochs": 0, "batch_size": -1}, ["foo=1"])
    lines = info.value.lines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("epochs: Input should be greater than or equal to 1")
    assert lines[1].startswith("batch_size: Input should be greater than or equal to 1")
    assert lines[2].startswith("unknown option 'foo' for provider openai")

    job = tmp_path / "job.yaml"
    job.write_text(
        "provider: openai\nmodel: gpt-4.1-mini\ndata: missing.jsonl\nepochs: 99\n"
        "batch_size: 0\noptions: {foo: 1}\n"
    )
    with pytest.raises(ConfigError) as info:
        check_job(job)
    lines = info.value.lines()
    assert len(lines) == 4, lines
    assert "batch_size" in lines[0] and "unknown option 'foo'" in lines[1]
    assert "epochs must be 1..50, got 99" in lines[2] and "missing.jsonl: no such file" in lines[3]
    assert info.value.exit_code == 3

    # options valid: the backend's own preflight joins in (no key, suffix too long)
    with pytest.raises(ConfigError) as info:
        check_job(None, {**flags, "suffix": "x" * 70, "epochs": 99})
    lines = info.value.lines()
    shown = " | ".join(ln.split(" (fix")[0] for ln in lines)
    for part in (
        "OPENAI_API_KEY is not set",
        "suffix is 70 characters",
        "epochs 99 is outside 1..50",  # OpenAI's own bound; the table does not repeat it
    ):
        assert part in shown, shown
    assert len(lines) == 3, shown
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    assert check_job(None, flags).model == "gpt-4.1-mini"


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-5-mini-2026-08-07"),
        ("vertex", "gemini-9-flash"),
        ("together", "org/New-Model-9B-Instruct"),
        ("fireworks", "accounts/fireworks/models/new-model-9b"),
    ],
)
def test_check_job_takes_a_model_the_price_table_does_not_list(
    provider: str, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hosted backend: a model missing from the price table is priced as unknown (the
    estimate says so), not refused as an unknown model, while its epochs stay checked."""
    from tuneport.jobs.checks import check_job

    for key in ("OPENAI_API_KEY", "TOGETHER_API_KEY", "FIREWORKS_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.test-token")  # no ADC lookup
    sample = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
    flags = {"provider": provider, "model": model, "data": sample, "epochs": 2}
    try:
        check_job(None, flags, [])
        shown = ""
    except ConfigError as exc:  # a missing key or project is another matter
        shown = " | ".join(exc.lines())
    assert "unknown" not in shown or "model" not in shown, shown
    assert "price table" not in shown, shown
    with pytest.raises(ConfigError, match=r"epochs (must be|1000 is outside)"):
        check_job(None, {**flags, "epochs": 1000}, [])
