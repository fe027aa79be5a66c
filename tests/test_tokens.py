"""Token counting: offline tiktoken, the cookbook's chat overhead, tools, DPO, files, providers."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneport import tokens
from tuneport.errors import ConfigError
from tuneport.providers import openai as openai_backend
from tuneport.providers import registry
from tuneport.schemas import Example, Message, PreferenceExample
from tuneport.tokens import bpe, fast
from tuneport.tokens.fast import chunk_bounds

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def cookbook_num_tokens(messages: list[dict[str, Any]], encoding_name: str = "o200k_base") -> int:
    """The OpenAI cookbook's ``num_tokens_from_messages`` (gpt-4o/4.1 rules), with tiktoken.

    ``tokens.encoding`` only loads tiktoken's own Encoding offline; the counting here is the
    cookbook's, independent of tuneport's counters.
    """
    enc = tokens.encoding(encoding_name)
    tokens_per_message, tokens_per_name = 3, 1
    num = 0
    for message in messages:
        num += tokens_per_message
        for key, value in message.items():
            num += len(enc.encode(value, disallowed_special=()))
            if key == "name":
                num += tokens_per_name
    return num + 3


@pytest.fixture(autouse=True)
def _loaded() -> None:
    tokens.encoding("o200k_base")  # seeds the cache of this test's TUNEPORT_HOME


def _plain_jsonl_fixtures() -> Iterator[Path]:
    yield from sorted(FIXTURES.rglob("*.jsonl"))


# --- offline loading ---------------------------------------------------------------------------


def test_bpe_urls_and_hashes_are_the_ones_tiktoken_expects() -> None:
    import tiktoken_ext.openai_public as public

    source = Path(public.__file__).read_text()
    for url, sha in bpe.BPE_FILES.values():
        assert f'"{url}"' in source
        assert f'expected_hash="{sha}"' in source


def test_counting_works_with_the_network_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken
    import tiktoken.load
    import tiktoken.registry

    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))

    def no_download(url: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {url}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_download)
    # forget every loaded encoding so this really loads from scratch
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    tokens.encoding.cache_clear()
    with pytest.raises(RuntimeError, match="non-local"):  # the conftest guard is active
        socket.create_connection(("openaipublic.blob.core.windows.net", 443), timeout=1)
    try:
        counter = registry.counter_for("openai", "gpt-4.1-mini")
        assert counter.exact
        assert counter.count_text("hello world") == 2
        cl = registry.counter_for("openai", "gpt-3.5-turbo")
        assert cl.label == "tiktoken cl100k_base"
        assert cl.count_text("hello world") == 2
    finally:
        tokens.encoding.cache_clear()
    files = sorted(p.name for p in cache.iterdir())
    import hashlib

    expected = sorted(hashlib.sha1(url.encode()).hexdigest() for url, _ in bpe.BPE_FILES.values())
    assert files == expected


def test_a_corrupt_cache_file_is_replaced(tmp_path: Path) -> None:
    url, _ = bpe.BPE_FILES["cl100k_base"]
    import hashlib

    target = tmp_path / hashlib.sha1(url.encode()).hexdigest()
    target.write_bytes(b"garbage")
    assert tokens.seed_tiktoken_cache("cl100k_base", tmp_path) == target
    assert target.stat().st_size > 1_000_000


# --- model -> encoding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4.1", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("ft:gpt-4.1-mini-2025-04-14:my-org::AbC123", "o200k_base"),
        ("ft:gpt-4o-2024-08-06:org:suffix:id", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("o3", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("ft:gpt-3.5-turbo-0125:org::x", "cl100k_base"),
        ("llama-3-8b", None),
        ("omni-thing", None),
    ],
)
def test_encoding_of_model(model: str, encoding: str | None) -> None:
    assert openai_backend.encoding_name(model) == encoding


def test_tiktoken_itself_gets_ft_ids_wrong_which_is_why_we_strip_ft() -> None:
    import tiktoken.model

    assert tiktoken.model.encoding_name_for_model("ft:gpt-4.1-mini-2025-04-14:o::x") != "o200k_base"
    assert openai_backend.base_model("ft:gpt-4.1-mini-2025-04-14:o::x") == "gpt-4.1-mini-2025-04-14"


def test_unknown_openai_model_is_labelled_approximate() -> None:
    counter = registry.counter_for("openai", "my-compatible-server-model")
    assert not counter.exact
    assert counter.error_band
    assert "approximate" in tokens.describe(1234, counter)


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown provider"):
        registry.counter_for("nope", "m")


# --- equality with the cookbook ----------------------------------------------------------------


def _plain(messages: list[dict[str, Any]]) -> bool:
    return all(
        set(m) <= {"role", "content", "name"} and all(isinstance(v, str) for v in m.values())
        for m in messages
    )


def test_counts_equal_the_cookbook_on_every_fixture() -> None:
    counter = registry.counter_for("openai", "gpt-4.1")
    assert isinstance(counter, tokens.TiktokenChatCounter)
    checked = 0
    for path in _plain_jsonl_fixtures():
        for line in path.read_bytes().splitlines():
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            msgs = obj.get("messages") if isinstance(obj, dict) else None
            if not isinstance(msgs, list) or not msgs or not _plain(msgs):
                continue
            expected = cookbook_num_tokens(msgs)
            assert counter.count_raw(obj) == expected, (path, line[:80])
            checked += 1
            try:
                record = Example(messages=[Message.model_validate(m) for m in msgs])
            except ValueError:  # a deliberately bad fixture (unknown role, ...)
                continue
            assert counter.count(record) == expected
    assert checked >= 5, "no chat fixtures found to compare against"


def test_cookbook_toy_dataset_counts(tmp_path: Path) -> None:
    toy = FIXTURES / "real" / "openai_toy_chat_fine_tuning.jsonl"
    counter = registry.counter_for("openai", "gpt-4.1-nano-2025-04-14")
    per_example = [
        cookbook_num_tokens(json.loads(line)["messages"]) for line in toy.read_text().splitlines()
    ]
    assert per_example == [43, 106, 26, 27, 8031]
    records = [Example.model_validate(json.loads(line)) for line in toy.read_text().splitlines()]
    assert [counter.count(r) for r in records] == per_example


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=60
) | st.sampled_from(["<|endoftext|>", "  \n\n", "Hello, world!", "日本語のテキスト", "🙂🙂"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["system", "user", "assistant"]), _text, st.none() | _text),
        min_size=1,
        max_size=5,
    )
)
def test_counts_equal_the_cookbook_for_random_messages(
    turns: list[tuple[str, str, str | None]],
) -> None:
    counter = registry.counter_for("openai", "gpt-4o")
    assert isinstance(counter, tokens.TiktokenChatCounter)
    raw = []
    for role, content, name in turns:
        m = {"role": role, "content": content}
        if name is not None:
            m["name"] = name
        raw.append(m)
    expected = cookbook_num_tokens(raw)
    assert counter.count_raw({"messages": raw}) == expected
    assert counter.count(Example(messages=[Message.model_validate(m) for m in raw])) == expected


# --- tools and DPO -----------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
TOOL_CHAT = {
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "It is 21 °C in Paris.", "weight": 1},
    ],
    "tools": TOOLS,
}


def test_tool_definitions_and_calls_follow_the_documented_method() -> None:
    counter = registry.counter_for("openai", "gpt-4.1")
    assert isinstance(counter, tokens.TiktokenChatCounter)
    enc = tokens.encoding("o200k_base")

    def n(text: str) -> int:
        return len(enc.encode_ordinary(text))

    expected = (
        (3 + n("user") + n("Weather in Paris?"))
        + (3 + n("assistant") + n("get_weather") + n('{"city": "Paris"}'))
        + (3 + n("tool") + n('{"temp": 21}'))  # tool_call_id: bookkeeping, 0 tokens
        + (3 + n("assistant") + n("It is 21 °C in Paris."))  # weight: 0 tokens
        + n(json.dumps(TOOLS[0], separators=(",", ":"), ensure_ascii=False))
        + 3
    )
    record = Example.model_validate(TOOL_CHAT)
    assert counter.count(record) == expected
    assert counter.count_raw(TOOL_CHAT) == expected
    # key order of a raw tool definition does not change the count
    reordered = dict(TOOL_CHAT, tools=[{"function": TOOLS[0]["function"], "type": "function"}])
    assert counter.count_raw(reordered) == expected
    # null inside the JSON schema is kept by both paths; a null description is dropped by both
    schema = {"type": "object", "properties": {"x": {"default": None}}}
    tool = {
        "type": "function",
        "function": {"name": "f", "description": None, "parameters": schema},
    }
    raw = {"messages": TOOL_CHAT["messages"], "tools": [tool]}
    assert counter.count_raw(raw) == counter.count(Example.model_validate(raw))


def test_content_parts_count_like_the_imported_record() -> None:
    from tuneport.data import from_openai

    counter = registry.counter_for("openai", "gpt-4.1")
    assert isinstance(counter, tokens.TiktokenChatCounter)
    parts = [{"type": "text", "text": "Hello, wor"}, {"type": "text", "text": "ld! How are you?"}]
    raw = {"messages": [{"role": "user", "content": parts}, {"role": "assistant", "content": "ok"}]}
    record = from_openai(raw)
    assert record.messages[0].content == "Hello, world! How are you?"
    assert counter.count_raw(raw) == counter.count(record)


def test_preference_counts_prompt_plus_both_replies() -> None:
    from tuneport.data import to_canonical, to_openai_dpo

    counter = registry.counter_for("openai", "gpt-4.1-mini")
    assert isinstance(counter, tokens.TiktokenChatCounter)
    record = PreferenceExample(
        prompt=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Capital of France?"),
        ],
        chosen=Message(role="assistant", content="Paris."),
        rejected=Message(role="assistant", content="I think it might be Lyon, but not sure."),
    )
    expected = cookbook_num_tokens(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "assistant", "content": "I think it might be Lyon, but not sure."},
        ]
    )
    assert counter.count(record) == expected
    assert counter.count_raw(to_openai_dpo(record)) == expected
    assert counter.count_raw(to_canonical(record)) == expected


# --- whole files -------------------------------------------------------------------------------


def _write_mixed_file(path: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    with path.open("wb") as fh:
        for i in range(n):
            obj = {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": f"Question number {i}: " + "why? " * (i % 7)},
                    {"role": "assistant", "content": f"Answer {i} " + "because. " * (i % 5)},
                ]
            }
            rows.append(obj)
            fh.write(orjson.dumps(obj) + (b"\r\n" if i % 11 == 0 else b"\n"))
            if i == 3:
                fh.write(b"\n")  # blank line 5
            if i == 7:
                fh.write(b'{"messages": [broken\n')  # line 10
        fh.write(orjson.dumps(rows[0]))  # no trailing newline
    rows.append(rows[0])
    return rows


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_count_jsonl_matches_record_counts_serial_and_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(fast, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(fast, "_CHUNK_TARGET", 997)  # many odd-sized chunks
    path = tmp_path / "data.jsonl"
    rows = _write_mixed_file(path, 120)
    counter = registry.counter_for("openai", "gpt-4.1")
    assert isinstance(counter, tokens.TiktokenChatCounter)
    counts = tokens.count_jsonl(path, counter, workers=workers)
    assert list(counts.tokens) == [cookbook_num_tokens(r["messages"]) for r in rows]
    assert counts.skipped == [10]
    assert counts.examples == 121
    # 1-based source lines: blank line 5 and broken line 10 are not examples
    lines = path.read_bytes().split(b"\n")
    for ln in counts.lines:
        assert orjson.loads(lines[ln - 1])["messages"]
    assert 5 not in counts.lines and 10 not in counts.lines
    assert counts.lines[-1] == len(lines)


def test_chunk_bounds_cut_at_line_starts(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"".join(b"%d\n" % i * (i % 13 + 1) for i in range(500)))
    data = path.read_bytes()
    bounds = chunk_bounds(path, 7)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(data)
    for (_, end), (start, _) in itertools.pairwise(bounds):
        assert end == start and data[start - 1 : start] == b"\n"


# --- vertex and local --------------------------------------------------------------------------


def test_vertex_offline_is_approximate_with_a_band() -> None:
    counter = registry.counter_for("vertex", "gemini-2.5-flash")
    assert not counter.exact
    assert counter.error_band == pytest.approx(0.25)
    record = Example(
        messages=[
            Message(role="user", content="hi there"),
            Message(role="assistant", content="hello"),
        ]
    )
    assert counter.count(record) == counter.count_text("hi there") + counter.count_text("hello")
    assert tokens.describe(12345, counter) == "≈12,345 tokens (±25%, approximate)"
    assert tokens.describe(12345, registry.counter_for("openai", "gpt-4.1")) == "12,345 tokens"


@pytest.mark.parametrize(
    "fixture",
    ["sample/chat.jsonl", "sample/preference.jsonl", "real/openai_toy_chat_fine_tuning.jsonl"],
)
def test_approximate_counter_reads_raw_lines_like_records(
    fixture: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneport.data import load_records, to_canonical

    counter = registry.counter_for("vertex", "gemini-2.5-flash")
    raw = tokens.fast_counter(counter)
    assert raw is not None
    path = FIXTURES / fixture
    records = load_records(path)
    expected = [counter.count(r) for r in records]
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
    assert [raw.count_raw(x) for x in lines] == expected
    assert [raw.count_raw(to_canonical(r)) for r in records] == expected
    assert raw.count_raw(TOOL_CHAT) == counter.count(Example.model_validate(TOOL_CHAT))
    monkeypatch.setattr(fast, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(fast, "_CHUNK_TARGET", 2000)
    assert list(tokens.count_jsonl(path, raw, workers=2).tokens) == expected


class _FakeOnlineCounter:
    exact = True
    error_band = None
    label = "fake countTokens"

    def count(self, record: Example | PreferenceExample) -> int:
        return 42

    def count_text(self, text: str) -> int:
        return 7


class FakeVertex:
    """Stands in for the vertex backend; records the settings it was built with."""

    built_with: ClassVar[dict[str, Any]] = {}

    def __init__(self, **settings: Any) -> None:
        FakeVertex.built_with = settings
        self.name = "vertex"

    def online_counter(self, model: str) -> _FakeOnlineCounter:
        assert model == "gemini-2.5-flash"
        return _FakeOnlineCounter()


def test_vertex_online_uses_the_providers_online_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from tuneport.providers import registry, vertex

    fake = dataclasses.replace(vertex.BACKEND, implementation="tests.test_tokens:FakeVertex")
    with registry.registered("vertex", fake):
        counter = registry.counter_for(
            "vertex", "gemini-2.5-flash", online=True, settings={"project": "p"}
        )
    assert counter.exact and counter.label == "fake countTokens"
    assert FakeVertex.built_with == {"project": "p"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fakes.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_local_model_counts_with_its_own_chat_template(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    counter = registry.counter_for("local", str(tiny_model))
    assert counter.exact and "chat template" in counter.label
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    msgs = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
    ]
    ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
    record = Example(messages=[Message.model_validate(m) for m in msgs])
    assert counter.count(record) == len(ids)
    pref = PreferenceExample(
        prompt=[Message.model_validate(msgs[0])],
        chosen=Message.model_validate(msgs[1]),
        rejected=Message(role="assistant", content="hello"),
    )
    head = len(
        tok.apply_chat_template(msgs[:1], add_generation_prompt=True, return_dict=True)["input_ids"]
    )
    assert counter.count(pref) == len(ids) + (
        len(
            tok.apply_chat_template(
                [msgs[0], {"role": "assistant", "content": "hello"}], return_dict=True
            )["input_ids"]
        )
        - head
    )


def test_local_model_not_at_hand_is_approximate(tmp_path: Path) -> None:
    counter = registry.counter_for("local", str(tmp_path / "missing"))
    assert not counter.exact and counter.error_band
    counter = registry.counter_for("local", "some-org/not-cached-model")
    assert not counter.exact


def test_memoized_counts_each_record_once() -> None:
    calls = []

    class Spy(_FakeOnlineCounter):
        def count(self, record: Example | PreferenceExample) -> int:
            calls.append(record)
            return 5

    memo = tokens.memoized(Spy())
    rec = Example(messages=[Message(role="user", content="x")])
    assert memo.count(rec) + memo.count(rec) == 10
    assert len(calls) == 1


def test_is_legacy_finds_each_legacy_spelling_and_nothing_else() -> None:
    """is_legacy runs on every counted line (it was rewritten without building lists): each
    place a legacy function call can sit is still found, plain and tool rows are not legacy."""
    user = {"role": "user", "content": "q"}
    call = {"role": "assistant", "content": None, "function_call": {"name": "f"}}
    result = {"role": "function", "name": "f", "content": "r"}
    plain = {"messages": [user, {"role": "assistant", "content": "a"}]}
    legacy = [
        {"messages": [user], "functions": []},
        {"messages": [user, call]},
        {"messages": [user, result]},
        {"input": {"messages": [user], "functions": []}},
        {"input": {"messages": [user, call]}},
        {"input": {"messages": [user]}, "preferred_output": [call]},
        {"input": {"messages": [user]}, "non_preferred_output": [result]},
    ]
    not_legacy = [
        plain,
        {**plain, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {"messages": "not a list", "functions_x": 1},
        {"input": {"messages": [user]}, "preferred_output": [], "non_preferred_output": "x"},
        {"input": "not a dict", "messages": [user, "not a dict"]},
        {"input": {"messages": [user]}, "functions": []},  # DPO: functions live in input
    ]
    assert all(bpe.is_legacy(row) for row in legacy)
    assert not any(bpe.is_legacy(row) for row in not_legacy)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["system", "user", "assistant"]),
            st.one_of(st.just(""), st.just("  \n"), st.text(max_size=60)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_count_plain_is_count_raw_of_a_plain_row(pairs: list[tuple[str, str]]) -> None:
    """The validator's hot path counts plain rows with count_plain: the same numbers."""
    counter = bpe.TiktokenChatCounter("o200k_base")
    msgs = [{"role": role, "content": content} for role, content in pairs]
    assert counter.count_plain(msgs) == counter.count_raw({"messages": msgs})
