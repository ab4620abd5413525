"""The provider framework: `BaseProvider` and `AsyncGeneratorProvider`.

A provider is a class, never instantiated, whose classmethods answer a
conversation. `AsyncGeneratorProvider` subclasses write one method --
`create_async_generator` (text) or `create_async_chunk_batches` (typed
chunks) -- and this module derives the rest from it, once for every provider:
the other view, the sync twins, the joined answer, `params`.

Whoever runs a provider (the CLI, the gateway) asks it rather than naming it:
which set-up options it takes, which models it serves, where it sends, how to
warm it up, which request fields it honours.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Iterator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar

from ..chunk import AnswerBuilder, ChatChunk
from ..config import LIBRARY_OPTIONS
from ..core.stream_info import StreamInfo, capture_stream_info, report_stream_info
from ..core.sync import iterate_sync
from ..errors import InvalidRequestError, ProviderNotWorkingError
from ..types import Messages

__all__ = [
    "AnswerBuilder",
    "AsyncGeneratorProvider",
    "BaseProvider",
    "ChatChunk",
    "SetupOption",
    "StreamInfo",
    "capture_stream_info",
    "chunks_of",
    "fold",
    "report_stream_info",
    "reserved_option_names",
    "texts_of",
]


class SetupOption:
    """An option fixed by whoever runs the provider (a CLI flag, a gateway setting).

    Never taken from a gateway request: these pick a destination, a key or a file.
    """

    __slots__ = ("default", "env", "flag", "help", "name", "secret")

    def __init__(
        self,
        name: str,
        flag: str,
        help: str,
        *,
        env: str | None = None,
        secret: bool = False,
        default: str | None = None,
    ) -> None:
        self.name = name
        self.flag = flag
        self.help = help
        self.env = env
        self.secret = secret
        #: The value when neither given nor in the environment: a public endpoint that a
        #: config file may leave out (Anthropic's). None: it must be said.
        self.default = default

    def value(self, options: Mapping[str, Any]) -> Any:
        """The option's value: given, else from its environment variable, else its default."""
        given = options.get(self.name)
        if given is not None:
            return given
        found = os.environ.get(self.env) if self.env else None
        return found if found is not None else self.default


def reserved_option_names() -> frozenset[str]:
    """Every option name a gateway request body may never carry: the options the library
    consumes itself, and every set-up option any provider class declares -- subclasses
    defined after start-up included, so a provider that adds an option under a new name
    (an upstream, a key, a file) cannot have it chosen by a request."""
    global _reserved
    if _reserved is None:
        names = set(LIBRARY_OPTIONS)
        pending = BaseProvider.__subclasses__()
        while pending:
            cls = pending.pop()
            names.update(option.name for option in cls.setup_options)
            pending.extend(cls.__subclasses__())
        _reserved = frozenset(names)
    return _reserved


#: `reserved_option_names()` as last computed; forgotten whenever a provider class is made.
_reserved: frozenset[str] | None = None


class _ClassProperty:
    """A read-only property computed from the class (for `Provider.params`)."""

    def __init__(self, getter: Any) -> None:
        self._getter = getter
        self.__doc__ = getter.__doc__

    def __get__(self, instance: object, owner: type) -> str:
        return str(self._getter(owner))


def _describe(cls: type[BaseProvider]) -> str:
    """What `params` shows: `codelinkava.CodeLinkAva supports: (model: str, ...)`."""
    parts = ["model: str", "messages: Messages", "stream: bool"]
    for name, annotation in cls.option_docs:
        parts.append(f"{name}: {annotation}")
    return f"{cls.__module__.split('.')[0]}.{cls.__name__} supports: ({', '.join(parts)})"


