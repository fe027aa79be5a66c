"""Contract tests: every request body and every exported row checked against the providers'
own published types, not only against tuneport's fakes.

* OpenAI: the ``openai`` SDK's param TypedDicts (``JobCreateParams``, the chat message params,
  ``ChatCompletionFunctionToolParam``, ``FunctionDefinition``) validated by pydantic with extra
  keys forbidden and strict types. The SDK has no types for fine-tuning rows, so the rows are
  the spec's shapes built from those params: ``FineTuneChatCompletionRequestAssistantMessage``
  is the assistant message plus ``weight`` (0|1); a DPO row is ``input`` + one-message
  ``preferred_output`` / ``non_preferred_output`` (the DPO guide's names). ``Iterable`` fields
  are redeclared as ``List`` so pydantic checks them eagerly.
* Vertex: google-genai's pydantic models (``extra="forbid"``): ``Content``, ``Tool``,
  ``Schema``, ``GeminiPreferenceExample``, ``CreateTuningJobConfig``, ``CountTokensConfig``.

Inputs: every fixture dataset (sample, real, golden) and generated edge cases (tools with full
JSON Schema, parallel tool calls, weights, images, DPO, multi-turn, legacy function calling).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Annotated, Any, Literal, Required

import pytest
from google.genai import types as gtypes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.chat.chat_completion_assistant_message_param import ContentArrayOfContentPart
from openai.types.chat.chat_completion_message_function_tool_call_param import (
    ChatCompletionMessageFunctionToolCallParam,
)
from openai.types.fine_tuning import JobCreateParams
from openai.types.fine_tuning.job_create_params import Integration
from pydantic import ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from tests.fakes.openai_server import FakeOpenAI
from tuneport.data.exporters import to_openai, to_openai_dpo, to_vertex, to_vertex_preference
from tuneport.data.gemini_schema import to_gemini_schema
from tuneport.data.importers import from_openai, from_openai_dpo
from tuneport.data.records import load_records
from tuneport.data.rows import Row
from tuneport.providers import registry
from tuneport.providers.base import ChatOptions, UploadedData
from tuneport.providers.openai import OpenAIProvider
from tuneport.providers.vertex import adapter_sizes
from tuneport.providers.vertex.chat import VertexTokenCounter
from tuneport.providers.vertex.provider import VertexProvider
from tuneport.schemas import AnyRecord, Example, JobConfig, Message, PreferenceExample
from tuneport.validation.validate import validate_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DATASETS = [
    FIXTURES / "sample" / "chat.jsonl",
    FIXTURES / "sample" / "preference.jsonl",
    FIXTURES / "golden" / "input.chat.tuneport.jsonl",
    FIXTURES / "golden" / "input.preference.tuneport.jsonl",
    *sorted(p for p in (FIXTURES / "real").iterdir() if p.suffix in (".json", ".jsonl")),
]
DATASETS.remove(FIXTURES / "real" / "llamafactory_dataset_info.json")  # a registry, not data

# --- OpenAI: the SDK's param types, strict ---------------------------------------------------

STRICT = ConfigDict(extra="forbid", strict=True)


class SystemMsg(ChatCompletionSystemMessageParam, total=False):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    content: Required[str | list[ChatCompletionContentPartTextParam]]  # type: ignore[misc]


class UserMsg(ChatCompletionUserMessageParam, total=False):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    content: Required[str | list[ChatCompletionContentPartParam]]  # type: ignore[misc]


class AssistantMsg(ChatCompletionAssistantMessageParam, total=False):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    content: str | list[ContentArrayOfContentPart] | None  # type: ignore[misc]
    tool_calls: list[ChatCompletionMessageFunctionToolCallParam]  # type: ignore[misc]


class FineTuneAssistantMsg(AssistantMsg, total=False):
    """The spec's FineTuneChatCompletionRequestAssistantMessage: the assistant message + weight."""

    weight: Literal[0, 1]


