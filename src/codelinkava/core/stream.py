"""The streaming core every HTTP provider shares: send with retries, decode, yield batches.

Layers, each with one concern: `stream_chunks` / `stream_texts` (read the body,
hand it to the request's wire format, check its end) -> `_send_with_retries`
(the request's `RetryPolicy`) -> the request's `Transport` (one attempt on the
wire). Providers only build the `ChatRequest`; the core names no format and no
transport of its own.
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from typing import Any, TypeVar

from ..chunk import ChatChunk
from ..config import ClientOptions
from ..errors import (
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseStatusError,
    StreamError,
    StreamTruncatedError,
    body_preview,
    make_status_error,
)
from ..formats.base import BodyKind, StreamDecoder, WireFormat
from ..request import ChatRequest
from ..retry import RetryPolicy
from ..transports import Response, Transport, TransportRequest, default_transport
from .stream_info import report_stream_info

__all__ = ["fetch_json", "stream_chunks", "stream_texts"]

T = TypeVar("T")

#: How much of an error body is read for the exception.
ERROR_BODY_LIMIT = 64 * 1024
#: The largest whole (non-streamed) answer read.
WHOLE_ANSWER_LIMIT = 64 * 1024 * 1024
_BOM = codecs.BOM_UTF8
#: The most pieces handed over at once: enough to make a relay's sends cheap, few
#: enough that the first text of a large read is not held back by parsing the rest.
_MAX_BATCH = 32
#: A body not labelled as a stream is classified after at most this many bytes:
#: re-scanning a growing buffer would be quadratic.
_SNIFF_LIMIT = 4096


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The body exactly as aiohttp's `json=` (and so the seed) would send it."""
    try:
        return json.dumps(body).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"the request body is not JSON-serialisable: {exc}") from None


def stream_texts(request: ChatRequest) -> AsyncGenerator[list[str], None]:
    """POST the request; yield the answer's text, a list per network read (never empty)."""
    return _stream(request, _text_view, _whole_text)


def stream_chunks(request: ChatRequest) -> AsyncGenerator[list[ChatChunk], None]:
    """POST the request; yield the answer's typed chunks, a list per network read."""
    return _stream(request, _chunk_view, _whole_chunk)


def _text_view(decoder: StreamDecoder) -> Callable[[bytes], Iterator[str]]:
    return decoder.texts


def _chunk_view(decoder: StreamDecoder) -> Callable[[bytes], Iterator[ChatChunk]]:
    return decoder.chunks


def _whole_text(chunk: ChatChunk) -> list[str]:
    return [chunk.content] if chunk.content else []


def _whole_chunk(chunk: ChatChunk) -> list[ChatChunk]:
    return [chunk]


async def _stream(
    request: ChatRequest,
    view: Callable[[StreamDecoder], Callable[[bytes], Iterator[T]]],
    whole: Callable[[ChatChunk], list[T]],
) -> AsyncGenerator[list[T], None]:
    """The decode loop shared by both views.

    Yields lists: the items decoded from one network read, together. A client
    yields them one by one; a relay (the gateway) writes each list with one
    send, which halved its CPU per chunk on fast upstreams (bench/FINDINGS.md).
    A status the stream itself reports before the answer began (Anthropic's
    `overloaded_error`) is retried as that status would be, from the same budget.
    """
    payload = encode_body(request.body)
    loop = asyncio.get_running_loop()
    timeouts = request.options.timeouts
    total_deadline = None if timeouts.total is None else loop.time() + timeouts.total
    attempt = 0
    while True:
        response, first, first_deadline, first_phase, attempt = await _send_with_retries(
            request, payload, total_deadline, attempt
        )
        wire = request.wire
        try:
            body_kind, first = await _classify(response, wire, first, first_deadline, first_phase)
            if body_kind != "stream":
                chunk = await _not_streamed(
                    request, response, body_kind, first, (first_deadline, total_deadline)
                )
                report_stream_info(finish_reason=chunk.finish_reason or "stop", usage=chunk.usage)
                if parts := whole(chunk):
                    yield parts
                return
            decoder = wire.decoder()
            async for batch in _decode(
                response, decoder, view(decoder), first, request, total_deadline
            ):
                yield batch
            if decoder.done:
                await response.finish()
            else:
                decoder.close()
            report_stream_info(finish_reason=decoder.finish_reason, usage=decoder.usage)
            return
        except _HeldBack as held:
            delay = _backoff(request.options.retry, attempt, held.error, loop, total_deadline)
            if delay is None:
                if held.items:
                    yield held.items
                raise held.error from None
        finally:
            response.close()
        attempt += 1
        await asyncio.sleep(delay)


