"""`GET /v1/models` tells the truth: the gateway lists what its upstream lists (or the
configured name), caches it, survives the upstream going away, sends a request that names
no model to the upstream's first, and answers in OpenAI's shape or, with an
`anthropic-version` header, Anthropic's -- to the real `openai` and `anthropic` SDKs too.

The upstream is a `ScriptedServer` that serves `GET /v1/models` and answers every chat.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from yarl import URL

from support.builders import sse
from support.live_gateway import LiveGateway, fronting, live_gateway, wait_until
from support.scripted import Recorded, Reply, ScriptedServer

JSON = {"Content-Type": "application/json"}
ANTHROPIC = {"anthropic-version": "2023-06-01"}
HELLO = [{"role": "user", "content": "Hello"}]
LISTED = ("qwen-7b", "org/llama-3-8b", "tiny")
#: The models' TTL where a test waits it out (`short_lived`); elsewhere a minute, as served.
TTL = 0.2


class Upstream:
    """Lists `names` at GET /v1/models (or fails with `status`); answers every chat "ok"."""

    def __init__(self, *names: str) -> None:
        self.names = list(names)
        self.status = 200

    def __call__(self, recorded: Recorded) -> Reply:
        if recorded.path.startswith("/v1/models"):
            if self.status != 200:
                failure = {"error": {"message": "down for maintenance", "type": "server_error"}}
                return Reply(status=self.status, headers=JSON, body=[json.dumps(failure).encode()])
            data = [{"id": n, "object": "model", "owned_by": "vllm"} for n in self.names]
            return Reply(headers=JSON, body=[json.dumps({"object": "list", "data": data}).encode()])
        return Reply(body=[sse("ok")])


def listings(server: ScriptedServer) -> int:
    """How many times the upstream was asked for its models."""
    return sum(1 for r in server.requests if r.path == "/v1/models")


def chats(server: ScriptedServer) -> list[Any]:
    return [r.json() for r in server.requests if r.method == "POST"]


async def get(gateway: LiveGateway, path: str, **headers: str) -> tuple[int, Any]:
    url = URL(gateway.url + path, encoded=True)  # a %2F stays as sent
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers) as response,
    ):
        return response.status, await response.json()


async def post(gateway: LiveGateway, path: str, body: dict[str, Any]) -> int:
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.post(gateway.url + path, json=body) as response,
    ):
        await response.read()
        return response.status


@pytest.fixture
def upstream(server: ScriptedServer) -> Upstream:
    server.handler = handler = Upstream(*LISTED)
    return handler


@pytest.fixture
def gateway(server: ScriptedServer, upstream: Upstream) -> Iterator[LiveGateway]:
    """In front of the upstream with no `model`, as `serve --base-url URL` runs (preload)."""
    with live_gateway(fronting(server.url("/v1"), preload=True)) as running:
        yield running


@pytest.fixture
def short_lived(server: ScriptedServer, upstream: Upstream) -> Iterator[LiveGateway]:
    """The same, keeping the upstream's list for `TTL` seconds only."""
    with live_gateway(fronting(server.url("/v1"), preload=True, models_ttl=TTL)) as running:
        yield running


def ids(listing: dict[str, Any]) -> list[str]:
    return [m["id"] for m in listing["data"]]


# What is listed ----------------------------------------------------------------------------


async def test_the_upstreams_models_are_listed_in_openais_shape(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    status, listing = await get(gateway, "/v1/models")
    assert status == 200
    assert listing == {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "codelinkava"}
            for name in LISTED
        ],
    }
    assert "gpt-3.5-turbo" not in ids(listing)  # the name no upstream here serves
    assert server.requests[0].path == "/v1/models"  # asked at start-up, before any client


async def test_the_list_is_kept_within_its_ttl(
    gateway: LiveGateway, server: ScriptedServer, upstream: Upstream
) -> None:
    assert listings(server) == 1  # at start-up
    upstream.names = ["qwen-14b"]
    for _ in range(3):
        assert ids((await get(gateway, "/v1/models"))[1]) == list(LISTED)
    assert listings(server) == 1  # within the TTL: from the cache


async def test_the_list_is_asked_again_after_its_ttl(
    short_lived: LiveGateway, server: ScriptedServer, upstream: Upstream
) -> None:
    upstream.names = ["qwen-14b"]
    await asyncio.sleep(TTL + 0.05)
    assert ids((await get(short_lived, "/v1/models"))[1]) == ["qwen-14b"]
    assert listings(server) == 2


