"""The gateway fuzzed through its own OpenAPI schema (schemathesis), valid and invalid inputs.

Each generated request goes to a live gateway in front of a fast scripted
upstream. It must never answer 5xx (a 502/504 would mean our upstream broke,
and it does not), every error must be in the documented shape
`{"error": {"message", "type", "code"}}`, and every 200 must be a complete
answer: a JSON `chat.completion`, or an event stream ending in `[DONE]`.
Under `/v1/messages` (Anthropic's Messages, and its `count_tokens`) the same in
Anthropic's terms: errors as `{"type": "error", "error": {"type", "message"}}`,
a whole `message`, or an event stream that ends with `message_stop`. For
`/v1/responses`: a JSON Response, or an event stream of numbered events ending
in `response.completed` (and `GET`/`DELETE /v1/responses/{id}` a stored
response or a 404).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from codelinkava.server import GatewaySettings, create_app
from support.live_gateway import LiveGateway, live_gateway
from support.scripted import Reply, ScriptedServer, sse

from .conftest import gateway_settings
from .support import assert_error_shape

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.generation import GenerationMode  # noqa: E402

EXAMPLES = 150  # per operation and mode; 9 operations x 2 modes


def _schema() -> Any:
    app = create_app(
        GatewaySettings(
            provider="openai", provider_options={"base_url": "http://127.0.0.1:9/v1"}, api_key=None
        )
    )
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
    )
    return schema


schema = _schema()
seen: dict[int, int] = {}  # status -> answers, for the report


@pytest.fixture(scope="module", autouse=True)
def _report_statuses() -> Iterator[None]:
    yield
    print(f"\nschemathesis: {sum(seen.values())} requests, statuses {dict(sorted(seen.items()))}")


@pytest.fixture(scope="module")
def schema_gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    upstream.reply(Reply(body=[sse("fuzzed", " answer", finish=True)]))
    with live_gateway(gateway_settings(upstream.url("/v1"))) as running:
        yield running


def header(response: Any, name: str) -> str:
    """A header of schemathesis's Response (its headers map names to lists of values)."""
    for key, values in response.headers.items():
        if key.lower() == name:
            return str(values[0] if isinstance(values, list) else values)
    return ""


def map_body(ctx: Any, body: Any) -> Any:
    """Most generated Responses bodies leave out `input` (optional: a continuation may
    have none) and are refused as empty; one is added, so answers are fuzzed too."""
    operation = ctx.operation
    if operation is not None and operation.path == "/v1/responses" and isinstance(body, dict):
        body.setdefault("input", "Hello")
    return body


@schema.hooks.apply(map_body)
@schema.parametrize()
def test_no_5xx_and_every_error_in_the_documented_shape(
    case: Any, schema_gateway: LiveGateway, upstream: ScriptedServer
) -> None:
    upstream.reply(Reply(body=[sse("fuzzed", " answer", finish=True)]))
    response = case.call(base_url=schema_gateway.url, timeout=10)
    status = response.status_code
    content_type = header(response, "content-type")
    seen[status] = seen.get(status, 0) + 1
    assert status < 500, (case.method, case.path, case.body, response.text[:500])
    if case.path.startswith("/v1/messages"):
        check_messages_answer(case.path, status, content_type, response.text)
        return
    if status >= 400:
        assert content_type.startswith("application/json"), response.text
        assert_error_shape(response.json())
    elif case.path.startswith("/v1/responses"):
        check_responses_answer(case, response, content_type)
    elif content_type.startswith("text/event-stream"):
        events = [
            line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")
        ]
        assert events[-1] == "[DONE]", response.text
        for data in events[:-1]:
            assert "error" not in json.loads(data), response.text
    elif case.path in ("/v1/chat/completions", "/api/chat"):
        body = response.json()
        assert body["object"] == "chat.completion", body
        assert body["choices"][0]["message"]["content"] == "fuzzed answer"


def check_messages_answer(path: str, status: int, content_type: str, text: str) -> None:
    """Anthropic's shapes: the error, the count, the whole message, the event stream."""
    if status >= 400:
        assert content_type.startswith("application/json"), text
        body = json.loads(text)
        assert set(body) == {"type", "error", "request_id"} and body["type"] == "error", body
        error = body["error"]
        assert isinstance(error["type"], str) and error["type"].endswith(("_error", "_large"))
        assert isinstance(error["message"], str) and error["message"], body
    elif path.endswith("/count_tokens"):
        count = json.loads(text)["input_tokens"]
        assert isinstance(count, int) and count >= 0, text
    elif content_type.startswith("text/event-stream"):
        names = [line[6:].strip() for line in text.splitlines() if line.startswith("event:")]
        assert names[:2] == ["message_start", "ping"] and names[-1] == "message_stop", text
        assert "error" not in names, text
    else:
        body = json.loads(text)
        assert body["type"] == "message" and body["role"] == "assistant", body
        assert body["content"] == [{"type": "text", "text": "fuzzed answer"}], body


def check_responses_answer(case: Any, response: Any, content_type: str) -> None:
    """A 200 of the Responses routes: a whole Response, its deletion, or its events in order."""
    if not content_type.startswith("text/event-stream"):
        body = response.json()
        assert body["object"] == "response" and body["id"].startswith("resp_"), body
        if case.method == "POST":
            assert body["status"] == "completed", body
            assert body["output"][0]["content"][0]["text"] == "fuzzed answer", body
        return
    events = []
    for block in response.text.split("\n\n")[:-1]:
        head, data = block.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert head == f"event: {event['type']}", block
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events))), response.text
    assert events[-1]["type"] == "response.completed", response.text
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "fuzzed answer"