async def _not_streamed(
    request: ChatRequest,
    response: Response,
    body_kind: BodyKind,
    first: bytes,
    deadlines: tuple[float | None, float | None],
) -> ChatChunk:
    """A whole answer's one chunk; StreamError for a body that is neither (a page).
    `deadlines`: the first chunk's and the total's."""
    first_deadline, total_deadline = deadlines
    if body_kind == "whole":
        return await _read_whole(request, response, first, total_deadline)
    preview = await response.read_text(2000, first_deadline, first.removeprefix(_BOM))
    raise StreamError(
        f"expected {request.wire.name} from {request.url} but got "
        f"{response.content_type or 'no content type'} (HTTP {response.status}): "
        f"{body_preview(preview)}"
    )


class _HeldBack(Exception):
    """The stream reported a status before its answer began; `items` were held back."""

    def __init__(self, error: ResponseStatusError, items: list[Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.items = items


async def _classify(
    response: Response, wire: WireFormat, first: bytes, deadline: float | None, phase: str
) -> tuple[BodyKind, bytes]:
    """What the body is, by its label and first bytes, and the bytes read to tell.

    The label may lie: the format looks at the first bytes, and we read on while
    they are too few to tell (a blank-line keep-alive, a split BOM).
    """
    kind = response.content_type
    while (body_kind := wire.classify(kind, first, final=False)) is None:
        if len(first) > _SNIFF_LIMIT:
            return wire.classify(kind, first, final=True) or "other", first
        more = await response.read_chunk(deadline, phase)
        if not more:
            return "other", first  # the body ended before it said what it is
        first += more
    return body_kind, first


async def _decode(
    response: Response,
    decoder: StreamDecoder,
    decode: Callable[[bytes], Iterator[T]],
    first: bytes,
    request: ChatRequest,
    total_deadline: float | None,
) -> AsyncGenerator[list[T], None]:
    """Read and decode until the format's end marker or the end of the body.

    Yields the items of each read together, at most `_MAX_BATCH` at a time;
    what arrived before a broken event still reaches the caller, in order.
    Items decoded while `decoder.before_answer` are held back, so that a status
    the stream reports then raises `_HeldBack`: nothing reached the caller yet.
    """
    loop = asyncio.get_running_loop()
    idle = request.options.timeouts.idle
    held: list[T] = []
    chunk_bytes = first
    while chunk_bytes:
        batch: list[T] = []
        try:
            for item in decode(chunk_bytes):
                batch.append(item)
                if len(batch) >= _MAX_BATCH and not decoder.before_answer:
                    # A big read (a fast upstream's backlog) still reaches the
                    # caller promptly: its first item need not wait for the last.
                    if held:
                        batch, held = held + batch, []
                    yield batch
                    batch = []
        except ProviderError as exc:  # a broken event, or a status the stream reported
            if decoder.before_answer and isinstance(exc, ResponseStatusError):
                raise _HeldBack(exc, held + batch) from None
            if held or batch:
                yield held + batch
            raise
        if batch:
            if decoder.before_answer:
                held += batch
            else:
                if held:
                    batch, held = held + batch, []
                yield batch
        if decoder.done:
            break
        if idle is None and total_deadline is None:
            chunk_bytes = await response.read_chunk(None, "idle")
        else:
            deadline, phase = _deadline(loop, idle, total_deadline, "idle")
            chunk_bytes = await response.read_chunk(deadline, phase)
    if held:
        yield held


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


async def _read_whole(
    request: ChatRequest, response: Response, first: bytes, total_deadline: float | None
) -> ChatChunk:
    """Read a whole (non-streamed) answer, bounded in size, and parse it."""
    loop = asyncio.get_running_loop()
    idle = request.options.timeouts.idle
    parts = [first]
    size = len(first)
    chunk = first
    while chunk:
        deadline, phase = _deadline(loop, idle, total_deadline, "idle")
        chunk = await response.read_chunk(deadline, phase)
        parts.append(chunk)
        size += len(chunk)
        if size > WHOLE_ANSWER_LIMIT:
            raise StreamError("the JSON answer is larger than 64 MiB")
    return request.wire.parse_whole(b"".join(parts))


async def _send_with_retries(
    request: ChatRequest, payload: bytes, total_deadline: float | None, attempt: int = 0
) -> tuple[Response, bytes, float | None, str, int]:
    """A 2xx response, the first piece of its body, the first-chunk deadline it met, and
    the number of the attempt that got it (counting from `attempt`, the tries made before).

    Retries what the policy allows, only before any text was seen. The
    first-chunk limit runs from sending the request, headers included.
    """
    loop = asyncio.get_running_loop()
    options = request.options
    policy = options.retry
    transport = options.transport or default_transport()
    wire_request = _wire_request(request.method, request.url, request.headers, payload, options)
    while True:
        deadline, phase = _deadline(
            loop, options.timeouts.first_chunk, total_deadline, "first_chunk"
        )
        outcome = await _attempt(transport, wire_request, request.url, policy, deadline, phase)
        if not isinstance(outcome[0], ProviderError):
            return (*outcome, attempt)
        error, retry_after = outcome[0], outcome[1]
        delay = _backoff(policy, attempt, error, loop, total_deadline, retry_after)
        if delay is None:
            raise error
        attempt += 1
        await asyncio.sleep(delay)


def _backoff(
    policy: RetryPolicy,
    attempt: int,
    error: ProviderError,
    loop: asyncio.AbstractEventLoop,
    total_deadline: float | None,
    retry_after: float | None = None,
) -> float | None:
    """How long to wait before retrying `error` after try number `attempt`; None: do not.

    `retry_after` is the server's wait, already allowed by the policy; a rate limit
    the stream itself reported carries its own. A status error is retried only when
    the policy retries its status.
    """
    if attempt >= policy.max_retries:
        return None
    if isinstance(error, ResponseStatusError) and retry_after is None:
        if not policy.retries_status(error.status):
            return None
        if isinstance(error, RateLimitError):
            retry_after = error.retry_after
    delay = policy.delay(attempt, retry_after)
    if total_deadline is not None and loop.time() + delay >= total_deadline:
        return None
    return delay


_Failure = tuple[
    "ResponseStatusError | ProviderConnectionError | ProviderTimeoutError", "float | None"
]


async def _attempt(
    transport: Transport,
    wire_request: TransportRequest,
    url: str,
    policy: RetryPolicy,
    deadline: float | None,
    phase: str,
) -> tuple[Response, bytes, float | None, str] | _Failure:
    """One try: a 2xx response with its first bytes, or (the error, the server's wait)
    when the policy says it may be retried. Errors it may not retry are raised."""
    try:
        response = await transport.open(wire_request, deadline, phase)
    except ProviderConnectionError as exc:
        if not policy.retry_connection_errors:
            raise
        return exc, None
    except ProviderTimeoutError as exc:
        if exc.phase != "connect" or not policy.retry_connection_errors:
            raise
        return exc, None
    if 200 <= response.status < 300:
        try:
            return response, await response.read_chunk(deadline, phase), deadline, phase
        except StreamTruncatedError as exc:
            # Lost before the body began: nothing was seen, so a retry is safe.
            response.close()
            cause = exc.__cause__ or exc
            lost = ProviderConnectionError(
                f"the connection to {url} was lost before the answer began: "
                f"{type(cause).__name__}: {cause}"
            )
            return lost, None
        except BaseException:
            response.close()
            raise
    try:
        text = await response.read_text(ERROR_BODY_LIMIT, deadline)
    finally:
        response.close()
    error = make_status_error(response.status, text, response.headers, url=url)
    if not policy.retries_status(response.status):
        raise error
    retry_after, allowed = policy.server_wait(response.headers)
    if not allowed:
        raise error
    return error, retry_after


def _wire_request(
    method: str, url: str, headers: Mapping[str, str], body: bytes, options: ClientOptions
) -> TransportRequest:
    return TransportRequest(
        method=method,
        url=url,
        headers=headers,
        body=body,
        proxy=options.proxy,
        connect_timeout=options.timeouts.connect,
    )


async def fetch_json(url: str, headers: Mapping[str, str], options: ClientOptions) -> Any:
    """GET a small JSON document (a model list) under the first-chunk limit; no retries."""
    loop = asyncio.get_running_loop()
    limit = options.timeouts.first_chunk
    deadline = None if limit is None else loop.time() + limit
    transport: Transport = options.transport or default_transport()
    response = await transport.open(
        _wire_request("GET", url, headers, b"", options), deadline, "first_chunk"
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
