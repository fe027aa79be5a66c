"""Every hint names a flag the command has; short flags mean one thing everywhere.

The error paths of every command are run in-process; each ``--flag`` an error or warning line
names must exist on that command (a flag inside a quoted command, `` `tuneport estimate ...
--online` ``, must exist on *that* command; gcloud's own flags are not ours). A static pass
checks that every flag any hint string in the package names exists on some command.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_provider import FakeProvider
from tuneport.cli._hints import adapt, command_of, flags_of, unquoted
from tuneport.cli.app import app
from tuneport.cli.main import run
from tuneport.providers import registry

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = str(ROOT / "fixtures" / "sample" / "chat.jsonl")
TOKEN = "ya29.hint-test-token-0123456789"
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
TUNEPORT_COMMAND = re.compile(r"`tuneport ([^`]*)`")


def _commands() -> Iterator[tuple[list[str], object]]:
    import typer

    def walk(prefix: list[str], command: object) -> Iterator[tuple[list[str], object]]:
        children = getattr(command, "commands", None)
        if isinstance(children, dict):
            for name, child in children.items():
                yield from walk([*prefix, name], child)
        else:
            yield prefix, command

    yield from walk([], typer.main.get_command(app))


def _flags_named(line: str) -> list[str]:
    return [m.group(1) for m in FLAG.finditer(unquoted(line))]


def check_lines(argv: list[str], text: str) -> list[str]:
    """Problems: flags named in ``text`` that the command (or the quoted command) lacks."""
    problems = []
    own = flags_of(app, argv)
    for line in text.splitlines():
        if not line.startswith(("error:", "warning:", "fix:")) and "(fix:" not in line:
            continue
        for flag in _flags_named(line):
            if flag not in own:
                problems.append(f"{' '.join(argv[:2])}: {flag} in {line!r}")
        for quoted in TUNEPORT_COMMAND.finditer(line):
            words = quoted.group(1).split()
            other = flags_of(app, words)
            for flag in FLAG.findall(quoted.group(1)):
                if flag not in other:
                    problems.append(f"`tuneport {quoted.group(1)}`: no {flag} in {line!r}")
    return problems


@pytest.fixture
def vertex_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials without a project: the Vertex backend asks for one (no network needed)."""
    monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", "http://127.0.0.1:9")


# (argv, expected exit code): error paths of every command that names flags in its hints
SCENARIOS: list[tuple[list[str], int]] = [
    (["estimate", SAMPLE, "-p", "vertex", "-m", "gemini-2.5-flash", "--online"], 3),
    (["estimate", SAMPLE, "-p", "vertex", "-m", "gemini-2.5-flash"], 0),
    (["estimate", SAMPLE, "-p", "nope", "-m", "x"], 3),
    (["estimate", SAMPLE, "-p", "openai", "-m", "gpt-4.1", "--epochs", "99"], 3),
    (["estimate", SAMPLE, "-p", "openai", "-m", "gpt-4.1", "--method", "rl"], 3),
    (["jobs", "list", "--remote", "-p", "vertex"], 3),
    (["jobs", "list", "--remote"], 3),
    (["jobs", "show", "tp-nothere"], 4),
    (["jobs", "watch", "tp-nothere"], 4),
    (["eval", "--data", SAMPLE, "-m", "vertex:gemini-2.5-flash", "--limit", "1", "--yes"], 3),
    (["eval", "--data", SAMPLE, "-m", "fake:good", "--max-cost", "1"], 5),
    (["eval", "--data", SAMPLE, "-m", "mystery-model"], 3),
    (["train", "-p", "vertex", "--data", SAMPLE, "-m", "gemini-2.5-flash", "--yes"], 3),
    (["train", "-p", "vertex", "--data", SAMPLE, "-m", "gemini-2.5-flash", "--bucket", "b"], 3),
    (["train", "-p", "openai", "--data", SAMPLE, "-m", "gpt-4.1-mini", "--yes"], 3),
    (["train", "-p", "openai", "--data", SAMPLE, "--yes"], 3),
    (["train", "-p", "openai", "--data", SAMPLE, "-m", "gpt-4.1", "--set", "foo=1"], 3),
    (["chat", "mistral-7b", "--message", "hi"], 3),
    (["chat", "vertex:gemini-2.5-flash", "--message", "hi"], 3),
    (["stats", SAMPLE, "-p", "vertex"], 3),
    (["curate", SAMPLE, "-o", "/dev/null/x.jsonl", "--by", "size"], 3),
    (["curate", SAMPLE, "-o", "/dev/null/x.jsonl", "--split", "1.5"], 3),
    (["convert", SAMPLE, "--to", "nowhere"], 2),
    (["convert", SAMPLE, "--to", "openai", "--map", "a"], 3),
    (["validate", SAMPLE, "-p", "nope"], 3),
    (["plan", SAMPLE, "-p", "nope"], 3),
    (["prices", "-p", "nope"], 3),
    (["export", "tp-nothere"], 4),
]