class BaseProvider(ABC):
    """What every provider declares and offers."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        global _reserved
        super().__init_subclass__(**kwargs)
        _reserved = None  # its set-up options are reserved too (reserved_option_names)

    url: ClassVar[str | None] = None
    working: ClassVar[bool] = False
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = False
    supports_gpt_35_turbo: ClassVar[bool] = False
    supports_gpt_4: ClassVar[bool] = False
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str | None] = None
    models: ClassVar[tuple[str, ...]] = ()
    #: (name, type) of the keyword options the provider understands, for `params`.
    option_docs: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: Options set once by whoever runs the provider (URL, key, model file).
    setup_options: ClassVar[tuple[SetupOption, ...]] = ()
    #: Request fields the provider honours; None: any field, sent on as it is.
    request_fields: ClassVar[frozenset[str] | None] = None
    #: Whether its chunks' `raw` is the upstream's own `chat.completion.chunk` JSON, so a
    #: relay may forward it untouched.
    relays_openai_chunks: ClassVar[bool] = False
    #: Whether its chunks' `raw` is the upstream's own Anthropic Messages stream event
    #: (one chunk per event, `data["type"]` its name), so a Messages relay may forward
    #: it untouched, and Messages-only fields (`thinking`, `cache_control`) reach it.
    relays_anthropic_events: ClassVar[bool] = False
    #: Whether its endpoint's environment variable alone picks it when no provider is
    #: named (`selected_by_environment`); its options still read the variables.
    chosen_by_environment: ClassVar[bool] = True
    #: Whether it serves one model whatever a request names (no `model` on its wire).
    single_model: ClassVar[bool] = False
    #: Whether it needs the network (and so takes `timeout`, `max_retries`, `proxy`).
    uses_network: ClassVar[bool] = True
    #: What to tell a person while `warm_up` runs, if it can take a while.
    warm_up_message: ClassVar[str | None] = None

    params = _ClassProperty(_describe)

    @classmethod
    def selected_by_environment(cls) -> bool:
        """Whether an environment variable configures this provider's endpoint."""
        if not cls.chosen_by_environment:
            return False
        return any(o.env and os.environ.get(o.env) for o in cls.setup_options if not o.secret)

    @classmethod
    def served_model(cls, options: Mapping[str, Any]) -> str:
        """The model name it answers to with these set-up options."""
        return cls.default_model or "default"

    @classmethod
    async def served_models(cls, options: Mapping[str, Any]) -> list[str]:
        """The model names the endpoint these set-up options point at serves, the one to
        use when a request names none first: what a gateway's `/v1/models` lists.

        The default is `served_model(options)` alone, with no I/O: a provider whose
        endpoint serves one model, or whose models are its own (the seed's, a local
        file). A provider whose upstream lists its models (`GET /models` and the like)
        overrides it, and keeps to this contract, which its callers rely on:

        - It may do I/O: one short request (seconds, no retries), with the set-up
          options' address, key, proxy and headers -- never a request's.
        - It raises one of our `ProviderError`s when it cannot tell (unreachable,
          refused, not a list). Callers cache the answer for a while and fall back to
          the last good one, so it keeps no cache and no fallback of its own.
        - The names are the upstream's own, each one a request's `model` may name;
          an empty list means the upstream named none.
        """
        return [cls.served_model(options)]

    @classmethod
    def describe_endpoint(cls, options: Mapping[str, Any]) -> str:
        """Where it sends requests, for people (never includes a key)."""
        return cls.url or "(in process)"

    @classmethod
    def is_warm(cls, options: Mapping[str, Any]) -> bool:
        """Whether `warm_up` has nothing left to do."""
        return True

    @classmethod
    async def warm_up(cls, options: Mapping[str, Any]) -> None:
        """Get ready to answer (load a model); a no-op for remote providers."""
        return None

    @classmethod
    def preflight(cls, options: Mapping[str, Any]) -> None:
        """Raise ProviderNotWorkingError now if it cannot run on this machine (blocking;
        cheap after the first time). `serve` calls it before it listens."""
        return None

    @classmethod
    def unavailable(cls, options: Mapping[str, Any]) -> str | None:
        """Why it cannot answer, when that is known without sending anything (a local
        model that failed to load); None otherwise. Read by routers and `/health`."""
        return None

    @classmethod
    async def pick_model(cls, options: Mapping[str, Any]) -> str:
        """The model to ask for when the user named none."""
        return cls.served_model(options)

    @classmethod
    def check_request_fields(cls, fields: Mapping[str, Any]) -> None:
        """Raise InvalidRequestError naming the first field it cannot honour."""
        allowed = cls.request_fields
        if allowed is None:
            return
        for name in fields:
            if name not in allowed:
                raise InvalidRequestError(
                    f"{cls.__name__} cannot honour the field {name!r}", param=name
                )

    @classmethod
    @abstractmethod
    def create_completion(
        cls, model: str, messages: Messages, stream: bool = True, **kwargs: Any
    ) -> Iterator[str]:
        """Answer synchronously: pieces of text as they arrive (one piece if `stream` is False)."""

    @classmethod
    @abstractmethod
    async def create_async(cls, model: str, messages: Messages, **kwargs: Any) -> str:
        """Answer asynchronously with the whole text."""

    @classmethod
    def check_working(cls) -> None:
        """Raise ProviderNotWorkingError for a provider marked as not working."""
        if not cls.working:
            raise ProviderNotWorkingError(f"{cls.__name__} is marked as not working")


