"""What answers behind the gateway: the seam between the HTTP routes and the providers.

The routes ask a `Backend` for the models it serves and for a `Call`: the
typed chunk batches of one answer, plus what the relay and the metrics need
to know (which deployment answered, whether its chunks' `raw` JSON may be
forwarded as it is). `SingleProvider` fronts one provider -- what
`codelinkava serve --provider ...` runs; a router over many deployments
implements the same protocol.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from codelinkava.chunk import ChatChunk
from codelinkava.errors import InvalidRequestError
from codelinkava.providers import AsyncGeneratorProvider
from codelinkava.routing.record import RouteRecord

from .model_list import ModelList

__all__ = ["Backend", "Call", "SingleProvider"]


@dataclass(kw_only=True)
class Call(RouteRecord):
    """One answer on its way: its chunk batches, where they come from, and (filled in
    by a router as it goes, read when the response ends) what routing it did."""

    batches: AsyncGenerator[list[ChatChunk], None]
    #: Whether each chunk's `raw` is an OpenAI `chat.completion.chunk` to forward untouched.
    relays_openai_chunks: bool
    #: Whether each chunk's `raw` is an Anthropic Messages stream event to forward untouched.
    relays_anthropic_events: bool = False


class Backend(Protocol):
    """Serves model names; opens calls."""

    def models(self) -> list[str]:
        """The model names it serves, the default first, as last known: never waits
        (read on the hot path, for a request that names no model)."""

    async def list_models(self) -> list[str]:
        """The model names `/v1/models` lists, the default first: fresh, asking the
        upstream if what it last listed is past its time. Never raises for an upstream
        that cannot tell (the last good list, else the served name)."""

    async def warm_up(self) -> None:
        """Get ready (load a local model) before the first request. A deployment that
        cannot get ready is reported by `unavailable`, not raised, where others serve."""

    def deployment_names(self) -> list[str]:
        """Every deployment that may answer (the names `unavailable` uses)."""

    def unavailable(self) -> dict[str, str]:
        """What cannot answer at all, and why: deployment name -> reason (for /health)."""

    def speaks_anthropic(self, model: str) -> bool:
        """Whether every deployment that may answer `model` ("" for the default) speaks
        Anthropic's Messages itself, so its own fields are forwarded rather than refused."""

    def open(self, model: str, messages: list[dict[str, Any]], fields: dict[str, Any]) -> Call:
        """Start an answer; raise our errors (InvalidRequestError, ModelNotFoundError...)
        for a request that can be refused before anything is sent."""

    async def aclose(self) -> None:
        """Release what it holds (connections to shared stores)."""


class SingleProvider:
    """One provider with fixed set-up options.

    With a model name configured, that name and only that. Without one, the names the
    provider's upstream serves (`served_models`, kept for `models_ttl` seconds and
    asked at warm-up when `preload`), the first of them the default.
    """

    def __init__(
        self,
        provider: type[AsyncGeneratorProvider],
        options: Mapping[str, Any],
        model: str | None = None,
        *,
        preload: bool = True,
        models_ttl: float = 60.0,
    ) -> None:
        self.provider = provider
        self.options = dict(options)
        #: The configured name; None: whatever the upstream lists.
        self.model = model or None
        self.preload = preload
        self._listed = ModelList(
            self._ask_upstream, provider.served_model(self.options), models_ttl
        )

    async def _ask_upstream(self) -> list[str]:
        return await self.provider.served_models(self.options)

    def models(self) -> list[str]:
        return [self.model] if self.model else self._listed.names()

    async def list_models(self) -> list[str]:
        return [self.model] if self.model else await self._listed.fresh_names()

    async def warm_up(self) -> None:
        if self.preload:
            await self.provider.warm_up(self.options)
            if not self.model:
                await self._listed.fresh_names()

    def deployment_names(self) -> list[str]:
        return [self.provider.__name__]

    def unavailable(self) -> dict[str, str]:
        reason = self.provider.unavailable(self.options)
        return {} if reason is None else {self.provider.__name__: reason}

    def speaks_anthropic(self, model: str) -> bool:
        return self.provider.relays_anthropic_events

    def open(self, model: str, messages: list[dict[str, Any]], fields: dict[str, Any]) -> Call:
        provider = self.provider
        provider.check_request_fields(fields)
        upstream_model = model
        if not model or provider.single_model:  # else no default needed (not even a clock read)
            default = self.models()[0]
            model = model or default
            # A one-model provider knows its model by its own name; ours is an alias for it.
            upstream_model = "" if provider.single_model and model == default else model
        clash = set(fields) & set(self.options)
        if clash:
            name = sorted(clash)[0]
            raise InvalidRequestError(f"the field {name!r} is set by the server", param=name)
        batches = provider.create_async_chunk_batches(
            upstream_model, messages, **self.options, **fields
        )
        return Call(
            batches=batches,
            deployment=provider.__name__,
            relays_openai_chunks=provider.relays_openai_chunks,
            relays_anthropic_events=provider.relays_anthropic_events,
        )

    async def aclose(self) -> None:
        await self._listed.aclose()
