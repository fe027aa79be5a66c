"""Chat with a tuned (or base) model on any provider: one-shot or a session keeping history."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tuneport.errors import NotFoundError, ProviderError
from tuneport.jobs.cleanup import cleaned_up
from tuneport.jobs.resolve import resolve_target
from tuneport.jobs.store import JobStore, open_store
from tuneport.providers import registry
from tuneport.providers.base import ChatOptions, Provider, StreamingChat
from tuneport.schemas import Message

EXIT_WORDS = frozenset({"/exit", "/quit"})


class ChatSession:
    """A conversation with one model; every turn sends the whole history."""

    def __init__(
        self,
        provider: Provider,
        model: str,
        *,
        system: str | None = None,
        options: ChatOptions | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.options = options or ChatOptions()
        self.history: list[Message] = []
        self.cleaned: str | None = None  # "job ID was cleaned up on DAY (...)", when it was
        if system:
            self.history.append(Message(role="system", content=system))

    def send(self, text: str, on_text: Callable[[str], None] | None = None) -> Message:
        """Send one user turn; the reply joins the history only when it arrived whole.

        With ``on_text``, a backend that streams (:class:`StreamingChat`) hands each piece of
        the reply to it as it is generated; other backends answer in one piece (``on_text`` is
        then not called: the caller shows the returned message).
        """
        turn = Message(role="user", content=text)
        messages = [*self.history, turn]
        try:
            if on_text is not None and isinstance(self.provider, StreamingChat):
                pieces: list[str] = []
                for piece in self.provider.chat_stream(self.model, messages, self.options):
                    pieces.append(piece)
                    on_text(piece)
                reply = Message(role="assistant", content="".join(pieces))
            else:
                reply = self.provider.chat(self.model, messages, self.options)
        except NotFoundError as exc:
            if self.cleaned is None:
                raise
            # the store knows why: `jobs cleanup` deleted what served the tuned model
            again = "train again with the same `tuneport train` command plus --new-run"
            raise NotFoundError(
                f"{self.cleaned}; {exc.message}",
                hint=again + (f", or {exc.hint}" if exc.hint else ""),
            ) from None
        if not reply.content and not reply.tool_calls:
            raise ProviderError(
                f"{self.model} sent an empty reply",
                hint="send the message again; if it stays empty, check the model (a tuned "
                "model can learn to answer nothing) or the server",
            )
        self.history.extend([turn, reply])
        return reply


def open_chat(
    target: str,
    *,
    provider: str | None = None,
    system: str | None = None,
    options: ChatOptions | None = None,
    settings: Mapping[str, Any] | None = None,
    store: JobStore | None = None,
) -> ChatSession:
    """Resolve ``target`` (job id, tuned model id, endpoint, base model + provider)."""
    jobs = store or open_store()
    name, model, stored = resolve_target(target, provider, store=jobs)
    backend = registry.get(name, {**stored, **dict(settings or {})}, store=jobs)
    session = ChatSession(backend, model, system=system, options=options)
    session.cleaned = cleaned_up(jobs, name, model)
    return session


def chat_once(
    target: str,
    message: str,
    *,
    provider: str | None = None,
    system: str | None = None,
    options: ChatOptions | None = None,
    settings: Mapping[str, Any] | None = None,
    store: JobStore | None = None,
) -> Message:
    """One reply from ``target`` to ``message``."""
    session = open_chat(
        target, provider=provider, system=system, options=options, settings=settings, store=store
    )
    return session.send(message)