async def test_a_request_without_a_model_goes_to_the_upstreams_first(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    assert await post(gateway, "/v1/chat/completions", {"messages": HELLO}) == 200
    assert await post(gateway, "/api/chat", {"messages": HELLO}) == 200  # the seed's: no model
    assert await post(gateway, "/v1/chat/completions", {"model": "tiny", "messages": HELLO}) == 200
    assert [c["model"] for c in chats(server)] == ["qwen-7b", "qwen-7b", "tiny"]
    _, health = await get(gateway, "/health")
    assert health["model"] == "qwen-7b"


async def test_the_default_model_follows_the_upstream_without_a_listing_request(
    short_lived: LiveGateway, server: ScriptedServer, upstream: Upstream
) -> None:
    upstream.names = ["mistral-7b"]
    await asyncio.sleep(TTL + 0.05)
    # Past its time, the list is refreshed in the background: the request does not wait
    # for it (it may or may not be answered by the new first, depending on who is first).
    assert await post(short_lived, "/v1/chat/completions", {"messages": HELLO}) == 200
    await wait_until(lambda: listings(server) == 2, within=5)  # no client asked /v1/models
    for _ in range(500):  # the refresh lands a moment after the upstream answered it
        if (await get(short_lived, "/health"))[1]["model"] == "mistral-7b":
            break
        await asyncio.sleep(0.01)
    assert await post(short_lived, "/v1/chat/completions", {"messages": HELLO}) == 200
    assert [c["model"] for c in chats(server)][-1] == "mistral-7b"


async def test_a_configured_model_is_the_only_one_and_nothing_is_asked(
    server: ScriptedServer, upstream: Upstream
) -> None:
    settings = fronting(server.url("/v1"), model="pinned", preload=True)
    with live_gateway(settings) as gateway:
        assert ids((await get(gateway, "/v1/models"))[1]) == ["pinned"]
        assert ids((await get(gateway, "/v1/models", **ANTHROPIC))[1]) == ["pinned"]
        assert (await get(gateway, "/v1/models/pinned"))[0] == 200
        assert (await get(gateway, "/v1/models/qwen-7b"))[0] == 404
        assert await post(gateway, "/v1/chat/completions", {"messages": HELLO}) == 200
    assert listings(server) == 0
    assert [c["model"] for c in chats(server)] == ["pinned"]


# When the upstream cannot tell ---------------------------------------------------------------


async def test_an_unreachable_upstream_lists_the_served_name_not_a_500(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = fronting(f"http://127.0.0.1:{closed_port}/v1", preload=True)
    with (
        caplog.at_level(logging.WARNING, logger="codelinkava.server"),
        live_gateway(settings) as gateway,
    ):
        status, listing = await get(gateway, "/v1/models")
        status_anthropic, page = await get(gateway, "/v1/models", **ANTHROPIC)
    assert (status, ids(listing)) == (200, ["gpt-3.5-turbo"])
    assert (status_anthropic, ids(page)) == (200, ["gpt-3.5-turbo"])
    warnings = [r.getMessage() for r in caplog.records if "could not list" in r.getMessage()]
    assert warnings and "ProviderConnectionError" in warnings[0]


async def test_an_upstream_that_fails_later_keeps_the_last_good_list(
    short_lived: LiveGateway, server: ScriptedServer, upstream: Upstream
) -> None:
    upstream.status = 503
    await asyncio.sleep(TTL + 0.05)
    status, listing = await get(short_lived, "/v1/models")
    assert (status, ids(listing)) == (200, list(LISTED))
    assert listings(server) == 2  # it did ask, and the failure did not reach the client
    upstream.status = 200
    upstream.names = ["back"]
    await asyncio.sleep(TTL + 0.05)
    assert ids((await get(short_lived, "/v1/models"))[1]) == ["back"]


async def test_an_upstream_that_answers_no_list_falls_back(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("I am a chat endpoint only")]))  # every path: an SSE answer
    with live_gateway(fronting(server.url("/v1"), preload=True)) as gateway:
        assert ids((await get(gateway, "/v1/models"))[1]) == ["gpt-3.5-turbo"]


# Anthropic's shape -----------------------------------------------------------------------------


def anthropic_model(name: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": "1970-01-01T00:00:00Z",
        "lifecycle": "active",
    }


async def test_the_anthropic_version_header_gets_anthropics_page(gateway: LiveGateway) -> None:
    status, page = await get(gateway, "/v1/models", **ANTHROPIC)
    assert status == 200
    assert page == {
        "data": [anthropic_model(n) for n in LISTED],
        "has_more": False,
        "first_id": "qwen-7b",
        "last_id": "tiny",
    }


