"""The library's own failover: `RetryProvider` and gpt4free's `ChatCompletion` front door."""

from __future__ import annotations

import asyncio

import pytest

import codelinkava
from codelinkava import ChatCompletion, CodeLinkAva, OpenAICompatible, RetryProvider, errors
from support.scripted import Reply, Reset, ScriptedServer, Sleep, Stall, chunk, event, sse

from .support import Upstreams, status

HELLO = [{"role": "user", "content": "Hello"}]
QUICK = {"max_retries": 0, "timeout": 2.0}


def pair(a: ScriptedServer, b: ScriptedServer) -> RetryProvider:
    """CodeLinkAva at `a`, then OpenAICompatible at `b`, in that order."""
    return RetryProvider(
        [
            (CodeLinkAva, {"api_url": a.url("/api/chat")}),
            (OpenAICompatible, {"base_url": b.url("/v1"), "model": "b-model"}),
        ],
        shuffle=False,
    )


async def test_moves_on_to_the_next_provider_before_text(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(503))
    provider = pair(a, b)
    text = "".join(
        [t async for t in provider.create_async_generator("gpt-3.5-turbo", HELLO, **QUICK)]
    )
    assert text == "Hello, world"
    assert provider.last_provider is OpenAICompatible
    assert b.requests[0].json()["model"] == "b-model"
    assert "api_url" not in b.requests[0].json()  # each provider's options stay its own


