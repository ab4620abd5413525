"""The access log: one line per request with timings and token counts, plain or JSON,
never a message's text or a key."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest

from codelinkava.server.access_log import access_fields, format_text
from codelinkava.server.outcome import Outcome
from support.live_gateway import LiveGateway, fronting, live_gateway, wait_until
from support.scripted import Reply, ScriptedServer, chunk, event

ACCESS = "codelinkava.access"
KEY = "sk-gateway-key-do-not-log"
SECRET = "my password is hunter2"
USAGE = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}


def answer_with_usage() -> Reply:
    usage = {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
    body = event(chunk("Hi", role="assistant")) + event(chunk("!")) + event(usage)
    return Reply(body=[body + event("[DONE]")])


async def send(gateway: LiveGateway, said: str, key: str = KEY) -> int:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": said}], "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        await response.read()
        return response.status


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


def parse_text(line: str) -> dict[str, str]:
    """`key=value` pairs; quoted values are JSON strings."""
    fields: dict[str, str] = {}
    rest = line
    while rest:
        name, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, end = json.JSONDecoder().raw_decode(rest)
            rest = rest[end:].lstrip()
        else:
            value, _, rest = rest.partition(" ")
        fields[name] = value
    return fields


@pytest.mark.parametrize("json_lines", [False, True])
async def test_one_line_per_request_with_timings_and_tokens(
    upstream: ScriptedServer, caplog: pytest.LogCaptureFixture, json_lines: bool
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    upstream.reply(answer_with_usage())
    settings = fronting(upstream.url("/v1"), api_key=KEY, access_log_json=json_lines)
    with live_gateway(settings) as gateway:
        assert await send(gateway, SECRET) == 200
        upstream.reply(Reply(status=500, headers={"Content-Type": "text/plain"}, body=[b"no"]))
        assert await send(gateway, SECRET) == 502
        assert await send(gateway, SECRET, key="wrong-key") == 401  # refused before a route
        await wait_until(lambda: len(access_records(caplog)) == 2)
    records = access_records(caplog)
    assert len(records) == 2
    lines = [r.getMessage() for r in records]
    parsed = [json.loads(line) if json_lines else parse_text(line) for line in lines]
    ok, failed = parsed
    text = (lambda v: v) if json_lines else str
    assert ok["route"] == "/v1/chat/completions"
    assert ok["model"] == "gpt-x"
    assert ok["deployment"] == "OpenAICompatible"
    assert ok["status"] == text(200)
    assert ok["prompt_tokens"] == text(11) and ok["completion_tokens"] == text(2)
    assert float(ok["ttft_ms"]) >= 0 and float(ok["duration_ms"]) >= float(ok["ttft_ms"])
    assert ok["attempts"] == text(0)
    assert failed["status"] == text(502) and failed["error"] == "upstream_status_500"
    for record, line in zip(records, lines, strict=True):
        assert "\n" not in line
        everything = line + json.dumps(record.__dict__.get("access"))
        for needle in (SECRET, "hunter2", KEY, "wrong-key", "Bearer"):
            assert needle not in everything


def test_text_values_cannot_forge_fields_or_lines() -> None:
    outcome = Outcome("/api/chat", 'evil model\nstatus=200 x="y"', True, started=0.0, ended=0.5)
    line = format_text(access_fields(outcome))
    assert "\n" not in line
    fields = parse_text(line)
    assert fields["model"] == 'evil model\nstatus=200 x="y"'
    assert fields["status"] == "200" and fields["duration_ms"] == "500.0"
    assert fields["ttft_ms"] == "-"