class ToolMsg(ChatCompletionToolMessageParam, total=False):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    content: Required[str | list[ChatCompletionContentPartTextParam]]  # type: ignore[misc]


ChatMessage = Annotated[SystemMsg | UserMsg | AssistantMsg | ToolMsg, Field(discriminator="role")]
FineTuneMessage = Annotated[
    SystemMsg | UserMsg | FineTuneAssistantMsg | ToolMsg, Field(discriminator="role")
]


class FunctionTool(ChatCompletionFunctionToolParam, total=False):
    __pydantic_config__ = STRICT  # type: ignore[misc]


class SFTRow(TypedDict, total=False):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    messages: Required[Annotated[list[FineTuneMessage], Field(min_length=1)]]
    tools: list[FunctionTool]
    parallel_tool_calls: bool


class DPOInput(TypedDict, total=False):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    messages: Required[Annotated[list[ChatMessage], Field(min_length=1)]]
    tools: list[FunctionTool]
    parallel_tool_calls: bool


OneReply = Annotated[list[AssistantMsg], Field(min_length=1, max_length=1)]


class DPORow(TypedDict):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    input: DPOInput
    preferred_output: OneReply
    non_preferred_output: OneReply


class StrictJobCreate(JobCreateParams, total=False):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    integrations: list[Integration] | None  # type: ignore[misc]


SFT_ROW = TypeAdapter(SFTRow)
DPO_ROW = TypeAdapter(DPORow)
CHAT_MESSAGES = TypeAdapter(list[ChatMessage])
JOB_CREATE = TypeAdapter(StrictJobCreate)


def _wire(row: dict[str, Any]) -> bytes:
    """The row as written to the JSONL file (types checked as JSON, as the server reads it)."""
    return json.dumps(row).encode()


def check_openai_row(record: AnyRecord) -> None:
    if isinstance(record, Example):
        SFT_ROW.validate_json(_wire(to_openai(record)))
    else:
        DPO_ROW.validate_json(_wire(to_openai_dpo(record)))


# --- Vertex: google-genai's models ------------------------------------------------------------


def _content(data: Any, roles: tuple[str, ...]) -> gtypes.Content:
    content = gtypes.Content.model_validate(data)
    assert content.role in roles and content.parts, data
    return content


def check_vertex_row(record: AnyRecord) -> None:
    if isinstance(record, Example):
        row = json.loads(_wire(to_vertex(record)))
        assert set(row) <= {"systemInstruction", "contents", "tools"}
        if "systemInstruction" in row:
            _content(row["systemInstruction"], ("system",))
        for content in row["contents"]:
            _content(content, ("user", "model"))
        for tool in row.get("tools", []):
            gtypes.Tool.model_validate(tool)
    else:
        row = json.loads(_wire(to_vertex_preference(record)))
        assert set(row) <= {"system_instruction", "contents", "completions"}
        if "system_instruction" in row:
            gtypes.Content.model_validate(row["system_instruction"])
        example = gtypes.GeminiPreferenceExample.model_validate(
            {"contents": row["contents"], "completions": row["completions"]}
        )
        assert [c.completion.role for c in example.completions or [] if c.completion] == [
            "model",
            "model",
        ]


def _valid_for(record: AnyRecord, provider: str) -> bool:
    """Whether ``provider``'s validation passes the record (only such records are uploaded)."""
    report = validate_rows([Row(1, record, [])], file="x", rules=registry.backend(provider).rules)
    return not [p for p in report.problems if p.severity == "error" and p.line is not None]


def _without_null_content(row: dict[str, Any]) -> dict[str, Any]:
    messages = [
        {k: v for k, v in m.items() if not (k == "content" and v is None)} for m in row["messages"]
    ]
    return {**row, "messages": messages}


# --- every fixture dataset ---------------------------------------------------------------------


