"""The streaming core every HTTP provider shares: send with retries, decode, yield text.

Layers, each with one concern: `stream_chat` (read the body, decode it, check
its end) -> `_send_with_retries` (backoff, Retry-After) -> `_http.open_response`
(one attempt on the wire). Providers only say where to send what.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

from . import _http
from .chunks import ChatStreamParser, parse_completion
from .config import ClientOptions
from .errors import (
    InvalidRequestError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseStatusError,
    StreamError,
    body_preview,
    make_status_error,
    parse_retry_after,
)
from .providers.base import report_stream_info
from .sse import SSEDecoder

__all__ = ["RETRY_STATUSES", "backoff_delay", "stream_chat"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
#: The longest Retry-After we honour; a server asking for more gets its error raised at once.
MAX_RETRY_AFTER = 60.0
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: How much of an error body is read for the exception.
ERROR_BODY_LIMIT = 64 * 1024
_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":", b"\xef\xbb\xbf")


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt` (0-based): the server's word, else jittered backoff."""
    if retry_after is not None and 0 <= retry_after <= MAX_RETRY_AFTER:
        return retry_after
    base = min(INITIAL_BACKOFF * 2**attempt, MAX_BACKOFF)
    return base * (1 - 0.25 * random.random())


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The body exactly as aiohttp's `json=` (and so the seed) would send it."""
    try:
        return json.dumps(body).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"the request body is not JSON-serialisable: {exc}") from None


async def stream_chat(
    url: str, headers: Mapping[str, str], body: Mapping[str, Any], options: ClientOptions
) -> AsyncIterator[str]:
    """POST `body` to `url` and yield the answer's text as it streams in."""
    payload = encode_body(body)
    loop = asyncio.get_running_loop()
    timeouts = options.timeouts
    total_deadline = None if timeouts.total is None else loop.time() + timeouts.total
    response = await _send_with_retries(url, headers, payload, options, total_deadline)
    try:
        first_deadline = _deadline(loop, timeouts.first_chunk, total_deadline, "first_chunk")
        first = await response.read_chunk(first_deadline[0], first_deadline[1])
        kind = response.content_type
        if kind == "application/json" or (kind.endswith("+json") and "event-stream" not in kind):
            text = await _read_json_answer(response, first, total_deadline)
            if text:
                yield text
            return
        if kind != "text/event-stream" and not first.lstrip(b"\r\n \t").startswith(_SSE_STARTS):
            raise StreamError(
                f"expected an event stream from {url} but got {kind or 'no content type'} "
                f"(HTTP {response.status}): {body_preview(first[:2000].decode('utf-8', 'replace'))}"
            )
        decoder = SSEDecoder()
        parser = ChatStreamParser()
        idle = timeouts.idle
        chunk = first
        while chunk:
            for event in decoder.feed(chunk):
                text = parser.feed(event)
                if text is not None:
                    yield text
                elif parser.done:
                    report_stream_info(finish_reason=parser.finish_reason, usage=parser.usage)
                    await response.finish()
                    return
            if idle is None and total_deadline is None:
                chunk = await response.read_chunk(None, "idle")
            else:
                deadline, phase = _deadline(loop, idle, total_deadline, "idle")
                chunk = await response.read_chunk(deadline, phase)
        decoder.close()
        parser.check_end(decoder.discarded)
        report_stream_info(finish_reason=parser.finish_reason, usage=parser.usage)
    finally:
        response.close()


def _deadline(
    loop: asyncio.AbstractEventLoop, limit: float | None, total_deadline: float | None, phase: str
) -> tuple[float | None, str]:
    """The earlier of `now + limit` and the total deadline, and which limit that is."""
    if limit is None:
        return total_deadline, "total"
    deadline = loop.time() + limit
    if total_deadline is not None and total_deadline <= deadline:
        return total_deadline, "total"
    return deadline, phase


async def _read_json_answer(
    response: _http.Response, first: bytes, total_deadline: float | None
) -> str:
    parts = [first]
    size = len(first)
    chunk = first
    while chunk:
        chunk = await response.read_chunk(total_deadline, "total")
        parts.append(chunk)
        size += len(chunk)
        if size > 64 * 1024 * 1024:
            raise StreamError("the JSON answer is larger than 64 MiB")
    text, finish_reason, usage = parse_completion(b"".join(parts).decode("utf-8", "replace"))
    report_stream_info(finish_reason=finish_reason or "stop", usage=usage)
    return text


async def _send_with_retries(
    url: str,
    headers: Mapping[str, str],
    payload: bytes,
    options: ClientOptions,
    total_deadline: float | None,
) -> _http.Response:
    """One response with a 2xx status, retrying what is safe to retry before any text was seen."""
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        deadline, phase = _deadline(loop, options.timeouts.first_chunk, total_deadline, "first_chunk")
        error: ResponseStatusError | ProviderConnectionError | ProviderTimeoutError
        retry_after: float | None = None
        try:
            response = await _http.open_response(
                url, headers=headers, body=payload, options=options, deadline=deadline, phase=phase
            )
        except ProviderConnectionError as exc:
            error = exc
        except ProviderTimeoutError as exc:
            if exc.phase != "connect":
                raise
            error = exc
        else:
            if 200 <= response.status < 300:
                return response
            try:
                text = await response.read_text(ERROR_BODY_LIMIT, deadline)
            finally:
                response.close()
            error = make_status_error(response.status, text, response.headers, url=url)
            if response.status not in RETRY_STATUSES:
                raise error
            if isinstance(error, RateLimitError):
                retry_after = error.retry_after
            else:
                retry_after = parse_retry_after(response.headers)
            if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                raise error
        if attempt >= options.max_retries:
            raise error
        delay = backoff_delay(attempt, retry_after)
        if total_deadline is not None and loop.time() + delay >= total_deadline:
            raise error
        attempt += 1
        await asyncio.sleep(delay)
