"""`/v1/messages` with a router behind the gateway: fallbacks and hooks, in Anthropic's terms."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from codelinkava.routing import Router
from support.anthropic_sdk import anthropic_client, close_anthropic_clients
from support.live_gateway import LiveGateway

from .support import FIRST, Upstreams, deployment, routed_gateway, status

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_anthropic_clients()


def client(gateway: LiveGateway) -> anthropic.Anthropic:
    return anthropic_client(gateway.url)


def test_a_failover_is_invisible_to_the_sdk_and_told_to_the_hooks(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(503))
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")])
    with routed_gateway(router) as gateway:
        with client(gateway).messages.stream(model="m", max_tokens=16, messages=HELLO) as stream:
            text = "".join(stream.text_stream)
        message = client(gateway).messages.create(model="m", max_tokens=16, messages=HELLO)
    assert text == "Hello, world"
    assert message.content[0].text == "Hello, world"  # type: ignore[union-attr]
    streamed = gateway.outcomes[0]
    assert streamed.route == "/v1/messages" and streamed.deployment == "b"
    assert streamed.attempts == ["a"] and streamed.status == 200
    assert b.requests[0].json()["model"] == "upstream-b"


def test_an_unknown_model_is_anthropics_not_found_error(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    with (
        routed_gateway(Router([deployment(a, "a")])) as gateway,
        pytest.raises(anthropic.NotFoundError) as caught,
    ):
        client(gateway).messages.create(model="nope", max_tokens=16, messages=HELLO)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert a.requests == []