@pytest.mark.parametrize("path", DATASETS, ids=lambda p: p.name)
def test_fixture_exports_match_the_providers_types(path: Path) -> None:
    records = load_records(path)
    checked = {"openai": 0, "vertex": 0}
    for record in records:
        if _valid_for(record, "openai"):
            check_openai_row(record)
            checked["openai"] += 1
        if _valid_for(record, "vertex"):
            check_vertex_row(record)
            checked["vertex"] += 1
    assert checked["openai"] + checked["vertex"] > 0, checked


# --- generated edge cases ------------------------------------------------------------------------

NAMES = st.text(string.ascii_lowercase + "_", min_size=1, max_size=12)
TEXT = st.text(string.ascii_letters + " .,?!", min_size=1, max_size=30).filter(str.strip)


@st.composite
def json_schemas(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """JSON Schema as OpenAI tools write it: type arrays, nullable, enums, const, formats,
    nested objects and arrays, anyOf/oneOf, additionalProperties, $ref into $defs."""
    kinds = ["string", "number", "integer", "boolean"] + (["object", "array"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    schema: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        schema["type"] = [kind, "null"]
    if draw(st.booleans()):
        schema["description"] = draw(TEXT)
    if kind == "string":
        extra = draw(st.sampled_from(["", "enum", "const", "format", "pattern", "length"]))
        if extra == "enum":
            schema["enum"] = draw(st.lists(TEXT, min_size=1, max_size=4, unique=True))
        elif extra == "const":
            schema = {"const": draw(TEXT)}
        elif extra == "format":
            schema["format"] = draw(st.sampled_from(["date-time", "email", "uri"]))
        elif extra == "pattern":
            schema["pattern"] = "^[a-z]+$"
        elif extra == "length":
            schema.update(minLength=1, maxLength=draw(st.integers(1, 99)))
    elif kind in ("number", "integer"):
        if draw(st.booleans()):
            schema.update(minimum=0, maximum=draw(st.integers(1, 10_000)))
        if kind == "integer" and draw(st.booleans()):
            schema["enum"] = [1, 2, 3]  # not expressible for Gemini: dropped with a note
    elif kind == "object":
        props = draw(st.dictionaries(NAMES, json_schemas(depth + 1), min_size=1, max_size=3))
        schema["properties"] = props
        schema["required"] = sorted(draw(st.sets(st.sampled_from(sorted(props)))))
        if draw(st.booleans()):
            schema["additionalProperties"] = False
    elif kind == "array":
        schema["items"] = draw(json_schemas(depth + 1))
        if draw(st.booleans()):
            schema.update(minItems=0, maxItems=5)
    if depth and draw(st.integers(0, 5)) == 0:
        key = draw(st.sampled_from(["anyOf", "oneOf"]))
        schema = {key: [schema, {"type": "string"}]}
    return schema


@st.composite
def tools(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for name in draw(st.lists(NAMES, min_size=1, max_size=3, unique=True)):
        props = draw(st.dictionaries(NAMES, json_schemas(1), min_size=0, max_size=4))
        params: dict[str, Any] = {"type": "object", "properties": props}
        if props and draw(st.booleans()):
            params["required"] = sorted(props)
            params["additionalProperties"] = False
        if draw(st.booleans()):
            params["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        if props and draw(st.booleans()):  # a shared definition, referenced
            first = sorted(props)[0]
            params["$defs"] = {"shared": props[first]}
            props[first] = {"$ref": "#/$defs/shared"}
        fn: dict[str, Any] = {"name": name, "parameters": params}
        if draw(st.booleans()):
            fn["description"] = draw(TEXT)
        if draw(st.booleans()):
            fn["strict"] = draw(st.booleans())
        out.append({"type": "function", "function": fn})
    return out


@st.composite
def conversations(draw: st.DrawFn, *, preference: bool = False) -> dict[str, Any]:
    """An OpenAI chat row (or DPO row): system, multi-turn, parallel tool calls with results,
    weights, image parts, optionally legacy function calling."""
    defined = draw(st.one_of(st.none(), tools()))
    names = [t["function"]["name"] for t in defined or []]
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    calls = 0
    for turn in range(draw(st.integers(1, 3))):
        user: dict[str, Any] = {"role": "user", "content": draw(TEXT)}
        if not preference and draw(st.integers(0, 4)) == 0:
            user["content"] = [
                {"type": "text", "text": draw(TEXT)},
                {"type": "image_url", "image_url": {"url": "https://x.test/i.png"}},
            ]
        messages.append(user)
        last = turn == 2 or preference
        if names and not last and draw(st.booleans()):
            batch = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
            ids = []
            call_list = []
            for name in batch:
                calls += 1
                ids.append(f"call_{calls}")
                args = json.dumps({"q": draw(TEXT)})
                call_list.append(
                    {
                        "id": ids[-1],
                        "type": "function",
                        "function": {"name": name, "arguments": args},
                    }
                )
            messages.append({"role": "assistant", "content": None, "tool_calls": call_list})
            messages += [{"role": "tool", "tool_call_id": i, "content": draw(TEXT)} for i in ids]
        if not preference:
            reply: dict[str, Any] = {"role": "assistant", "content": draw(TEXT)}
            if draw(st.booleans()):
                reply["weight"] = draw(st.sampled_from([0, 1]))
            messages.append(reply)
    if preference:
        source: dict[str, Any] = {"messages": messages}
        if defined:
            source["tools"] = defined
        if draw(st.booleans()):
            source["parallel_tool_calls"] = draw(st.booleans())
        return {
            "input": source,
            "preferred_output": [{"role": "assistant", "content": draw(TEXT)}],
            "non_preferred_output": [{"role": "assistant", "content": draw(TEXT)}],
        }
    row: dict[str, Any] = {"messages": messages}
    if defined:
        row["tools"] = defined
    if draw(st.booleans()):
        row["parallel_tool_calls"] = draw(st.booleans())
    return row


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_generated_chat_rows_match_the_providers_types(row: dict[str, Any]) -> None:
    record = from_openai(row)
    assert _valid_for(record, "openai")
    check_openai_row(record)
    # an OpenAI row read and written back is the same row (nothing added, nothing lost;
    # a null content of a tool-calling turn is left out)
    assert to_openai(record) == _without_null_content(row)
    if _valid_for(record, "vertex"):
        check_vertex_row(record)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations(preference=True))
def test_generated_dpo_rows_match_the_providers_types(row: dict[str, Any]) -> None:
    record = from_openai_dpo(row)
    assert _valid_for(record, "openai")
    check_openai_row(record)
    assert to_openai_dpo(record) == {**row, "input": _without_null_content(row["input"])}
    if _valid_for(record, "vertex"):
        check_vertex_row(record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_schemas())
def test_every_converted_schema_is_a_gemini_schema(schema: dict[str, Any]) -> None:
    converted = to_gemini_schema(schema)
    assert not converted.problems
    gtypes.Schema.model_validate(converted.schema)


def test_legacy_function_rows_export_as_tools() -> None:
    row = {
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "function_call": {"name": "w", "arguments": "{}"}},
            {"role": "function", "name": "w", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ],
        "functions": [{"name": "w", "parameters": {"type": "object", "properties": {}}}],
    }
    record = from_openai(row)
    check_openai_row(record)
    check_vertex_row(record)


# --- request bodies ------------------------------------------------------------------------------


@st.composite
def job_configs(draw: st.DrawFn, provider: str) -> JobConfig:
    method = draw(st.sampled_from(["sft", "dpo"]))
    model = draw(
        st.sampled_from(
            ["gpt-4.1-mini", "gpt-4o-mini-2024-07-18"]
            if provider == "openai"
            else ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3.5-flash"]
        )
    )
    return JobConfig(
        provider=provider,
        model=model,
        data=Path("train.jsonl"),
        method=method,
        epochs=draw(st.one_of(st.none(), st.integers(1, 50))),
        learning_rate_multiplier=draw(st.one_of(st.none(), st.floats(0.01, 10))),
        batch_size=draw(st.one_of(st.none(), st.integers(1, 256)))
        if provider == "openai"
        else None,
        suffix=draw(
            st.one_of(st.none(), st.text(string.ascii_lowercase + "-", min_size=1, max_size=64))
        ),
        seed=draw(st.one_of(st.none(), st.integers(0, 2_147_483_647)))
        if provider == "openai"
        else None,
    )


@settings(max_examples=100, deadline=None)
@given(
    job_configs("openai"),
    st.one_of(st.none(), st.floats(0.01, 2.0)),
    st.dictionaries(NAMES, TEXT, max_size=15),
    st.booleans(),
)
def test_openai_job_body_matches_job_create_params(
    cfg: JobConfig, beta: float | None, metadata: dict[str, str], validation: bool
) -> None:
    provider = OpenAIProvider(
        api_key="sk-x", beta=beta if cfg.method == "dpo" else None, metadata=metadata
    )
    provider.preflight(cfg)  # within every spec bound
    uploaded = UploadedData(training="file-t", validation="file-v" if validation else None)
    body = provider.job_body(uploaded, cfg, "tp-run-1")
    JOB_CREATE.validate_json(json.dumps(body))
    assert body["method"]["type"] == {"sft": "supervised", "dpo": "dpo"}[cfg.method]


@settings(max_examples=100, deadline=None)
@given(
    job_configs("vertex"),
    st.one_of(st.none(), st.sampled_from([1, 2, 4, 8, 16])),
    st.booleans(),
    st.one_of(st.none(), TEXT),
)
def test_vertex_tuning_config_matches_create_tuning_job_config(
    cfg: JobConfig, adapter: int | None, validation: bool, description: str | None
) -> None:
    allowed = adapter_sizes(cfg.model, cfg.method)
    if adapter is not None and allowed is not None and adapter not in allowed:
        adapter = allowed[-1]
    provider = VertexProvider(
        project="p",
        adapter_size=adapter,
        beta=0.1 if cfg.method == "dpo" else None,
        description=description,
        labels={"team": "ml"},
    )
    provider.check_config(cfg)
    uploaded = UploadedData(
        training="gs://b/t.jsonl", validation="gs://b/v.jsonl" if validation else None
    )
    config = provider.tuning_config(uploaded, cfg, "tp-Run-1")
    gtypes.CreateTuningJobConfig.model_validate(config)
    gtypes.TuningDataset(gcs_uri=uploaded.training)


class _CountTokensRequests:
    """Stands in for VertexProvider.count_tokens: checks what it would send, counts parts."""

    def __init__(self) -> None:
        self.calls = 0

    def count_tokens(
        self, model: str, contents: Any, *, system: Any = None, tools: Any = None
    ) -> int:
        self.calls += 1
        items = [gtypes.Content.model_validate(c) for c in contents]
        gtypes.CountTokensConfig(
            system_instruction=gtypes.Content.model_validate(system) if system else None,
            tools=[gtypes.Tool.model_validate(t) for t in tools or []] or None,
        )
        return sum(len(c.parts or []) for c in items)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(conversations(), conversations(preference=True)))
def test_count_tokens_requests_match_genai_types(row: dict[str, Any]) -> None:
    record: AnyRecord = from_openai_dpo(row) if "input" in row else from_openai(row)
    if not _valid_for(record, "vertex"):
        return
    requests = _CountTokensRequests()
    counter = VertexTokenCounter(requests, "gemini-2.5-flash")  # type: ignore[arg-type]
    assert counter.count(record) > 0 and requests.calls >= 1


@pytest.mark.parametrize("path", DATASETS[:2], ids=lambda p: p.name)
def test_fixture_count_tokens_requests_match_genai_types(path: Path) -> None:
    requests = _CountTokensRequests()
    counter = VertexTokenCounter(requests, "gemini-2.5-flash")  # type: ignore[arg-type]
    for record in load_records(path):
        counter.count(record)
    assert requests.calls


CHAT_CASES: list[list[Message]] = [
    [Message(role="system", content="Be brief."), Message(role="user", content="hi")],
    [
        Message(role="user", content="weather?"),
        Message.model_validate(
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "function": {"name": "w", "arguments": '{"city": "Paris"}'}}
                ],
                "weight": 1,
            }
        ),
        Message(role="tool", content="sunny", tool_call_id="c1", name="w"),
        Message(role="assistant", content="Sunny.", weight=0),
        Message(role="user", content="and tomorrow?"),
    ],
    from_openai(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    ],
                },
                {"role": "assistant", "content": "a cat"},
            ]
        }
    ).messages[:1],
]


