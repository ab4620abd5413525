"""`/v1/messages` in front of a provider that speaks Anthropic's Messages itself.

The provider here is a tiny one written against the public seam: it sets
`relays_anthropic_events`, records what it was asked, and yields one chunk per
SSE event of a recorded Anthropic stream (`data` the event's JSON, `raw` its
exact text), or one chunk whose `data` is the whole `message`. The gateway must
relay those bytes as they are, and forward Anthropic's own fields (`thinking`,
`cache_control`, `anthropic-beta`) instead of refusing them.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncGenerator, Iterator
from typing import Any, ClassVar

import pytest

from codelinkava.chunk import ChatChunk
from codelinkava.providers import AsyncGeneratorProvider
from codelinkava.server import GatewaySettings
from codelinkava.server.backend import SingleProvider
from support.anthropic_sdk import anthropic_client, close_anthropic_clients
from support.live_gateway import LiveGateway, live_gateway

#: A stream as Anthropic sends one (its spacing, its keys, a thinking block, a ping).
EVENTS = [
    '{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message",'
    '"role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,'
    '"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,'
    '"cache_read_input_tokens":2048,"output_tokens":2}}}',
    '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}',
    '{"type": "ping"}',
    '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Easy."}}',
    '{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}',
    '{"type":"content_block_stop","index":0}',
    '{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
    '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Paris, "}}',
    '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"of course."}}',
    '{"type":"content_block_stop","index":1}',
    '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    '"usage":{"output_tokens":15}}',
    '{"type":"message_stop"}',
]
WHOLE = (
    '{"id":"msg_01Whole","type":"message","role":"assistant","model":"claude-sonnet-4-5",'
    '"content":[{"type":"text","text":"Paris."}],"stop_reason":"end_turn","stop_sequence":null,'
    '"usage":{"input_tokens":12,"output_tokens":3}}'
)


def _chunk(raw: str) -> ChatChunk:
    data = json.loads(raw)
    text = (data.get("delta") or {}).get("text")
    usage = None
    if data["type"] == "message_start":
        usage = {"prompt_tokens": 472 + 2048, "completion_tokens": 2}
    return ChatChunk(content=text, usage=usage, data=data, raw=raw)


class NativeMessages(AsyncGeneratorProvider):
    """Speaks Messages itself: its chunks are the upstream's own events."""

    working: ClassVar[bool] = True
    relays_anthropic_events: ClassVar[bool] = True
    asked: ClassVar[list[tuple[list[dict[str, Any]], dict[str, Any]]]] = []

    @classmethod
    async def create_async_chunk_batches(
        cls, model: str, messages: Any, **kwargs: Any
    ) -> AsyncGenerator[list[ChatChunk], None]:
        cls.asked.append((messages, kwargs))
        if not kwargs.get("stream"):
            yield [ChatChunk(content="Paris.", data=json.loads(WHOLE), raw=WHOLE)]
            return
        for at in range(0, len(EVENTS), 3):  # three events a network read
            yield [_chunk(raw) for raw in EVENTS[at : at + 3]]


@pytest.fixture(scope="module")
def gateway() -> Iterator[LiveGateway]:
    backend = SingleProvider(NativeMessages, {}, "claude-sonnet-4-5", preload=False)
    with live_gateway(GatewaySettings(api_key=None), backend) as running:
        yield running


@pytest.fixture(autouse=True)
def _forget() -> None:
    NativeMessages.asked.clear()


def post(gateway: LiveGateway, body: dict[str, Any], **headers: str) -> bytes:
    request = urllib.request.Request(
        gateway.url + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        data: bytes = response.read()
        return data


QUESTION = [{"role": "user", "content": "Capital of France?"}]


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_anthropic_clients()


def test_the_upstreams_events_are_relayed_byte_for_byte(gateway: LiveGateway) -> None:
    data = post(gateway, {"model": "", "max_tokens": 64, "stream": True, "messages": QUESTION})
    expected = "".join(f"event: {json.loads(raw)['type']}\ndata: {raw}\n\n" for raw in EVENTS)
    assert data.decode() == expected


def test_a_whole_answer_is_the_upstreams_own(gateway: LiveGateway) -> None:
    data = post(gateway, {"model": "", "max_tokens": 64, "messages": QUESTION})
    assert data.decode() == WHOLE


def test_the_sdk_reads_the_relayed_stream(gateway: LiveGateway) -> None:
    sdk = anthropic_client(gateway.url)
    with sdk.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=QUESTION) as stream:
        assert "".join(stream.text_stream) == "Paris, of course."
        final = stream.get_final_message()
    assert final.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.usage.cache_read_input_tokens == 2048 and final.usage.output_tokens == 15


def test_anthropics_own_fields_reach_it(gateway: LiveGateway) -> None:
    cached = {"type": "text", "text": "A long document.", "cache_control": {"type": "ephemeral"}}
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "stream": True,
        "system": [cached],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": [cached]}],
    }
    post(gateway, body, **{"anthropic-beta": "interleaved-thinking-2025-05-14, context-1m"})
    ((messages, fields),) = NativeMessages.asked
    assert fields["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert fields["anthropic_beta"] == ["interleaved-thinking-2025-05-14", "context-1m"]
    assert "stream_options" not in fields  # OpenAI's, not the upstream's
    assert messages == [
        {"role": "system", "content": [cached]},
        {"role": "user", "content": [cached]},
    ]


class CountingBackend(SingleProvider):
    """A backend that counts tokens itself (as one with a tokenizer would)."""

    async def count_tokens(
        self, model: str, messages: list[dict[str, Any]], fields: dict[str, Any]
    ) -> int | None:
        return None if model == "uncountable" else 1000 + len(messages) + len(fields)


def test_count_tokens_uses_the_backends_own_count_where_it_has_one() -> None:
    backend = CountingBackend(NativeMessages, {}, "claude-sonnet-4-5", preload=False)
    with live_gateway(GatewaySettings(api_key=None), backend) as gateway:
        sdk = anthropic_client(gateway.url)
        counted = sdk.messages.count_tokens(
            model="claude-sonnet-4-5", system="Be brief.", messages=QUESTION
        )
        assert counted.input_tokens == 1002
        raw = sdk.messages.with_raw_response.count_tokens(model="uncountable", messages=QUESTION)
        assert raw.headers["x-codelinkava-token-count"] == "estimate"
        assert raw.parse().input_tokens == len(QUESTION[0]["content"]) // 4
