"""`RetryProvider`: several providers behind one, tried in turn until one streams.

gpt4free's `RetryProvider`, so code written for the seed's ecosystem runs
unchanged:

    provider = RetryProvider([CodeLinkAva, OpenAICompatible], shuffle=False)
    async for text in provider.create_async_generator("gpt-3.5-turbo", messages):
        ...

Each provider is tried only until its first chunk that commits the answer
(text, a tool call, the end; a role-only opening does not: `commits_answer`, the
rule the router and the gateway follow too): a failure before it (unreachable,
too slow, 5xx, 429, a broken stream) moves on to the next; a failure after it
reaches the caller, since text was already given. A request
that is itself wrong (an invalid argument, an upstream 400) is raised at once,
as every provider would refuse it alike. When all fail, the last error is
raised with a note naming every provider's.

An entry may be a provider or `(provider, options)`: the options (its URL,
key, `model`) go to that provider only; the call's own keyword arguments go
to every provider.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from ..chunk import AnswerBuilder, ChatChunk, commits_answer
from ..core.failover import moves_on
from ..core.sync import iterate_sync
from ..errors import InvalidRequestError, ProviderError, ProviderNotWorkingError
from ..types import Messages
from .base import AsyncGeneratorProvider, chunks_of, fold, texts_of

__all__ = ["ProviderEntry", "RetryProvider"]

ProviderEntry = (
    type[AsyncGeneratorProvider] | tuple[type[AsyncGeneratorProvider], Mapping[str, Any]]
)


class RetryProvider:
    """Tries its providers one after another (in a shuffled order by default, as gpt4free
    does) until one streams; offers the same calls as a provider."""

    working = True
    supports_stream = True
    supports_message_history = True
    needs_auth = False
    url: str | None = None

    def __init__(self, providers: Sequence[ProviderEntry], shuffle: bool = True) -> None:
        entries: list[tuple[type[AsyncGeneratorProvider], dict[str, Any]]] = []
        for entry in providers:
            provider, options = entry if isinstance(entry, tuple) else (entry, {})
            if not (isinstance(provider, type) and issubclass(provider, AsyncGeneratorProvider)):
                raise InvalidRequestError(
                    f"RetryProvider takes provider classes, not {type(provider).__name__}"
                )
            entries.append((provider, dict(options)))
        if not entries:
            raise InvalidRequestError("RetryProvider needs at least one provider")
        self.providers = entries
        self.shuffle = shuffle
        #: The provider that answered the last call (gpt4free's attribute).
        self.last_provider: type[AsyncGeneratorProvider] | None = None
        self.__name__ = "RetryProvider"

    def __repr__(self) -> str:
        names = ", ".join(provider.__name__ for provider, _ in self.providers)
        return f"RetryProvider([{names}], shuffle={self.shuffle})"

    def _order(self) -> list[tuple[type[AsyncGeneratorProvider], dict[str, Any]]]:
        order = [(p, o) for p, o in self.providers if p.working]
        if not order:
            raise ProviderNotWorkingError("none of RetryProvider's providers is working")
        if self.shuffle:
            random.shuffle(order)
        return order

    async def create_async_chunk_batches(
        self, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """The first provider that streams: its typed chunks, a list per network read."""
        failures: list[tuple[str, ProviderError]] = []
        for provider, options in self._order():
            options = dict(options)
            name = options.pop("model", None) or model
            batches = provider.create_async_chunk_batches(name, messages, **options, **kwargs)
            try:
                held, ended = await _until_committed(batches)
            except Exception as exc:
                await batches.aclose()
                if not isinstance(exc, ProviderError) or not moves_on(exc):
                    raise
                failures.append((provider.__name__, exc))
                continue
            except BaseException:
                await batches.aclose()
                raise
            self.last_provider = provider
            async with aclosing(batches):
                for batch in held:
                    yield batch
                if ended:
                    return
                async for batch in batches:
                    yield batch
            return
        name, error = failures[-1]
        if len(failures) > 1:
            tried = "; ".join(f"{p}: {type(e).__name__}: {e}" for p, e in failures)
            error.add_note(f"RetryProvider tried every provider: {tried}")
        raise error

    async def create_async_chunks(
        self, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[ChatChunk, None]:
        batches = self.create_async_chunk_batches(model, messages, **kwargs)
        async with aclosing(chunks_of(batches)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def create_async_generator(
        self, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[str, None]:
        """The answer's text as it arrives."""
        batches = self.create_async_chunk_batches(model, messages, **kwargs)
        async with aclosing(texts_of(batches)) as texts:
            async for text in texts:
                yield text

    async def create_async(self, model: str, messages: Messages, **kwargs: Any) -> str:
        """The whole answer, joined."""
        async with aclosing(self.create_async_generator(model, messages, **kwargs)) as pieces:
            return "".join([piece async for piece in pieces])

    async def create_async_answer(
        self, model: str, messages: Messages, **kwargs: Any
    ) -> AnswerBuilder:
        return await fold(self.create_async_chunks(model, messages, **kwargs))

    def create_completion(
        self, model: str, messages: Messages, stream: bool = True, **kwargs: Any
    ) -> Iterator[str]:
        """From sync code: pieces of text (one piece when `stream` is False)."""
        pieces = iterate_sync(self.create_async_generator(model, messages, **kwargs))
        if stream:
            return pieces
        return iter(["".join(pieces)])

    def create_chunks(self, model: str, messages: Messages, **kwargs: Any) -> Iterator[ChatChunk]:
        return iterate_sync(self.create_async_chunks(model, messages, **kwargs))


async def _until_committed(
    batches: AsyncGenerator[list[ChatChunk], None],
) -> tuple[list[list[ChatChunk]], bool]:
    """The batches up to the first that commits the answer (`commits_answer`), and
    whether the stream ended there. A failure before it -- after a role-only opening,
    say -- is raised, so the next provider is tried."""
    held: list[list[ChatChunk]] = []
    async for batch in batches:
        held.append(batch)
        if commits_answer(batch):
            return held, False
    return held, True
