"""The `anthropic` SDK against `codelinkava serve` on the real local model: three short calls.

The model is small: the tests check that real tokens come back in Anthropic's
shape (a message, a stream of text deltas, a grammar-forced tool call whose
input is the tool's JSON), not what they say.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from support.anthropic_sdk import anthropic_client, close_anthropic_clients

from .conftest import MODEL, Gateway

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_anthropic_clients()


CITY_TOOL = {
    "name": "find_city",
    "description": "Look a city up by name.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
    },
}


def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic_client(gateway.url, timeout=60)


def test_create_on_the_local_model(gateway: Gateway) -> None:
    message = client(gateway).messages.create(model=MODEL, max_tokens=8, messages=QUESTION)
    assert message.model == MODEL and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    # llama.cpp's own counts
    assert message.usage.input_tokens > 5 and 1 <= message.usage.output_tokens <= 8


def test_stream_on_the_local_model(gateway: Gateway) -> None:
    with client(gateway).messages.stream(
        model=MODEL, max_tokens=8, system="Answer in one word.", messages=QUESTION
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 2 and "".join(pieces).strip()
    assert final.content[0].text == "".join(pieces)  # type: ignore[union-attr]
    assert final.usage.output_tokens == len(pieces) or final.stop_reason == "max_tokens"


def test_a_forced_tool_call_on_the_local_model(gateway: Gateway) -> None:
    with client(gateway).messages.stream(
        model=MODEL,
        max_tokens=48,
        messages=[{"role": "user", "content": "Find Paris."}],
        tools=[CITY_TOOL],
        tool_choice={"type": "tool", "name": "find_city"},
    ) as stream:
        final = stream.get_final_message()
    (use,) = final.content
    assert use.type == "tool_use" and use.name == "find_city"
    assert use.id.startswith("toolu_")
    assert isinstance(use.input, dict) and isinstance(use.input.get("city"), str)
    assert final.stop_reason == "tool_use"