class AsyncGeneratorProvider(BaseProvider):
    """A provider written as one async generator of text pieces."""

    supports_stream: ClassVar[bool] = True

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[str, None]:
        """Yield the answer's text as it arrives. Subclasses write it as `async def ... yield`,
        or write `create_async_chunk_batches` and inherit this view of it."""
        if _overrides(cls, "create_async_chunk_batches"):
            batches = cls.create_async_chunk_batches(model, messages, **kwargs)
            async with aclosing(texts_of(batches)) as texts:
                async for text in texts:
                    yield text
            return
        raise NotImplementedError(
            f"{cls.__name__} implements neither create_async_generator "
            "nor create_async_chunk_batches"
        )

    @classmethod
    async def create_async_batches(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[list[str], None]:
        """The answer as lists of pieces that arrived together; relays write one list per send.

        The default gives each piece its own list; HTTP providers group the
        pieces of one network read.
        """
        async with aclosing(cls.create_async_generator(model, messages, **kwargs)) as agen:
            async for piece in agen:
                yield [piece]

    @classmethod
    async def create_async_chunk_batches(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """The answer as typed chunks, a list per network read: what a relay forwards.

        The default wraps the text view: a provider that only yields text gives
        chunks with only `content`, then one with `finish_reason` and usage if
        it reported them.
        """
        with capture_stream_info() as info:
            async with aclosing(cls.create_async_batches(model, messages, **kwargs)) as batches:
                async for batch in batches:
                    yield [ChatChunk(content=piece) for piece in batch]
        yield [ChatChunk(finish_reason=info.finish_reason or "stop", usage=info.usage)]

    @classmethod
    async def create_async_chunks(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[ChatChunk, None]:
        """The answer as typed chunks: role, content, tool-call deltas, refusal, logprobs,
        finish_reason, usage."""
        cls.check_working()
        batches = cls.create_async_chunk_batches(model, messages, **kwargs)
        async with aclosing(chunks_of(batches)) as chunks:
            async for chunk in chunks:
                yield chunk

    @classmethod
    def create_chunks(cls, model: str, messages: Messages, **kwargs: Any) -> Iterator[ChatChunk]:
        """The typed chunks from sync code (threads, scripts, inside a running loop)."""
        cls.check_working()
        return iterate_sync(cls.create_async_chunks(model, messages, **kwargs))

    @classmethod
    async def create_async_answer(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AnswerBuilder:
        """The whole answer folded: `.text`, `.tool_calls`, `.message()`, `.usage`."""
        return await fold(cls.create_async_chunks(model, messages, **kwargs))

    @classmethod
    def create_completion(
        cls, model: str, messages: Messages, stream: bool = True, **kwargs: Any
    ) -> Iterator[str]:
        """A plain generator of text; works from threads and from inside a running event loop."""
        cls.check_working()
        pieces = iterate_sync(cls.create_async_generator(model, messages, **kwargs))
        if stream:
            return pieces
        return iter(["".join(pieces)])

    @classmethod
    async def create_async(cls, model: str, messages: Messages, **kwargs: Any) -> str:
        """The whole answer, joined."""
        cls.check_working()
        async with aclosing(cls.create_async_generator(model, messages, **kwargs)) as stream:
            return "".join([piece async for piece in stream])


# The views every provider derives from its chunk batches (a class's, or an instance's
# such as RetryProvider's): each closes what it reads when its own reader leaves.


async def chunks_of(
    batches: AsyncGenerator[list[ChatChunk], None],
) -> AsyncGenerator[ChatChunk, None]:
    """The chunks of `batches`, one by one."""
    async with aclosing(batches) as it:
        async for batch in it:
            for chunk in batch:
                yield chunk


async def texts_of(batches: AsyncGenerator[list[ChatChunk], None]) -> AsyncGenerator[str, None]:
    """The text the chunks of `batches` carry (non-empty pieces only)."""
    async with aclosing(batches) as it:
        async for batch in it:
            for chunk in batch:
                if chunk.content:
                    yield chunk.content


async def fold(chunks: AsyncGenerator[ChatChunk, None]) -> AnswerBuilder:
    """The whole answer: every chunk folded into one `AnswerBuilder`."""
    answer = AnswerBuilder()
    async with aclosing(chunks) as it:
        async for chunk in it:
            answer.add(chunk)
    return answer


def _overrides(cls: type, name: str) -> bool:
    """Whether `cls` defines `name` below AsyncGeneratorProvider."""
    for klass in cls.__mro__:
        if klass is AsyncGeneratorProvider:
            return False
        if name in klass.__dict__:
            return True
    return False