async def test_the_first_that_works_answers_alone(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    provider = pair(a, b)
    assert await provider.create_async("gpt-3.5-turbo", HELLO, **QUICK) == "Hello, world"
    assert provider.last_provider is CodeLinkAva and b.requests == []


async def test_all_failing_raises_the_last_error_naming_each(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(Reply(before=[Reset()]))
    b.reply(status(500))
    with pytest.raises(errors.ResponseStatusError) as info:
        await pair(a, b).create_async("m", HELLO, **QUICK)
    assert info.value.status == 500
    note = " ".join(info.value.__notes__)
    assert "CodeLinkAva: ProviderConnectionError" in note and "OpenAICompatible" in note


async def test_a_request_fault_is_raised_at_once(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(400))
    with pytest.raises(errors.ResponseStatusError) as info:
        await pair(a, b).create_async("m", HELLO, **QUICK)
    assert info.value.status == 400 and b.requests == []
    with pytest.raises(errors.InvalidRequestError):
        await pair(a, b).create_async("m", [], **QUICK)
    assert b.requests == []


async def test_text_already_given_is_never_retried(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(Reply(body=[event(chunk("Hel")), Sleep(0.05), Reset()]))
    seen: list[str] = []
    with pytest.raises(errors.ProviderError):
        async for text in pair(a, b).create_async_generator("m", HELLO, **QUICK):
            seen.append(text)
    assert seen == ["Hel"] and b.requests == []


@pytest.mark.parametrize(
    "opening",
    [
        pytest.param(chunk(role="assistant"), id="role-only"),
        pytest.param(chunk("", role="assistant"), id="role-and-empty-content"),
    ],
)
async def test_a_role_only_opening_then_a_failure_moves_on(
    upstreams: Upstreams, opening: dict[str, object]
) -> None:
    """The opening gave the caller nothing, so the answer is not committed to `a` yet:
    the same rule as the router's and the gateway's (`commits_answer`)."""
    a, b = upstreams(2)
    a.reply(Reply(body=[event(opening), Sleep(0.05), Reset()]))
    provider = pair(a, b)
    batches = [
        batch async for batch in provider.create_async_chunk_batches("m", HELLO, **QUICK)
    ]
    text = "".join(c.content or "" for batch in batches for c in batch)
    assert text == "Hello, world"
    assert provider.last_provider is OpenAICompatible
    assert len(a.requests) == 1 and len(b.requests) == 1


async def test_breaking_out_closes_the_upstream(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(Reply(body=[event(chunk("x")), Stall()]))
    async with asyncio.timeout(5):
        agen = pair(a, b).create_async_generator("m", HELLO, **QUICK)
        async for _ in agen:
            break
        await agen.aclose()
    await a.wait_disconnect(within=2)


def test_sync_calls_work_like_a_providers(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(502))
    provider = pair(a, b)
    assert list(provider.create_completion("m", HELLO, stream=True, **QUICK)) == [
        "Hello",
        ", world",
    ]
    assert list(provider.create_completion("m", HELLO, stream=False, **QUICK)) == ["Hello, world"]
    chunks = list(provider.create_chunks("m", HELLO, **QUICK))
    assert "".join(c.content or "" for c in chunks) == "Hello, world"


async def test_shuffle_tries_every_provider_in_some_order(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    provider = RetryProvider(
        [
            (CodeLinkAva, {"api_url": a.url("/api/chat")}),
            (OpenAICompatible, {"base_url": b.url("/v1")}),
        ]
    )
    assert provider.shuffle is True  # gpt4free's default
    for _ in range(30):
        await provider.create_async("m", HELLO, **QUICK)
        if a.requests and b.requests:
            break
    assert a.requests and b.requests


def test_retry_provider_refuses_what_is_not_a_provider() -> None:
    with pytest.raises(errors.InvalidRequestError, match="at least one provider"):
        RetryProvider([])
    with pytest.raises(errors.InvalidRequestError, match="provider classes"):
        RetryProvider(["CodeLinkAva"])  # type: ignore[list-item]


def test_chat_completion_create_streams_and_joins(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    pieces = ChatCompletion.create(
        "gpt-3.5-turbo", HELLO, provider=CodeLinkAva, stream=True, api_url=a.url(), **QUICK
    )
    assert not isinstance(pieces, str)
    assert list(pieces) == ["Hello", ", world"]
    whole = ChatCompletion.create(
        "gpt-3.5-turbo", HELLO, provider=CodeLinkAva, api_url=a.url(), **QUICK
    )
    assert whole == "Hello, world"  # stream=False is gpt4free's default


def test_chat_completion_takes_names_retry_providers_and_the_environment(
    upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = upstreams(2)
    assert (
        ChatCompletion.create("m", HELLO, provider="codelinkava", api_url=a.url(), **QUICK)
        == "Hello, world"
    )
    assert (
        ChatCompletion.create(
            "m", HELLO, provider="OpenAICompatible", base_url=b.url("/v1"), **QUICK
        )
        == "Hello, world"
    )
    assert ChatCompletion.create("m", HELLO, provider=pair(a, b), **QUICK) == "Hello, world"
    monkeypatch.setenv("CODELINKAVA_API_URL", a.url())
    before = len(a.requests)
    assert ChatCompletion.create("gpt-3.5-turbo", HELLO, **QUICK) == "Hello, world"
    assert len(a.requests) == before + 1, "provider=None: the one the environment configures"


async def test_chat_completion_create_async(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    a.reply(Reply(body=[sse("async")]))
    answer = await ChatCompletion.create_async(
        "m", HELLO, provider=CodeLinkAva, api_url=a.url(), **QUICK
    )
    assert answer == "async"


def test_chat_completion_refuses_clearly() -> None:
    with pytest.raises(errors.InvalidRequestError, match="unknown provider 'nope'"):
        ChatCompletion.create("m", HELLO, provider="nope")
    with pytest.raises(errors.InvalidRequestError, match="provider must be"):
        ChatCompletion.create("m", HELLO, provider=42)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidRequestError, match="model must be a string"):
        ChatCompletion.create(3, HELLO, provider=CodeLinkAva)


def test_the_front_door_is_public() -> None:
    assert codelinkava.ChatCompletion is ChatCompletion
    assert codelinkava.providers.RetryProvider is RetryProvider


def test_chat_completion_auth_is_the_providers_key_never_a_body_field(
    upstreams: Upstreams,
) -> None:
    """gpt4free passes the key as `auth=`: it reaches the upstream as the bearer key."""
    (a,) = upstreams(1)
    a.reply(Reply(body=[sse("ok")]))
    answer = ChatCompletion.create(
        "m", HELLO, provider=OpenAICompatible, auth="sk-gpt4free", base_url=a.url("/v1"), **QUICK
    )
    assert answer == "ok"
    sent = a.requests[-1]
    assert sent.headers["Authorization"] == "Bearer sk-gpt4free"
    assert "auth" not in sent.json()
    with pytest.raises(errors.InvalidRequestError, match="LocalModel takes none"):
        ChatCompletion.create("m", HELLO, provider="local", auth="sk-x")
    with pytest.raises(errors.InvalidRequestError, match="two different keys"):
        ChatCompletion.create("m", HELLO, provider=OpenAICompatible, auth="a", api_key="b")
