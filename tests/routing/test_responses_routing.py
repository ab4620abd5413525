"""`/v1/responses` in front of a router: failover, fallbacks and model names as for chat."""

from __future__ import annotations

import asyncio

import openai
import pytest

from codelinkava.routing import Router, RouterSettings
from support.live_gateway import wait_until
from support.scripted import Reply, Reset, chunk, event

from .support import FIRST, RoutedGateway, Upstreams, deployment, routed_gateway, status


def client(gateway: RoutedGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


async def test_failover_before_the_first_event_is_invisible(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(503))
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")])
    with routed_gateway(router) as gateway:
        async with asyncio.timeout(10), client(gateway) as sdk:
            async with sdk.responses.stream(model="m", input="Hello") as stream:
                final = await stream.get_final_response()
            whole = await sdk.responses.create(model="m", input="Hello")
        await wait_until(lambda: len(gateway.outcomes) == 2)
    assert final.output_text == whole.output_text == "Hello, world"
    assert final.model == "m"
    assert b.requests[0].json()["model"] == "upstream-b"
    outcome = gateway.outcomes[0]
    assert outcome.route == "/v1/responses" and outcome.deployment == "b"
    assert outcome.attempts == ["a"]


async def test_a_fallback_group_answers_and_a_stream_cut_later_fails_the_response(
    upstreams: Upstreams,
) -> None:
    main, backup = upstreams(2)
    main.reply(status(500))
    backup.reply(Reply(body=[event(chunk("Par")), Reset()]))
    router = Router(
        [deployment(main, "main", "m"), deployment(backup, "backup", "backup")],
        RouterSettings(fallbacks={"m": ("backup",)}),
    )
    with routed_gateway(router) as gateway:
        async with asyncio.timeout(10), client(gateway) as sdk:
            stream = await sdk.responses.create(model="m", input="Hello", stream=True)
            events = [ev async for ev in stream]
        await wait_until(lambda: len(gateway.outcomes) == 1)
    assert [ev.type for ev in events][-1] == "response.failed"
    assert gateway.outcomes[0].fallback is True


async def test_an_unknown_model_is_a_404_in_openais_shape(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    with routed_gateway(Router([deployment(a, "a")])) as gateway:
        async with asyncio.timeout(10), client(gateway) as sdk:
            with pytest.raises(openai.NotFoundError) as caught:
                await sdk.responses.create(model="nope", input="Hello")
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_found"
