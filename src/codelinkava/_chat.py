"""The streaming core every HTTP provider shares: send with retries, decode, yield text.

Layers, each with one concern: `stream_chat` (read the body, decode it, check
its end) -> `_send_with_retries` (backoff, Retry-After) -> `_http.open_response`
(one attempt on the wire). Providers only say where to send what.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from . import _http
from ._stream_info import report_stream_info
from .chunks import ChatStreamParser, parse_completion
from .config import ClientOptions
from .errors import (
    InvalidRequestError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ResponseStatusError,
    StreamError,
    StreamTruncatedError,
    body_preview,
    make_status_error,
    parse_retry_after,
)
from .sse import SSEDecoder

__all__ = ["RETRY_STATUSES", "backoff_delay", "stream_chat"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
#: The longest Retry-After we honour; a server asking for more gets its error raised at once.
MAX_RETRY_AFTER = 60.0
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: How much of an error body is read for the exception.
ERROR_BODY_LIMIT = 64 * 1024
_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")
_BOM = b"\xef\xbb\xbf"
_BLANK = b"\r\n \t"
#: The most pieces handed over at once: enough to make a relay's sends cheap, few
#: enough that the first text of a large read is not held back by parsing the rest.
_MAX_BATCH = 32
#: Sniffing a body not labelled text/event-stream gives up after this many bytes of blank
#: lines and decodes it as SSE: re-scanning a growing buffer would be quadratic.
_SNIFF_LIMIT = 4096


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds before retry `attempt` (0-based): the server's word, else jittered backoff."""
    if retry_after is not None and 0 <= retry_after <= MAX_RETRY_AFTER:
        return retry_after
    base: float = min(INITIAL_BACKOFF * 2.0**attempt, MAX_BACKOFF)
    return base * (1 - 0.25 * random.random())


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The body exactly as aiohttp's `json=` (and so the seed) would send it."""
    try:
        return json.dumps(body).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"the request body is not JSON-serialisable: {exc}") from None


async def stream_chat(
    url: str, headers: Mapping[str, str], body: Mapping[str, Any], options: ClientOptions
) -> AsyncGenerator[list[str], None]:
    """POST `body` to `url` and yield the answer's text as it streams in.

    Yields lists: the pieces decoded from one network read, together. A client
    yields them one by one; a relay (the gateway) writes each list with one
    send, which halved its CPU per chunk on fast upstreams (bench/FINDINGS.md).
    Never an empty list.
    """
    payload = encode_body(body)
    loop = asyncio.get_running_loop()
    timeouts = options.timeouts
    total_deadline = None if timeouts.total is None else loop.time() + timeouts.total
    response, first, first_deadline, first_phase = await _send_with_retries(
        url, headers, payload, options, total_deadline
    )
    try:
        kind = response.content_type
        if kind == "text/event-stream":
            # ...unless the body is JSON (an error, most often) or a page under that label
            sse = not _is_json(first) and not _is_html(first)
        else:
            # The label may lie: sniff the first bytes (reading on while too few to tell).
            while (sniffed := _looks_like_sse(first)) is None:
                if len(first) > _SNIFF_LIMIT:
                    sniffed = True  # blank lines only: legal SSE, and the decoder is linear
                    break
                more = await response.read_chunk(first_deadline, first_phase)
                if not more:
                    break
                first += more
            sse = bool(sniffed)
        if not sse:
            if kind == "application/json" or kind.endswith("+json") or _is_json(first):
                answer = await _read_json_answer(response, first, timeouts.idle, total_deadline)
                if answer:
                    yield [answer]
                return
            preview = await response.read_text(2000, first_deadline, first.removeprefix(_BOM))
            raise StreamError(
                f"expected an event stream from {url} but got {kind or 'no content type'} "
                f"(HTTP {response.status}): {body_preview(preview)}"
            )
        decoder = SSEDecoder()
        parser = ChatStreamParser()
        idle = timeouts.idle
        chunk = first
        while chunk:
            batch: list[str] = []
            try:
                for event in decoder.feed(chunk):
                    text = parser.feed(event)
                    if text is not None:
                        batch.append(text)
                        if len(batch) == _MAX_BATCH:
                            # A big read (a fast upstream's backlog) still reaches the
                            # caller promptly: its first text need not wait for the last.
                            yield batch
                            batch = []
                    elif parser.done:
                        break
            except StreamError:
                if batch:  # what arrived before the error still reaches the caller, in order
                    yield batch
                raise
            if batch:
                yield batch
            if parser.done:
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