@pytest.mark.parametrize(
    ("query", "listed", "has_more"),
    [
        pytest.param("?limit=2", ["qwen-7b", "org/llama-3-8b"], True, id="first-page"),
        pytest.param("?limit=2&after_id=org/llama-3-8b", ["tiny"], False, id="after"),
        pytest.param("?limit=1&before_id=tiny", ["org/llama-3-8b"], True, id="before"),
        pytest.param("?limit=5&before_id=org/llama-3-8b", ["qwen-7b"], False, id="before-all"),
        pytest.param("?lifecycle[]=retired", [], False, id="only-retired"),
        pytest.param("?lifecycle[]=active&lifecycle[]=retired", list(LISTED), False, id="active"),
    ],
)
async def test_anthropics_pages_and_filter(
    gateway: LiveGateway, query: str, listed: list[str], has_more: bool
) -> None:
    status, page = await get(gateway, "/v1/models" + query, **ANTHROPIC)
    assert status == 200
    assert (ids(page), page["has_more"]) == (listed, has_more)
    assert (page["first_id"], page["last_id"]) == (
        (listed[0], listed[-1]) if listed else (None, None)
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        pytest.param("?limit=0", "limit", id="limit-0"),
        pytest.param("?limit=1001", "limit", id="limit-1001"),
        pytest.param("?limit=ten", "limit", id="limit-not-a-number"),
        pytest.param("?after_id=nope", "after_id", id="unknown-after"),
        pytest.param("?before_id=nope", "before_id", id="unknown-before"),
        pytest.param("?after_id=tiny&before_id=tiny", "after_id", id="both-cursors"),
        pytest.param("?lifecycle[]=beta", "lifecycle", id="unknown-lifecycle"),
    ],
)
async def test_a_bad_anthropic_query_is_a_400_naming_it(
    gateway: LiveGateway, query: str, named: str
) -> None:
    status, body = await get(gateway, "/v1/models" + query, **ANTHROPIC)
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert named in body["error"]["message"]


# One model ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["org/llama-3-8b", "org%2Fllama-3-8b"], ids=["slash", "encoded"])
async def test_one_model_in_either_shape(gateway: LiveGateway, path: str) -> None:
    status, model = await get(gateway, f"/v1/models/{path}")
    assert status == 200
    assert model == {
        "id": "org/llama-3-8b",
        "object": "model",
        "created": 0,
        "owned_by": "codelinkava",
    }
    status, model = await get(gateway, f"/v1/models/{path}", **ANTHROPIC)
    assert (status, model) == (200, anthropic_model("org/llama-3-8b"))


async def test_an_unknown_model_is_a_404_in_either_shape(gateway: LiveGateway) -> None:
    status, body = await get(gateway, "/v1/models/gpt-3.5-turbo")
    assert status == 404
    assert body["error"]["code"] == "model_not_found" and body["error"]["param"] == "model"
    assert "gpt-3.5-turbo" in body["error"]["message"]
    status, body = await get(gateway, "/v1/models/gpt-3.5-turbo", **ANTHROPIC)
    assert status == 404
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "gpt-3.5-turbo" in body["error"]["message"]


# The real SDKs -----------------------------------------------------------------------------------


@pytest.fixture
def keyed(server: ScriptedServer, upstream: Upstream) -> Iterator[LiveGateway]:
    settings = fronting(server.url("/v1"), api_key="sesame", preload=True)
    with live_gateway(settings) as running:
        yield running


async def test_the_openai_sdk_lists_and_retrieves(keyed: LiveGateway) -> None:
    async with openai.AsyncOpenAI(
        base_url=keyed.url + "/v1", api_key="sesame", max_retries=0
    ) as client:
        assert [m.id async for m in client.models.list()] == list(LISTED)
        model = await client.models.retrieve("org/llama-3-8b")  # sent as org%2Fllama-3-8b
        assert (model.id, model.object) == ("org/llama-3-8b", "model")
        with pytest.raises(openai.NotFoundError) as caught:
            await client.models.retrieve("gpt-3.5-turbo")
        assert caught.value.code == "model_not_found"


async def test_the_anthropic_sdk_lists_page_by_page_and_retrieves(keyed: LiveGateway) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=keyed.url, api_key="sesame", max_retries=0
    ) as client:  # the key as x-api-key, and anthropic-version on every request
        assert [m.id async for m in client.models.list()] == list(LISTED)
        # One per page: the SDK follows has_more and last_id through all three.
        assert [m.id async for m in client.models.list(limit=1)] == list(LISTED)
        model = await client.models.retrieve("tiny")
        assert (model.id, model.type, model.display_name) == ("tiny", "model", "tiny")
        assert model.created_at.year == 1970
        with pytest.raises(anthropic.NotFoundError):
            await client.models.retrieve("claude-3-opus")
    async with anthropic.AsyncAnthropic(
        base_url=keyed.url, api_key="wrong", max_retries=0
    ) as client:
        with pytest.raises(anthropic.AuthenticationError):
            await client.models.list()
