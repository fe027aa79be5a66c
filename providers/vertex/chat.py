"""Chat with a tuned (or base) Gemini model on Vertex AI, and exact token counts through
``countTokens`` (``estimate --online``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tuneport.errors import ProviderError
from tuneport.providers.base import ChatOptions
from tuneport.providers.vertex import PREFERENCE_PROMPT_WEIGHT
from tuneport.providers.vertex.client import VertexClient, enum_name
from tuneport.schemas import Example, FunctionCall, Message, PreferenceExample, ToolCall

ROLES: dict[str, str] = {"user": "user", "assistant": "model", "tool": "user"}


class VertexChat(VertexClient):
    """``chat`` and ``count_tokens`` through google-genai."""

    @staticmethod
    def contents(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
        """System text and Gemini ``contents`` for a chat (tool turns become plain text)."""
        system = [m.content for m in messages if m.role == "system" and m.content]
        contents: list[dict[str, Any]] = []
        for m in messages:
            if m.role == "system":
                continue
            text = m.content or ""
            if m.role == "tool":
                text = f"[tool result] {text}"
            if m.tool_calls:
                calls = "; ".join(
                    f"{c.function.name}({c.function.arguments})" for c in m.tool_calls
                )
                text = f"{text}\n[tool calls] {calls}".strip()
            role = ROLES[m.role]
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].append({"text": text})
            else:
                contents.append({"role": role, "parts": [{"text": text}]})
        return ("\n\n".join(system) or None), contents

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        from google.genai import types

        self._model = model
        system, contents = self.contents(messages)
        config = types.GenerateContentConfig(
            system_instruction=system,
            temperature=options.temperature,
            max_output_tokens=options.max_tokens,
        )
        reply = self._call(
            lambda: self.client.models.generate_content(
                model=model,
                contents=contents,  # type: ignore[arg-type]
                config=config,
            )
        )
        parts = []
        if reply.candidates and reply.candidates[0].content:
            parts = reply.candidates[0].content.parts or []
        text = "".join(p.text for p in parts if p.text and not p.thought) or None
        calls = [
            ToolCall(
                id=p.function_call.id or f"call_{i}",
                function=FunctionCall(
                    name=p.function_call.name or "",
                    arguments=json.dumps(p.function_call.args or {}),
                ),
            )
            for i, p in enumerate(parts)
            if p.function_call is not None
        ]
        if text is None and not calls:
            reason = None
            if reply.candidates:
                reason = enum_name(reply.candidates[0].finish_reason)
            raise ProviderError(
                f"{model} returned no text (finish reason: {reason or 'none'})",
                hint="rephrase the message or check the endpoint",
            )
        return Message(role="assistant", content=text, tool_calls=calls or None)

    # --- online token counting ------------------------------------------------------------

    def online_counter(self, model: str) -> VertexTokenCounter:
        """Exact counts from Vertex ``countTokens`` for ``model`` (``estimate --online``)."""
        return VertexTokenCounter(self, model)

    def count_tokens(
        self,
        model: str,
        contents: list[dict[str, Any]] | str,
        *,
        system: Any = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> int:
        from google.genai import types

        self._model = model
        config = types.CountTokensConfig(
            system_instruction=system,
            tools=[types.Tool.model_validate(t) for t in tools or []] or None,
        )
        reply = self._call(
            lambda: self.client.models.count_tokens(
                model=model,
                contents=contents,  # type: ignore[arg-type]
                config=config,
            )
        )
        return int(reply.total_tokens or 0)


class VertexTokenCounter:
    """Exact token counts through Vertex ``countTokens`` (one request per record)."""

    exact = True
    error_band: float | None = None

    def __init__(self, provider: VertexChat, model: str) -> None:
        self.provider = provider
        self.model = model
        self.label = f"Vertex countTokens ({model})"

    def count(self, record: Example | PreferenceExample) -> int:
        from tuneport.data.exporters import to_vertex, to_vertex_preference

        if isinstance(record, PreferenceExample):  # billed: 2 × prompt + completions
            row = to_vertex_preference(record)
            contents = [*row["contents"], *(c["completion"] for c in row["completions"])]
            system = row.get("system_instruction")
            whole = self.provider.count_tokens(self.model, contents, system=system)
            prompt = self.provider.count_tokens(self.model, row["contents"], system=system)
            return whole + (PREFERENCE_PROMPT_WEIGHT - 1) * prompt
        row = to_vertex(record)
        return self.provider.count_tokens(
            self.model,
            row["contents"],
            system=row.get("systemInstruction"),
            tools=row.get("tools"),
        )

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        return self.provider.count_tokens(self.model, text)


__all__ = ["ROLES", "VertexChat", "VertexTokenCounter"]
