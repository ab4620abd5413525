"""The Responses encoder (`server/responses/encoder.py`) byte by byte, with no server.

Typed chunks go in as a provider yields them; the SSE bytes that come out are
read back as events and checked against OpenAI's documented order, the
`sequence_number` of each (0, 1, 2, ... with no gap), the `event:` line naming
the data's `type`, and openai-python's own models for every event and for the
final Response (validated, not merely constructed).
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from codelinkava import errors
from codelinkava.chunk import AnswerBuilder, ChatChunk, ToolCallDelta
from codelinkava.server.responses.encoder import ResponsesEncoder
from codelinkava.server.responses.store import MemoryStore
from codelinkava.server.responses.translate import translate_responses
from codelinkava.server.responses.wire import ResponsesRequest

EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 3,
    "total_tokens": 14,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 1},
}
TEXT_ORDER = [
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def encoder(store: MemoryStore | None = None, **body: Any) -> ResponsesEncoder:
    request = ResponsesRequest.model_validate({"model": "m", "input": "Hi", **body})
    return ResponsesEncoder("m", translate_responses(request), prompt_estimate=2, store=store)


def events(data: bytes) -> list[dict[str, Any]]:
    """The stream's events, each checked: its `event:` line names its type, and the SDK's
    own model of that event type validates it."""
    out = []
    text = data.decode()
    assert text.endswith("\n\n")
    for block in text.split("\n\n")[:-1]:
        head, data_line = block.split("\n")
        assert head.startswith("event: ") and data_line.startswith("data: "), block
        payload = json.loads(data_line.removeprefix("data: "))
        assert payload["type"] == head.removeprefix("event: ")
        EVENTS.validate_python(payload)
        out.append(payload)
    return out


def stream(
    enc: ResponsesEncoder, *batches: list[ChatChunk], error: Exception | None = None
) -> list[dict[str, Any]]:
    body = b"".join(enc.stream_batch(batch) for batch in batches)
    if isinstance(error, errors.ProviderError):
        body += enc.stream_error(error)
    else:
        body += enc.stream_end()
    out = events(body)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


def types(out: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in out]


def test_a_text_answer_in_the_documented_order_with_usage_mapped_field_by_field() -> None:
    enc = encoder()
    out = stream(
        enc,
        [ChatChunk(role="assistant")],
        [ChatChunk(content="Hel"), ChatChunk(content="lo")],
        [ChatChunk(finish_reason="stop"), ChatChunk(usage=USAGE)],
    )
    assert types(out) == [
        "response.created",
        "response.in_progress",
        *TEXT_ORDER,
        "response.completed",
    ]
    created, in_progress = out[0]["response"], out[1]["response"]
    assert created == in_progress and created["status"] == "in_progress" and created["output"] == []
    message_id = out[2]["item"]["id"]
    assert message_id.startswith("msg_") and out[2]["item"]["status"] == "in_progress"
    assert [e["delta"] for e in out[4:6]] == ["Hel", "lo"]
    for event in out[3:9]:
        assert event["output_index"] == 0
        assert event.get("item_id", message_id) == message_id
    assert out[6]["text"] == "Hello" and out[7]["part"]["text"] == "Hello"
    final = out[-1]["response"]
    Response.model_validate(final)
    assert final["id"] == created["id"] and final["id"].startswith("resp_")
    assert final["status"] == "completed" and final["incomplete_details"] is None
    assert final["output"] == [out[8]["item"]]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"] == {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 14,
    }
    assert enc.pieces == 2 and enc.usage == USAGE


def test_the_fast_path_writes_what_json_would() -> None:
    enc = encoder()
    first = events(enc.stream_batch([ChatChunk(content="a")]))
    fast = enc.stream_batch([ChatChunk(content='quote " slash \\ new\nline é 😀 \x01')])
    (delta,) = events(fast)
    assert delta == {
        "type": "response.output_text.delta",
        "sequence_number": len(first),
        "item_id": first[2]["item"]["id"],
        "output_index": 0,
        "content_index": 0,
        "delta": 'quote " slash \\ new\nline é 😀 \x01',
        "logprobs": [],
    }


def test_tool_calls_each_an_item_after_the_text_closes() -> None:
    out = stream(
        encoder(),
        [ChatChunk(content="Let me check.")],
        [
            ChatChunk(
                tool_calls=[
                    ToolCallDelta(0, id="call_a", type="function", name="weather", arguments="")
                ]
            )
        ],
        [ChatChunk(tool_calls=[ToolCallDelta(0, arguments='{"city":')])],
        [ChatChunk(tool_calls=[ToolCallDelta(0, arguments='"Oslo"}')])],
        [ChatChunk(tool_calls=[ToolCallDelta(1, id="call_b", name="time", arguments="{}")])],
        [ChatChunk(finish_reason="tool_calls")],
    )
    assert types(out) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = out[8]["item"]
    assert added["type"] == "function_call" and added["call_id"] == "call_a"
    assert added["name"] == "weather" and added["arguments"] == "" and out[8]["output_index"] == 1
    assert out[11]["arguments"] == '{"city":"Oslo"}' and out[11]["item_id"] == added["id"]
    assert out[13]["output_index"] == 2
    final = out[-1]["response"]
    Response.model_validate(final)
    assert [item["type"] for item in final["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]
    assert final["output"][1] == {**added, "arguments": '{"city":"Oslo"}', "status": "completed"}
    assert final["status"] == "completed"


def test_max_output_tokens_makes_an_incomplete_response() -> None:
    out = stream(
        encoder(max_output_tokens=2),
        [ChatChunk(content="cut")],
        [ChatChunk(finish_reason="length")],
    )
    assert types(out)[-1] == "response.incomplete"
    final = out[-1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete" and final["max_output_tokens"] == 2


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(errors.StreamTruncatedError("cut off"), "server_error", id="truncated"),
        pytest.param(errors.RateLimitError("slow down"), "rate_limit_exceeded", id="rate-limited"),
    ],
)
def test_a_failure_after_the_start_is_a_failed_response(
    error: errors.ProviderError, code: str
) -> None:
    out = stream(encoder(), [ChatChunk(content="par")], error=error)
    assert types(out)[-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    assert out[-2]["item"]["status"] == "incomplete"
    final = out[-1]["response"]
    Response.model_validate(final)
    assert final["status"] == "failed" and final["error"]["code"] == code
    assert final["error"]["message"]
    assert final["output"][0]["content"][0]["text"] == "par"


def test_a_refusal_is_a_part_of_its_own() -> None:
    out = stream(encoder(), [ChatChunk(refusal="I can")], [ChatChunk(refusal="not.")])
    assert types(out)[2:-1] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert out[6]["refusal"] == "I cannot."
    assert out[-1]["response"]["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I cannot."}
    ]


def test_logprobs_ride_on_their_deltas() -> None:
    entry = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    out = stream(
        encoder(),
        [ChatChunk(content="Hi", logprobs={"content": [entry]})],
        [ChatChunk(content="!")],
    )
    deltas = [e for e in out if e["type"] == "response.output_text.delta"]
    assert deltas[0]["logprobs"] == [entry] and deltas[1]["logprobs"] == []
    assert out[-1]["response"]["output"][0]["content"][0]["logprobs"] == [entry]


def test_an_empty_answer_still_opens_and_completes() -> None:
    out = stream(encoder(), [])
    assert types(out) == ["response.created", "response.in_progress", "response.completed"]
    assert out[-1]["response"]["output"] == []


def test_a_whole_answer_is_the_response_object() -> None:
    enc = encoder(temperature=0.5, metadata={"k": "v"})
    answer = AnswerBuilder()
    answer.extend(
        [
            ChatChunk(content="Sure."),
            ChatChunk(tool_calls=[ToolCallDelta(0, id="call_1", name="f", arguments='{"a":1}')]),
            ChatChunk(finish_reason="tool_calls", usage=USAGE),
        ]
    )
    body = json.loads(enc.whole(answer, None))
    response = Response.model_validate(body)
    assert response.output_text == "Sure."
    assert body["object"] == "response" and body["status"] == "completed" and body["model"] == "m"
    assert body["temperature"] == 0.5 and body["metadata"] == {"k": "v"}
    assert [item["type"] for item in body["output"]] == ["message", "function_call"]
    assert body["output"][1]["call_id"] == "call_1" and body["output"][1]["arguments"] == '{"a":1}'
    assert body["usage"]["input_tokens"] == 11 and body["completed_at"] is not None


async def test_settle_stores_the_response_and_the_conversation_to_continue() -> None:
    store = MemoryStore()
    enc = encoder(store, instructions="Be brief.")
    enc.stream_batch([ChatChunk(content="Hel"), ChatChunk(content="lo")])
    enc.stream_batch(
        [ChatChunk(tool_calls=[ToolCallDelta(0, id="call_1", name="f", arguments="{}")])]
    )
    final = events(enc.stream_end())[-1]["response"]
    await enc.settle()
    record = await store.get(enc.id)
    assert record is not None and record.response == final
    assert record.messages == [
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": "Hello",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
    ]


def test_a_providers_refusal_names_the_callers_field() -> None:
    refused = errors.InvalidRequestError("cannot honour response_format", param="response_format")
    answer = encoder().error_response(refused)
    body = json.loads(bytes(answer.body))
    assert answer.status_code == 400 and body["error"]["param"] == "text.format"
    assert "text.format" in body["error"]["message"]