@pytest.mark.parametrize(("argv", "code"), SCENARIOS, ids=[" ".join(a[:3]) for a, _ in SCENARIOS])
@pytest.mark.usefixtures("vertex_env")
def test_hints_name_flags_of_their_command(
    argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with registry.registered("fake", "tests.fakes.fake_provider:BACKEND"):
        FakeProvider.calls.clear()
        got = run(argv)
    out, err = capsys.readouterr()
    assert got == code, err
    assert not check_lines(argv, err + out)


def test_the_walker_catches_a_flag_the_command_lacks() -> None:
    """The check itself: a hint naming a flag of another command is reported."""
    assert check_lines(["jobs", "list"], "error: x (fix: pass --prices FILE)")
    assert not check_lines(["jobs", "list"], "error: x (fix: run `tuneport plan D --prices F`)")
    assert check_lines(["jobs", "list"], "error: x (fix: run `tuneport plan D --nope`)")
    assert not check_lines(["jobs", "list"], "error: x (fix: gcloud services enable --project p)")


def test_setting_flags_are_rewritten_for_commands_without_them() -> None:
    on_jobs_list = flags_of(app, ["jobs", "list"])
    on_train = flags_of(app, ["train"])
    hint = "error: no project (fix: pass --project PROJECT_ID (or --set project=...))"
    assert adapt(hint, on_train) == hint  # train has --project
    assert adapt(hint, on_jobs_list) == "error: no project (fix: pass --set project=PROJECT_ID)"
    assert adapt("check --project, --location and", on_jobs_list) == (
        "check --set project=..., --set location=... and"
    )
    gcloud = "fix: gcloud services enable aiplatform.googleapis.com --project p"
    assert adapt(gcloud, on_jobs_list) == gcloud  # gcloud's own flag


def test_short_flags_mean_one_thing_everywhere() -> None:
    meaning: dict[str, set[str]] = {}
    for _path, command in _commands():
        for param in getattr(command, "params", []):
            longs = [o for o in param.opts if o.startswith("--")]
            for short in (o for o in param.opts if not o.startswith("--")):
                meaning.setdefault(short, set()).update(longs)
    clashes = {short: longs for short, longs in meaning.items() if len(longs) > 1}
    assert not clashes
    assert meaning["-p"] == {"--provider"} and meaning["-m"] == {"--model"}
    for name in ("train", "stats", "curate", "chat", "estimate", "validate"):
        flags = flags_of(app, [name])
        assert {"-p", "-m"} <= flags, name
    assert "-p" in flags_of(app, ["jobs", "list"]) and "-m" in flags_of(app, ["eval"])
    assert command_of(app, ["jobs", "list"]).name == "list"


def _hint_strings() -> Iterator[tuple[str, str]]:
    """Every string literal passed as ``hint=`` in the package (f-string parts included)."""
    for folder in ("core", "providers", "cli"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg == "hint":
                    for part in ast.walk(node.value):
                        if isinstance(part, ast.Constant) and isinstance(part.value, str):
                            yield f"{path.relative_to(ROOT)}:{node.value.lineno}", part.value


def test_every_flag_a_hint_names_exists_somewhere() -> None:
    every: set[str] = set()
    for _path, command in _commands():
        for param in getattr(command, "params", []):
            every.update(param.opts)
            every.update(param.secondary_opts)
    missing = [
        f"{where}: {flag}"
        for where, text in _hint_strings()
        for flag in _flags_named(text)
        if flag not in every
    ]
    assert not missing


def test_a_parenthesis_after_a_setting_flag_is_prose_not_its_value() -> None:
    # chat's Vertex not-found hint once read "--set location=(see `tuneport jobs list`)"
    hint = "check the job id, --project and --location (see `tuneport jobs list`)"
    assert adapt(hint, {"--set"}) == (
        "check the job id, --set project=... and --set location=... (see `tuneport jobs list`)"
    )
