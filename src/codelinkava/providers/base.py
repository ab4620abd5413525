"""The provider framework: `BaseProvider` and `AsyncGeneratorProvider`.

A provider is a class, never instantiated, whose classmethods answer a
conversation. `AsyncGeneratorProvider` subclasses write one method,
`create_async_generator`; this module derives the sync generator, the joined
answer and the `params` description from it, once for every provider.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from .._stream_info import StreamInfo, capture_stream_info, report_stream_info
from .._sync import iterate_sync
from ..errors import ProviderNotWorkingError
from ..types import Messages

__all__ = [
    "AsyncGeneratorProvider",
    "BaseProvider",
    "StreamInfo",
    "capture_stream_info",
    "report_stream_info",
]


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

    params = _ClassProperty(_describe)

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
    @abstractmethod
    def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        """Yield the answer's text as it arrives. Subclasses write it as `async def ... yield`."""

    @classmethod
    async def create_async_batches(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[list[str]]:
        """The answer as lists of pieces that arrived together; relays write one list per send.

        The default gives each piece its own list; HTTP providers group the
        pieces of one network read.
        """
        agen = cls.create_async_generator(model, messages, **kwargs)
        try:
            async for piece in agen:
                yield [piece]
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

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
        stream = cls.create_async_generator(model, messages, **kwargs)
        return "".join([piece async for piece in stream])
