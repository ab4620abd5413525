"""Streams as real servers send them: any network chunking, any line end, and every way to end."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest

import codelinkava.transports.aiohttp
from codelinkava import CodeLinkAva, OpenAICompatible, Timeouts, errors
from support.scripted import (
    MESSAGES,
    SSE_HEADERS,
    Close,
    Reply,
    Reset,
    ScriptedServer,
    Sleep,
    Stall,
    chunk,
    event,
    split_every,
    sse,
)

TEXTS = ["Привет", ", мир", " 😀", " 日本語", " — done."]


async def pieces(server: ScriptedServer, provider: Any = CodeLinkAva, **kwargs: Any) -> list[str]:
    out: list[str] = []
    async with asyncio.timeout(10):
        if provider is CodeLinkAva:
            kwargs.setdefault("api_url", server.url())
        else:
            kwargs.setdefault("base_url", server.url("/v1"))
        async for text in provider.create_async_generator("gpt-3.5-turbo", MESSAGES, **kwargs):
            out.append(text)
    return out


async def pieces_then_error(
    server: ScriptedServer, error: type[BaseException], **kwargs: Any
) -> tuple[list[str], BaseException]:
    """The text that arrived before the error, and the error (which must be raised)."""
    out: list[str] = []
    with pytest.raises(error) as info:
        async with asyncio.timeout(10):
            gen = CodeLinkAva.create_async_generator(
                "gpt-3.5-turbo", MESSAGES, api_url=server.url(), **kwargs
            )
            async for text in gen:
                out.append(text)
    return out, info.value


def split_inside(data: bytes, marker: bytes) -> list[bytes]:
    """Cut `data` in the middle of every occurrence of `marker`."""
    out, start, at = [], 0, data.find(marker)
    while at != -1:
        cut = at + len(marker) // 2 or at + 1
        out.append(data[start:cut])
        start = cut
        at = data.find(marker, cut)
    out.append(data[start:])
    return out


def split_inside_utf8(data: bytes) -> list[bytes]:
    """Cut after the first byte of every multi-byte UTF-8 character."""
    out, start = [], 0
    for i, byte in enumerate(data):
        if byte >= 0xC0 and i + 1 > start:
            out.append(data[start : i + 1])
            start = i + 1
    out.append(data[start:])
    return out


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize(
    ("chunking", "delay"),
    [
        pytest.param(lambda b: [b], 0.0, id="whole"),
        pytest.param(lambda b: split_every(b, 1), 0.0002, id="byte-by-byte"),
        pytest.param(lambda b: split_every(b, 7), 0.0005, id="7-bytes"),
        pytest.param(
            lambda b: split_inside(b, b"\r\n") if b"\r\n" in b else split_every(b, 50),
            0.001,
            id="inside-CRLF",
        ),
        pytest.param(split_inside_utf8, 0.001, id="inside-UTF-8"),
        pytest.param(lambda b: split_inside(b, b"data: "), 0.001, id="inside-field"),
    ],
)
async def test_any_chunking_and_line_end_gives_the_same_text(
    server: ScriptedServer, eol: str, chunking: Any, delay: float
) -> None:
    server.reply(Reply(body=chunking(sse(*TEXTS, eol=eol)), delay=delay))
    assert await pieces(server) == TEXTS


async def test_one_write_per_byte_reaches_the_client_one_byte_at_a_time(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Guard that the chunking tests really split the stream on the client side.
    sizes: list[int] = []
    read_chunk = codelinkava.transports.aiohttp.AiohttpResponse.read_chunk

    async def recording(self: Any, deadline: float | None, phase: str) -> bytes:
        data = await read_chunk(self, deadline, phase)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(codelinkava.transports.aiohttp.AiohttpResponse, "read_chunk", recording)
    body = sse("ab")
    server.reply(Reply(body=split_every(body, 1), delay=0.003))
    assert await pieces(server) == ["ab"]
    # Most reads see one byte (a busy machine may now and then join two writes).
    body_reads = [size for size in sizes if size]
    assert sum(body_reads) == len(body)
    assert len(body_reads) >= 0.8 * len(body)


async def test_keepalive_comments_named_events_bom_and_no_space(server: ScriptedServer) -> None:
    body = (
        b"\xef\xbb\xbf: keep-alive\n\n"
        b"event: ping\ndata: {}\n\n"
        b'data:{"choices":[{"delta":{"role":"assistant"}}]}\n\n'
        + event(chunk("one"))
        + b": another comment\n"
        + b'data: {"choices":[{"delta":{"content":" two"},"finish_reason":null}]}\n\n'
        + b"id: 7\nretry: 1000\n"
        + event("[DONE]")
    )
    server.reply(Reply(body=split_every(body, 3), delay=0.0005))
    assert await pieces(server) == ["one", " two"]


async def test_usage_chunk_and_role_only_delta_are_skipped(server: ScriptedServer) -> None:
    body = (
        event(chunk(role="assistant"))
        + event(chunk("Hi"))
        + event(chunk(finish_reason="stop"))
        + event({"id": "x", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
        + event("[DONE]")
    )
    server.reply(Reply(body=[body]))
    assert await pieces(server, OpenAICompatible) == ["Hi"]


# How a stream ends --------------------------------------------------------------------


async def test_finish_reason_without_done_is_complete(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("a", "b", finish=True, done=False)]))
    assert await pieces(server) == ["a", "b"]


@pytest.mark.parametrize("tail", [b"data: [DONE]\n", b"data: [DONE]", b"data: [DONE]\r"])
async def test_done_without_blank_line_is_complete(server: ScriptedServer, tail: bytes) -> None:
    server.reply(Reply(body=[sse("a", done=False), tail]))
    assert await pieces(server) == ["a"]


async def test_events_after_done_are_ignored(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("a") + event(chunk("never"))]))
    assert await pieces(server) == ["a"]


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(body=[sse("a", "b", done=False)]), id="chunked-clean-end"),
        pytest.param(Reply(body=[sse("a", "b", done=False)], raw=True), id="eof-terminated"),
        pytest.param(
            Reply(body=[sse("a", "b", done=False) + b'data: {"choices": [{"del'], raw=True),
            id="eof-inside-event",
        ),
        pytest.param(Reply(body=[sse("a", "b", done=False), Close()]), id="close-mid-chunked"),
        pytest.param(Reply(body=[sse("a", "b", done=False), Reset()]), id="reset"),
        pytest.param(
            Reply(body=[sse("a", "b", done=False), Sleep(0.05), Reset()]), id="reset-later"
        ),
        pytest.param(
            Reply(
                headers={**SSE_HEADERS, "Content-Length": "10000"},
                body=[sse("a", "b", done=False), Close()],
                raw=True,
            ),
            id="short-content-length",
        ),
    ],
)
async def test_truncated_stream_raises_after_the_text_that_arrived(
    server: ScriptedServer, reply: Reply
) -> None:
    server.reply(reply)
    out, _ = await pieces_then_error(server, errors.StreamTruncatedError, max_retries=0)
    assert out == ["a", "b"]
    assert len(server.requests) == 1


async def test_empty_event_stream_is_truncated(server: ScriptedServer) -> None:
    server.reply(Reply(body=[]))
    out, _ = await pieces_then_error(server, errors.StreamTruncatedError)
    assert out == []


async def test_gzip_encoded_stream(server: ScriptedServer) -> None:
    headers = {**SSE_HEADERS, "Content-Encoding": "gzip"}
    server.reply(Reply(headers=headers, body=[gzip.compress(sse(*TEXTS))], raw=True))
    assert await pieces(server) == TEXTS


async def test_sse_without_event_stream_content_type(server: ScriptedServer) -> None:
    # Some servers stream SSE as text/plain or with no content type at all.
    body = split_every(sse("a", "b"), 1)
    server.reply(Reply(headers={"Content-Type": "text/plain"}, body=body, delay=0.001))
    assert await pieces(server) == ["a", "b"]
    server.reply(Reply(headers={}, body=body, delay=0.001, raw=True))
    assert await pieces(server) == ["a", "b"]


async def test_sse_labelled_as_json(server: ScriptedServer) -> None:
    # A proxy that labels the stream application/json: the bytes say it is SSE.
    server.reply(Reply(headers={"Content-Type": "application/json"}, body=[sse("a", "b")]))
    assert await pieces(server) == ["a", "b"]


# Errors carried by the stream or the body ----------------------------------------------


async def test_error_object_inside_the_stream(server: ScriptedServer) -> None:
    error = {"error": {"message": "The model is overloaded", "type": "server_error", "code": 503}}
    server.reply(Reply(body=[sse("partial", done=False), event(error)]))
    out, exc = await pieces_then_error(server, errors.UpstreamError)
    assert out == ["partial"]
    assert "The model is overloaded" in str(exc)
    assert isinstance(exc, errors.UpstreamError) and exc.code == 503


async def test_event_error(server: ScriptedServer) -> None:
    server.reply(Reply(body=[b'event: error\ndata: {"message": "quota exhausted"}\n\n']))
    _, exc = await pieces_then_error(server, errors.UpstreamError)
    assert "quota exhausted" in str(exc)


async def test_invalid_json_data_line_is_quoted(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("ok", done=False), b"data: {not json at all\n\n"]))
    out, exc = await pieces_then_error(server, errors.StreamError)
    assert type(exc) is errors.StreamError
    assert out == ["ok"]
    assert "{not json at all" in str(exc)


async def test_html_page_with_200_is_a_stream_error(server: ScriptedServer) -> None:
    html = b"<!DOCTYPE html><html><head><title>Login required</title></head><body>...</body></html>"
    server.reply(Reply(headers={"Content-Type": "text/html; charset=utf-8"}, body=[html]))
    _, exc = await pieces_then_error(server, errors.StreamError)
    assert type(exc) is errors.StreamError
    assert "text/html" in str(exc) and "Login required" in str(exc)


async def test_html_error_page_is_a_status_error(server: ScriptedServer) -> None:
    html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body></html>"
    server.reply(Reply(status=502, headers={"Content-Type": "text/html"}, body=[html]))
    _, exc = await pieces_then_error(server, errors.ResponseStatusError, max_retries=0)
    assert type(exc) is errors.ResponseStatusError
    assert exc.status == 502
    assert "502" in str(exc) and "<title>502 Bad Gateway</title>" in str(exc)
    assert exc.body == html.decode()


async def test_json_error_body_gives_the_upstream_message(server: ScriptedServer) -> None:
    body = {
        "error": {
            "message": "This model's maximum context length is 4097 tokens",
            "type": "invalid_request_error",
        }
    }
    server.reply(
        Reply(
            status=400,
            headers={"Content-Type": "application/json"},
            body=[json.dumps(body).encode()],
        )
    )
    _, exc = await pieces_then_error(server, errors.ResponseStatusError)
    assert type(exc) is errors.ResponseStatusError and exc.status == 400
    assert "maximum context length is 4097 tokens" in str(exc)
    assert len(server.requests) == 1


async def test_non_streamed_json_answer(server: ScriptedServer) -> None:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Whole answer."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    server.reply(
        Reply(
            headers={"Content-Type": "application/json"},
            body=split_every(json.dumps(answer).encode(), 16),
            delay=0.001,
        )
    )
    assert await pieces(server, OpenAICompatible, stream=False) == ["Whole answer."]
    assert server.requests[0].json()["stream"] is False


async def test_non_streamed_json_error_with_200(server: ScriptedServer) -> None:
    body = json.dumps({"error": {"message": "model not loaded"}}).encode()
    server.reply(Reply(headers={"Content-Type": "application/json"}, body=[body]))
    with pytest.raises(errors.UpstreamError, match="model not loaded"):
        await pieces(server, OpenAICompatible, stream=False)


async def test_json_error_under_an_event_stream_label(server: ScriptedServer) -> None:
    body = json.dumps({"error": {"message": "invalid api key", "type": "auth"}}).encode()
    server.reply(Reply(body=[body]))
    _, exc = await pieces_then_error(server, errors.UpstreamError)
    assert "invalid api key" in str(exc)


async def test_html_page_with_a_bom_is_a_stream_error(server: ScriptedServer) -> None:
    page = b"\xef\xbb\xbf<html><body>Service Unavailable</body></html>"
    server.reply(
        Reply(headers={"Content-Type": "text/html"}, body=split_every(page, 2), delay=0.001)
    )
    _, exc = await pieces_then_error(server, errors.StreamError)
    assert type(exc) is errors.StreamError and "Service Unavailable" in str(exc)


async def test_non_streamed_json_answer_that_stalls_hits_the_idle_timeout(
    server: ScriptedServer,
) -> None:
    server.reply(
        Reply(headers={"Content-Type": "application/json"}, body=[b'{"choices": [', Stall()])
    )
    with pytest.raises(errors.ProviderTimeoutError) as info:
        await pieces(server, OpenAICompatible, stream=False, timeout=Timeouts(idle=0.3))
    assert info.value.phase == "idle"