def _looks_like_sse(first: bytes) -> bool | None:
    """Whether a body starting with `first` is an event stream; None while too short to tell."""
    head = first.removeprefix(_BOM).lstrip(_BLANK)
    if not head or _BOM.startswith(first):
        return None
    for start in _SSE_STARTS:
        if head.startswith(start):
            return True
        if start.startswith(head):
            return None
    return False


def _is_json(first: bytes) -> bool:
    return first[:64].removeprefix(_BOM).lstrip(_BLANK)[:1] == b"{"


def _is_html(first: bytes) -> bool:
    return first[:64].removeprefix(_BOM).lstrip(_BLANK)[:1] == b"<"


def _deadline(
    loop: asyncio.AbstractEventLoop, limit: float | None, total_deadline: float | None, phase: str
) -> tuple[float | None, str]:
    """The earlier of `now + limit` and the total deadline, and which limit that is.

    Raises once the total deadline has passed: a server that always has bytes
    buffered never makes a read wait, so the check cannot be left to the timer.
    """
    now = loop.time()
    if total_deadline is not None and total_deadline <= now:
        raise ProviderTimeoutError("the answer took longer than the total timeout", phase="total")
    if limit is None:
        return total_deadline, "total"
    deadline = now + limit
    if total_deadline is not None and total_deadline <= deadline:
        return total_deadline, "total"
    return deadline, phase


async def _read_json_answer(
    response: _http.Response, first: bytes, idle: float | None, total_deadline: float | None
) -> str:
    loop = asyncio.get_running_loop()
    parts = [first]
    size = len(first)
    chunk = first
    while chunk:
        deadline, phase = _deadline(loop, idle, total_deadline, "idle")
        chunk = await response.read_chunk(deadline, phase)
        parts.append(chunk)
        size += len(chunk)
        if size > 64 * 1024 * 1024:
            raise StreamError("the JSON answer is larger than 64 MiB")
    body = b"".join(parts).removeprefix(_BOM)
    text, finish_reason, usage = parse_completion(body.decode("utf-8", "replace"))
    report_stream_info(finish_reason=finish_reason or "stop", usage=usage)
    return text


async def _send_with_retries(
    url: str,
    headers: Mapping[str, str],
    payload: bytes,
    options: ClientOptions,
    total_deadline: float | None,
) -> tuple[_http.Response, bytes, float | None, str]:
    """A 2xx response, the first piece of its body, and the first-chunk deadline it met.

    Retries what is safe to retry before any text was seen. The first-chunk
    limit runs from sending the request, headers included.
    """
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        deadline, phase = _deadline(
            loop, options.timeouts.first_chunk, total_deadline, "first_chunk"
        )
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
                try:
                    return response, await response.read_chunk(deadline, phase), deadline, phase
                except StreamTruncatedError as exc:
                    # Lost before the body began: nothing was seen, so a retry is safe.
                    response.close()
                    cause = exc.__cause__
                    error = ProviderConnectionError(
                        f"the connection to {url} was lost before the answer began: "
                        f"{type(cause).__name__}: {cause}"
                    )
                except BaseException:
                    response.close()
                    raise
            else:
                try:
                    text = await response.read_text(ERROR_BODY_LIMIT, deadline)
                finally:
                    response.close()
                error = make_status_error(response.status, text, response.headers, url=url)
                if response.status not in RETRY_STATUSES:
                    raise error
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


async def fetch_json(url: str, headers: Mapping[str, str], options: ClientOptions) -> Any:
    """GET a small JSON document (a model list) under the first-chunk limit; no retries."""
    loop = asyncio.get_running_loop()
    limit = options.timeouts.first_chunk
    deadline = None if limit is None else loop.time() + limit
    response = await _http.open_response(
        url,
        headers=headers,
        body=b"",
        options=options,
        deadline=deadline,
        phase="first_chunk",
        method="GET",
    )
    try:
        text = await response.read_text(ERROR_BODY_LIMIT, deadline)
    finally:
        response.close()
    if not 200 <= response.status < 300:
        raise make_status_error(response.status, text, response.headers, url=url)
    try:
        return json.loads(text)
    except ValueError:
        raise StreamError(f"{url} did not answer JSON: {body_preview(text)}") from None
