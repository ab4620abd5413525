"""`anthropic/<model>` in the config file: the Anthropic provider as a routed deployment."""

from __future__ import annotations

import json

import pytest

from codelinkava.providers import Anthropic, OpenAICompatible
from codelinkava.routing import ConfigError, parse_config
from support.anthropic_streams import TEXT_STREAM, error_event, stream
from support.scripted import Reply, ScriptedServer, sse

from .support import FIRST, Upstreams, ask

OPENING = TEXT_STREAM[: TEXT_STREAM.index(b"event: content_block_delta")]


def entry(model_name: str, **params: object) -> dict[str, object]:
    return {"model_name": model_name, "litellm_params": params}


def claude(server: ScriptedServer, **params: object) -> dict[str, object]:
    return entry(
        "claude",
        model="anthropic/claude-haiku-4-5",
        api_base=server.url(""),
        api_key="os.environ/ANT_KEY",
        **params,
    )


def test_anthropic_model_means_the_anthropic_provider_with_that_model() -> None:
    config = parse_config(
        {"model_list": [entry("claude", model="anthropic/claude-haiku-4-5", api_key="sk-a")]},
        environ={},
    )
    [deployment] = config.deployments
    assert deployment.provider is Anthropic
    assert deployment.upstream_model == "claude-haiku-4-5"
    # No api_base: Anthropic's own endpoint, never ANTHROPIC_BASE_URL's.
    assert deployment.options == {
        "base_url": "https://api.anthropic.com",
        "api_key": "sk-a",
        "max_retries": 0,
    }


def test_an_openai_deployment_still_needs_its_api_base() -> None:
    with pytest.raises(ConfigError, match="needs api_base"):
        parse_config({"model_list": [entry("m", model="openai/gpt-4o")]}, environ={})


def test_its_setup_options_other_than_url_and_key_are_not_config_keys() -> None:
    data = {"model_list": [entry("c", model="anthropic/x", anthropic_version="2024-01-01")]}
    with pytest.raises(ConfigError, match="anthropic_version is not supported for anthropic/"):
        parse_config(data, environ={})


async def test_the_router_serves_an_anthropic_deployment(upstreams: Upstreams) -> None:
    [upstream] = upstreams(1)
    upstream.reply(stream(TEXT_STREAM))
    config = parse_config({"model_list": [claude(upstream)]}, environ={"ANT_KEY": "sk-ant"})
    router = config.router()
    assert router.speaks_anthropic("claude")
    answer = await ask(router, "claude")
    assert answer.text == "Hello!" and answer.plan.relays_anthropic_events
    [request] = upstream.requests
    assert request.path == "/v1/messages" and request.headers["x-api-key"] == "sk-ant"
    assert request.json()["model"] == "claude-haiku-4-5"


async def test_overloaded_before_text_fails_over_to_the_next_deployment(
    upstreams: Upstreams,
) -> None:
    anthropic, openai = upstreams(2)
    anthropic.reply(stream(OPENING, error_event("overloaded_error", "Overloaded")))
    openai.reply(Reply(body=[sse("from", " the other")]))
    config = parse_config(
        {
            "model_list": [
                claude(anthropic, weight=FIRST),
                entry("claude", model="openai/m", api_base=openai.url("/v1")),
            ]
        },
        environ={"ANT_KEY": "sk-ant"},
    )
    router = config.router()
    assert not router.speaks_anthropic("claude")  # one of its deployments speaks OpenAI's
    answer = await ask(router, "claude")
    assert answer.text == "from the other"
    assert len(anthropic.requests) == 1 and len(openai.requests) == 1
    assert answer.record.deployment == config.deployments[1].name
    assert config.deployments[1].provider is OpenAICompatible
    assert json.loads(openai.requests[0].body)["model"] == "m"
