"""`ChatCompletion`: gpt4free's front door, for code written for the seed's ecosystem.

    import codelinkava as g4f
    for text in g4f.ChatCompletion.create(
        model="gpt-3.5-turbo", messages=messages, provider=g4f.CodeLinkAva, stream=True
    ):
        print(text, end="")

`provider` is a provider class, a `RetryProvider`, a name (`"codelinkava"`,
`"OpenAICompatible"`), or None: then the provider the environment configures
(`CODELINKAVA_API_URL`, `OPENAI_BASE_URL`), else the embedded model -- as
`codelinkava chat` chooses. `stream=False` (gpt4free's default) returns the
whole text. Errors are ours (`codelinkava.errors`), raised before anything is
sent when the arguments are wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeAlias

from .errors import InvalidRequestError, ProviderNotWorkingError
from .providers import DEFAULT_PROVIDER, PROVIDERS, AsyncGeneratorProvider, get_provider
from .providers.retry_provider import RetryProvider
from .types import Messages

__all__ = ["ChatCompletion"]

AnyProvider: TypeAlias = type[AsyncGeneratorProvider] | RetryProvider


def resolve_provider(provider: AnyProvider | str | None) -> AnyProvider:
    """The provider a `provider=` argument names."""
    if provider is None:
        for candidate in PROVIDERS.values():
            if candidate.uses_network and candidate.selected_by_environment():
                return candidate
        return get_provider(DEFAULT_PROVIDER)
    if isinstance(provider, str):
        for candidate in PROVIDERS.values():
            if candidate.__name__.lower() == provider.lower():
                return candidate
        return get_provider(provider)
    if isinstance(provider, RetryProvider) or (
        isinstance(provider, type) and issubclass(provider, AsyncGeneratorProvider)
    ):
        return provider
    raise InvalidRequestError(
        f"provider must be a provider class, a RetryProvider or a name, not {provider!r}"
    )


def _model_name(model: Any) -> str:
    """A string, or gpt4free's `Model` (anything with a string `name`)."""
    name = model if isinstance(model, str) else getattr(model, "name", None)
    if not isinstance(name, str):
        raise InvalidRequestError(f"model must be a string, not {type(model).__name__}")
    return name


def _checked(provider: AnyProvider | str | None, stream: bool, auth: str | None) -> AnyProvider:
    chosen = resolve_provider(provider)
    if not chosen.working:
        raise ProviderNotWorkingError(f"{chosen.__name__} is not working")
    if chosen.needs_auth and not auth:
        raise InvalidRequestError(f"{chosen.__name__} needs auth=")
    if stream and not chosen.supports_stream:
        raise InvalidRequestError(f"{chosen.__name__} does not support stream=True")
    return chosen


def _with_auth(chosen: AnyProvider, auth: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """gpt4free's `auth=` is the provider's key: our providers call it `api_key`, an
    option the library consumes (never a body field). A provider that takes no key is
    told so, not sent an `auth` field it would refuse."""
    if not auth:
        return kwargs
    providers = [p for p, _ in chosen.providers] if isinstance(chosen, RetryProvider) else [chosen]
    keyless = [
        p.__name__ for p in providers if not any(o.name == "api_key" for o in p.setup_options)
    ]
    if keyless:
        raise InvalidRequestError(f"auth= is an API key, and {', '.join(keyless)} takes none")
    if kwargs.get("api_key") not in (None, auth):
        raise InvalidRequestError("auth= and api_key= name two different keys; pass one")
    return {**kwargs, "api_key": auth}


class ChatCompletion:
    """`ChatCompletion.create(model, messages, provider=..., stream=...)`, as in gpt4free."""

    @staticmethod
    def create(
        model: Any,
        messages: Messages,
        provider: AnyProvider | str | None = None,
        stream: bool = False,
        auth: str | None = None,
        **kwargs: Any,
    ) -> Iterator[str] | str:
        """Pieces of text as they arrive (`stream=True`), else the whole text."""
        chosen = _checked(provider, stream, auth)
        kwargs = _with_auth(chosen, auth, kwargs)
        result = chosen.create_completion(_model_name(model), messages, stream=stream, **kwargs)
        return result if stream else "".join(result)

    @staticmethod
    async def create_async(
        model: Any,
        messages: Messages,
        provider: AnyProvider | str | None = None,
        auth: str | None = None,
        **kwargs: Any,
    ) -> str:
        """The whole text, from async code."""
        chosen = _checked(provider, False, auth)
        kwargs = _with_auth(chosen, auth, kwargs)
        return await chosen.create_async(_model_name(model), messages, **kwargs)
