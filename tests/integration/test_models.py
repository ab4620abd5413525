"""`OpenAICompatible.list_models` and the `served_models` hook: GET {base_url}/models against
a real server (the gateway's side of it: test_gateway_models.py)."""

from __future__ import annotations

import json
import time

import pytest

from codelinkava import CodeLinkAva, LocalModel, OpenAICompatible, errors
from support.scripted import Reply, ScriptedServer, Stall

JSON = {"Content-Type": "application/json"}


async def test_lists_model_ids_with_the_key(server: ScriptedServer) -> None:
    listing = {"object": "list", "data": [{"id": "a", "object": "model"}, {"id": "b"}, {"x": 1}]}
    server.reply(Reply(headers=JSON, body=[json.dumps(listing).encode()]))
    base = server.url("/v1")
    assert await OpenAICompatible.list_models(base_url=base, api_key="k") == ["a", "b"]
    request = server.requests[0]
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["Authorization"] == "Bearer k"


async def test_error_status_is_typed(server: ScriptedServer) -> None:
    body = json.dumps({"error": {"message": "bad key"}}).encode()
    server.reply(Reply(status=401, headers=JSON, body=[body]))
    with pytest.raises(errors.AuthenticationError, match="bad key"):
        await OpenAICompatible.list_models(base_url=server.url("/v1"))


async def test_not_a_model_list_is_a_stream_error(server: ScriptedServer) -> None:
    server.reply(Reply(headers=JSON, body=[b'{"object": "list"}']))
    with pytest.raises(errors.StreamError, match="model list"):
        await OpenAICompatible.list_models(base_url=server.url("/v1"))


# served_models: the hook the gateway's /v1/models and default model are built on ----------


def model_list(*names: str) -> Reply:
    listing = {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}
    return Reply(headers=JSON, body=[json.dumps(listing).encode()])


async def test_served_models_asks_with_the_set_up_options(server: ScriptedServer) -> None:
    server.reply(model_list("qwen", "llama"))
    options = {"base_url": server.url("/v1"), "api_key": "k", "headers": {"X-Team": "blue"}}
    assert await OpenAICompatible.served_models(options) == ["qwen", "llama"]
    (request,) = server.requests
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["Authorization"] == "Bearer k"
    assert request.headers["X-Team"] == "blue"
    assert request.headers["Accept"] == "application/json"


async def test_served_models_puts_the_default_first_when_listed(server: ScriptedServer) -> None:
    server.reply(model_list("gpt-4o", "gpt-3.5-turbo", "o1"))
    listed = await OpenAICompatible.served_models({"base_url": server.url("/v1")})
    assert listed == ["gpt-3.5-turbo", "gpt-4o", "o1"]


async def test_served_models_is_short_and_not_retried(server: ScriptedServer) -> None:
    server.reply(Reply(before=[Stall()]))  # no status line, ever
    options = {"base_url": server.url("/v1"), "timeout": 0.2, "max_retries": 5}
    started = time.monotonic()
    with pytest.raises(errors.ProviderTimeoutError):
        await OpenAICompatible.served_models(options)
    assert time.monotonic() - started < 2
    assert len(server.requests) == 1


async def test_served_models_of_an_unreachable_server_is_typed(closed_port: int) -> None:
    with pytest.raises(errors.ProviderConnectionError):
        await OpenAICompatible.served_models({"base_url": f"http://127.0.0.1:{closed_port}/v1"})


async def test_pick_model_is_the_first_served(server: ScriptedServer) -> None:
    server.reply(model_list("qwen", "llama"))
    assert await OpenAICompatible.pick_model({"base_url": server.url("/v1")}) == "qwen"


async def test_providers_with_their_own_names_list_them_without_io() -> None:
    assert await CodeLinkAva.served_models({"api_url": "http://127.0.0.1:9/api/chat"}) == [
        "gpt-3.5-turbo"
    ]
    assert await LocalModel.served_models({"model_path": "/nowhere/tiny-chat.gguf"}) == [
        "tiny-chat"
    ]
