"""Stored responses shared through a real redis-server: any gateway answers for any response.

Two gateways (each its own app, its own uvicorn, as two workers or hosts would
be) name the same Redis: a response created on one is retrieved, continued
and deleted on the other. With Redis gone, a lookup is a 503 that says so,
never a hang, and an answer is still given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import openai
import pytest

from support.live_gateway import LiveGateway, fronting, live_gateway
from support.real_upstream import Answer, openai_handler
from support.scripted import ScriptedServer

from .support import RedisServer


@pytest.fixture
def gateways(upstream: ScriptedServer, redis_server: RedisServer) -> Iterator[list[LiveGateway]]:
    upstream.handler = openai_handler(lambda body: Answer(f"answer {len(body['messages'])}"))
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                live_gateway(fronting(upstream.url("/v1"), redis_url=redis_server.url))
            )
            for _ in range(2)
        ]


def sdk(gateway: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


def test_created_on_one_gateway_continued_on_the_other(
    gateways: list[LiveGateway], upstream: ScriptedServer
) -> None:
    one, other = gateways
    with sdk(one) as first_client, sdk(other) as second_client:
        with first_client.responses.stream(model="m", input="Hi") as stream:
            first = stream.get_final_response()
        stored = second_client.responses.retrieve(first.id)
        assert stored.model_dump(exclude_none=True) == first.model_dump(exclude_none=True)
        second = second_client.responses.create(
            model="m", input="More", previous_response_id=first.id
        )
        assert upstream.requests[-1].json()["messages"] == [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "answer 1"},
            {"role": "user", "content": "More"},
        ]
        assert first_client.responses.retrieve(second.id).output_text == "answer 3"
        second_client.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            first_client.responses.retrieve(first.id)


def test_one_key_per_response_with_the_ttl(
    upstream: ScriptedServer, redis_server: RedisServer
) -> None:
    import redis

    upstream.handler = openai_handler(lambda body: Answer("kept"))
    settings = fronting(upstream.url("/v1"), redis_url=redis_server.url, responses_ttl=120.0)
    with live_gateway(settings) as gateway, sdk(gateway) as client:
        kept = client.responses.create(model="m", input="Hi")
        not_kept = client.responses.create(model="m", input="Hi", store=False)
    with redis.Redis.from_url(redis_server.url) as direct:
        keys = sorted(key.decode() for key in direct.keys("codelinkava:response:*"))
        assert keys == [f"codelinkava:response:{kept.id}"]
        assert 110 < direct.ttl(keys[0]) <= 120
        record = json.loads(direct.get(keys[0]) or b"{}")
    assert record["response"]["id"] == kept.id and record["response"]["output"][0]["content"]
    assert record["messages"][-1] == {"role": "assistant", "content": "kept"}
    assert not_kept.id not in keys[0]


def test_with_redis_gone_lookups_say_so_and_answers_still_come(
    upstream: ScriptedServer, redis_server: RedisServer
) -> None:
    upstream.handler = openai_handler(lambda body: Answer("still here"))
    with (
        live_gateway(fronting(upstream.url("/v1"), redis_url=redis_server.url)) as gateway,
        sdk(gateway) as client,
    ):
        before = client.responses.create(model="m", input="Hi")
        redis_server.stop()
        answer = client.responses.create(model="m", input="Hi")  # stored nowhere, answered
        assert answer.output_text == "still here"
        lookup = httpx.get(f"{gateway.url}/v1/responses/{before.id}", timeout=10)
        assert lookup.status_code == 503, lookup.text
        assert lookup.json()["error"]["code"] == "store_unavailable"
        with pytest.raises(openai.InternalServerError) as caught:
            client.responses.create(model="m", input="x", previous_response_id=before.id)
        assert caught.value.status_code == 503
        redis_server.start()  # same port, empty: the record went with the old process
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(before.id)
