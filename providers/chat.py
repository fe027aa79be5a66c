"""OpenAI-compatible chat, written once: OpenAI and Azure (the OpenAI SDK), Together and
Fireworks (their own Stainless SDKs, whose ``chat.completions.create`` takes and returns the
same shapes) build the request, read the reply and stream it through :class:`CompatChat`.

A backend mixes it in and supplies its ``client``, its retrying ``_call``, ``_translate`` (SDK
error -> one-line tuneport error), ``base_url`` and the ``api`` title; it may change the name of
the length limit (:attr:`CompatChat.max_tokens_field`) and the model a chat is sent to
(:meth:`CompatChat._chat_target`, e.g. a Fireworks deployment).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from tuneport.data.exporters import openai_message
from tuneport.errors import ProviderError, TuneportError
from tuneport.providers.base import ChatOptions
from tuneport.retry import is_connection_error
from tuneport.schemas import Message, ToolCall

T = TypeVar("T")


def chat_request(
    model: str, messages: Sequence[Message], options: ChatOptions, *, max_tokens_field: str
) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for one reply."""
    wire = [openai_message(m.model_copy(update={"weight": None})) for m in messages]
    request: dict[str, Any] = {"model": model, "messages": wire}
    if options.temperature is not None:
        request["temperature"] = options.temperature
    if options.max_tokens is not None:
        request[max_tokens_field] = options.max_tokens
    return request


def reply_message(reply: Any, model: str) -> Message:
    """The assistant message of a ``chat.completion`` (text and function tool calls)."""
    choice = reply.choices[0] if getattr(reply, "choices", None) else None
    message = getattr(choice, "message", None)
    if message is None:
        raise ProviderError(f"{model} returned no reply", hint="try again")
    calls = [
        ToolCall.model_validate(c.model_dump(mode="json", include={"id", "type", "function"}))
        for c in getattr(message, "tool_calls", None) or []
        if getattr(c, "type", "function") == "function"
    ]
    content = message.content if isinstance(message.content, str | None) else str(message.content)
    return Message(role="assistant", content=content, tool_calls=calls or None)


class CompatChat:
    """``chat`` and ``chat_stream`` over an OpenAI-compatible ``chat.completions`` API."""

    max_tokens_field: ClassVar[str] = "max_tokens"  # OpenAI: max_completion_tokens
    _model: str

    # supplied by the backend (HostedBackend / SdkBackend)
    client: Any
    _call: Callable[..., Any]
    _translate: Callable[[BaseException], TuneportError | None]
    _where: Callable[[], str]  # "Together AI at https://…"

    def _chat_target(self, model: str) -> str:
        """The model id the request names (a backend may route it, e.g. to a deployment)."""
        return model

    def chat_request(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> dict[str, Any]:
        return chat_request(model, messages, options, max_tokens_field=self.max_tokens_field)

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        self._model = model
        request = self.chat_request(self._chat_target(model), messages, options)
        reply = self._call(lambda: self.client.chat.completions.create(**request))
        return reply_message(reply, model)

    def chat_stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> Iterator[str]:
        """The reply's text as the server streams it (``stream=True``); retried until the
        stream opens, never after a piece was shown."""
        self._model = model
        request = self.chat_request(self._chat_target(model), messages, options)
        stream = self._call(lambda: self.client.chat.completions.create(**request, stream=True))
        kind = stream.response.headers.get("content-type", "")
        if "json" in kind:  # a compatible server that ignores stream=True
            yield from self._whole_reply(stream, model)
            return
        try:
            for chunk in stream:
                for choice in chunk.choices:  # Azure opens with a chunk without choices
                    if choice.index == 0 and choice.delta.content:
                        yield choice.delta.content
        except Exception as exc:
            if is_connection_error(exc):
                raise ProviderError(
                    f"the connection to {self._where()} dropped mid-reply",
                    hint="send the message again",
                ) from None
            error = self._translate(exc)
            if error is None:
                raise
            raise error from None
        finally:
            stream.close()

    def _completion(self, body: bytes) -> Any:
        """A whole ``chat.completion`` body as the SDK's reply type (``ValueError`` when it is
        not one); a backend whose SDK declares its own type reads it with that."""
        from openai.types.chat import ChatCompletion

        return ChatCompletion.model_validate_json(body)

    def _whole_reply(self, stream: Any, model: str) -> Iterator[str]:
        """The text of a plain ``chat.completion`` sent in answer to ``stream=True`` (the SDK
        would read it as an event stream without events: an empty reply)."""
        try:
            body = stream.response.read()
            reply = self._completion(body)
        except ValueError:
            raise ProviderError(
                f"{model} ({self._where()}) answered a streamed chat with a reply that is "
                "neither an event stream nor a chat completion",
                hint="check that the base URL serves the OpenAI chat completions API",
            ) from None
        finally:
            stream.close()
        text = reply.choices[0].message.content if reply.choices else None
        if text:
            yield text


__all__ = ["CompatChat", "chat_request", "reply_message"]
