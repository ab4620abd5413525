"""`OpenAICompatible.list_models`: GET {base_url}/models against a real server."""

from __future__ import annotations

import json

import pytest

from codelinkava import OpenAICompatible, errors
from support.scripted import Reply, ScriptedServer

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
