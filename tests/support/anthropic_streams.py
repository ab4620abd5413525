"""Anthropic Messages answers as Anthropic sends them, for the decoder, provider and router tests.

`TEXT_STREAM`, `TOOL_STREAM` and `THINKING_STREAM` are the event streams of
Anthropic's streaming documentation (https://docs.anthropic.com/en/api/messages-streaming:
"Basic streaming request", "Streaming request with tool use", "Streaming
request with extended thinking"), in their documented order, shapes and
spacing (the model name updated, the thinking text shortened); `error_event`
is its documented `event: error`.
"""

from __future__ import annotations

import json
from typing import Any

from support.scripted import Reply

TEXT_STREAM = (
    b"event: message_start\n"
    b'data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",'
    b' "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-6",'
    b' "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25,'
    b' "output_tokens": 1}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text",'
    b' "text": ""}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",'
    b' "text": "Hello"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",'
    b' "text": "!"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type": "content_block_stop", "index": 0}\n\n'
    b"event: message_delta\n"
    b'data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null},'
    b' "usage": {"output_tokens": 15}}\n\n'
    b"event: message_stop\n"
    b'data: {"type": "message_stop"}\n\n'
)
TEXT_EVENTS = (
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
)

_TOOL_EVENTS = [
    (
        "message_start",
        '{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message",'
        '"role":"assistant","model":"claude-opus-4-6","stop_sequence":null,"usage":'
        '{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}',
    ),
    (
        "content_block_start",
        '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    ),
    ("ping", '{"type": "ping"}'),
    *(
        (
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
            + json.dumps(text)
            + "}}",
        )
        for text in (
            "Okay",
            ",",
            " let",
            "'s",
            " check",
            " the",
            " weather",
            " for",
            " San",
            " Francisco",
            ",",
            " CA",
            ":",
        )
    ),
    ("content_block_stop", '{"type":"content_block_stop","index":0}'),
    (
        "content_block_start",
        '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use",'
        '"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}',
    ),
    *(
        (
            "content_block_delta",
            '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
            '"partial_json":' + json.dumps(part) + "}}",
        )
        for part in (
            "",
            '{"location":',
            ' "San',
            " Francisc",
            "o,",
            ' CA"',
            ", ",
            '"unit": "fah',
            'renheit"}',
        )
    ),
    ("content_block_stop", '{"type":"content_block_stop","index":1}'),
    (
        "message_delta",
        '{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
        '"usage":{"output_tokens":89}}',
    ),
    ("message_stop", '{"type":"message_stop"}'),
]
TOOL_STREAM = b"".join(f"event: {name}\ndata: {data}\n\n".encode() for name, data in _TOOL_EVENTS)
TOOL_TEXT = "Okay, let's check the weather for San Francisco, CA:"
TOOL_ARGUMENTS = '{"location": "San Francisco, CA", "unit": "fahrenheit"}'
TOOL_ID = "toolu_01T1x1fJ34qAmk2tNTrN7Up6"

THINKING_STREAM = (
    "event: message_start\n"
    'data: {"type": "message_start", "message": {"id": "msg_01abc", "type": "message",'
    ' "role": "assistant", "content": [], "model": "claude-opus-4-6", "stop_reason": null,'
    ' "stop_sequence": null}}\n\n'
    "event: content_block_start\n"
    'data: {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking",'
    ' "thinking": ""}}\n\n'
    "event: content_block_delta\n"
    'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta",'
    ' "thinking": "I need to find the GCD of 1071 and 462.\\n\\n1071 = 2 × 462 + 147"}}\n\n'
    "event: content_block_delta\n"
    'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta",'
    ' "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}\n\n'
    "event: content_block_stop\n"
    'data: {"type": "content_block_stop", "index": 0}\n\n'
    "event: content_block_start\n"
    'data: {"type": "content_block_start", "index": 1, "content_block": {"type": "text",'
    ' "text": ""}}\n\n'
    "event: content_block_delta\n"
    'data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta",'
    ' "text": "The greatest common divisor (GCD) of 1071 and 462 is **21**."}}\n\n'
    "event: content_block_stop\n"
    'data: {"type": "content_block_stop", "index": 1}\n\n'
    "event: message_delta\n"
    'data: {"type": "message_delta", "delta": {"stop_reason": "end_turn",'
    ' "stop_sequence": null}}\n\n'
    "event: message_stop\n"
    'data: {"type": "message_stop"}\n\n'
).encode()

MESSAGES_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


def error_event(kind: str = "overloaded_error", message: str = "Overloaded") -> bytes:
    """Anthropic's in-stream error, as documented."""
    payload = {"type": "error", "error": {"type": kind, "message": message}}
    return f"event: error\ndata: {json.dumps(payload)}\n\n".encode()


def error_body(kind: str, message: str) -> bytes:
    """Anthropic's error answer: `{"type": "error", "error": {"type", "message"}}`."""
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def status(code: int, kind: str, message: str, **headers: str) -> Reply:
    """A non-2xx answer in Anthropic's shape."""
    return Reply(
        status=code,
        headers={"Content-Type": "application/json", **headers},
        body=[error_body(kind, message)],
    )


def stream(*steps: Any, delay: float = 0.0) -> Reply:
    """A 200 event-stream answer made of these body steps."""
    return Reply(headers=MESSAGES_HEADERS, body=list(steps), delay=delay)


WHOLE_TOOL_MESSAGE = {
    "id": "msg_01Aq9w938a90dw8q",
    "type": "message",
    "role": "assistant",
    "model": "claude-opus-4-6",
    "content": [
        {"type": "text", "text": "I'll check the current weather in San Francisco for you."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "celsius"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 472, "output_tokens": 65},
}