@pytest.mark.parametrize("messages", CHAT_CASES)
def test_openai_chat_request_matches_chat_params(
    messages: list[Message], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAI(api_key="sk-test") as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        provider = OpenAIProvider(api_key="sk-test")
        provider.chat("ft:gpt-4.1-mini:org::x", messages, ChatOptions(temperature=0.2))
        (request,) = fake.calls("POST", "/chat/completions")
    body = request.body
    assert set(body) <= {"model", "messages", "temperature", "max_completion_tokens"}
    CHAT_MESSAGES.validate_json(json.dumps(body["messages"]))


@pytest.mark.parametrize("messages", CHAT_CASES)
def test_vertex_chat_contents_match_genai_types(messages: list[Message]) -> None:
    system, contents = VertexProvider.contents(messages)
    for content in contents:
        _content(content, ("user", "model"))
    gtypes.GenerateContentConfig(system_instruction=system, temperature=0.2)


def test_preference_fixture_rows_cover_both_targets() -> None:
    records = load_records(FIXTURES / "sample" / "preference.jsonl")
    assert records and all(isinstance(r, PreferenceExample) for r in records)
    for record in records:
        check_openai_row(record)
        check_vertex_row(record)


def test_the_contract_types_refuse_what_the_providers_refuse() -> None:
    """The checks above can fail: each type rejects a known mismatch."""
    from pydantic import ValidationError

    tool_with_name = {"role": "tool", "content": "r", "tool_call_id": "c", "name": "f"}
    with pytest.raises(ValidationError):
        CHAT_MESSAGES.validate_python([tool_with_name])
    bad_weight = {"messages": [{"role": "assistant", "content": "a", "weight": 2}]}
    with pytest.raises(ValidationError):
        SFT_ROW.validate_python(bad_weight)
    with pytest.raises(ValidationError):  # an unknown hyperparameter, nested
        JOB_CREATE.validate_python(
            {
                "model": "m",
                "training_file": "f",
                "method": {"type": "supervised", "supervised": {"hyperparameters": {"epochs": 3}}},
            }
        )
    with pytest.raises(ValidationError):  # the spec's old DPO names
        DPO_ROW.validate_python(
            {
                "input": {"messages": [{"role": "user", "content": "q"}]},
                "preferred_completion": [{"role": "assistant", "content": "a"}],
                "non_preferred_completion": [{"role": "assistant", "content": "b"}],
            }
        )
    raw_schema = {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}
    with pytest.raises((ValidationError, AttributeError)):  # raw JSON Schema is not a Schema
        gtypes.Tool.model_validate(
            {"functionDeclarations": [{"name": "f", "parameters": raw_schema}]}
        )
    with pytest.raises(ValidationError):  # OpenAI's strict flag has no Gemini field
        gtypes.Tool.model_validate({"functionDeclarations": [{"name": "f", "strict": True}]})
    with pytest.raises(ValidationError):
        gtypes.CreateTuningJobConfig.model_validate({"n_epochs": 3})
