"""An incremental Server-Sent Events decoder: bytes in, events out, no I/O.

It follows the WHATWG "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
and is written in the sans-I/O style of h11: the caller reads the network and
hands each piece to `feed()`; `close()` marks the end of input. Nothing here
imports asyncio or aiohttp, so every rule is tested at every split point.

Hot-path notes (measured in bench/): lines are split on bytes with
`bytes.split`, data lines are kept as bytes and decoded once per event, and
events are NamedTuples, which build about three times faster than frozen
dataclasses while staying immutable.
"""

from __future__ import annotations

import codecs
from typing import NamedTuple

from ..errors import StreamError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

#: An event (or a line) larger than this raises StreamError instead of buffering without end.
DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024

_BOM = codecs.BOM_UTF8
#: The longest `retry` value taken (in digits, leading zeros aside): under int()'s lowest limit.
_MAX_RETRY_DIGITS = 600


class ServerSentEvent(NamedTuple):
    """One dispatched event. `id` is the stream's last event ID at dispatch, as the spec says."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events each piece completes."""

    __slots__ = (
        "_data",
        "_data_size",
        "_discarded",
        "_event_type",
        "_head",
        "_last_event_id",
        "_max_event_size",
        "_pending",
        "_pending_size",
        "_retry",
        "_skip_lf",
        "_started",
        "retry",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._max_event_size = max_event_size
        self._pending: list[bytes] = []  # pieces of a line whose end has not arrived
        self._pending_size = 0
        self._skip_lf = False  # the last piece ended in CR: an LF opening the next one is its pair
        self._started = False  # the leading BOM has been dealt with
        self._head = b""  # the first bytes, held while they may still be a split BOM
        self._data: list[bytes] = []
        self._data_size = 0
        self._event_type = ""
        self._last_event_id = ""
        self._retry: int | None = None  # set by a `retry` field in the current block
        self._discarded: ServerSentEvent | None = None
        #: The stream's reconnection time in ms, from the last valid `retry` field.
        self.retry: int | None = None

    @property
    def discarded(self) -> ServerSentEvent | None:
        """The block cut off by the end of input, which the spec says not to dispatch.

        Callers may still want to look at it: a server that ends with
        `data: [DONE]` and no blank line has finished, not broken off.
        """
        return self._discarded

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode one piece of the stream; return the events it completed."""
        if not self._started:
            chunk = self._strip_bom(chunk)
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\r" in chunk:
            # NOTE: CR, LF and CRLF all end a line. A CR at the very end may be the
            # first half of a CRLF split across pieces, so the LF is skipped next time.
            self._skip_lf = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end == -1:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
            if self._pending_size > self._max_event_size:
                self._overflow()
            return []
        if self._pending:
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            end += self._pending_size
            self._pending.clear()
        tail = chunk[end + 1 :]
        self._pending_size = len(tail)
        if tail:
            self._pending.append(tail)
        return self._lines(chunk[:end].split(b"\n"))

    def close(self) -> list[ServerSentEvent]:
        """Mark the end of input. Per spec an unterminated block is never dispatched."""
        # NOTE: the unterminated last line is read only to fill in `discarded`; per spec
        # it is not a line, so it may not change the last event ID or the retry time.
        last_event_id, retry = self._last_event_id, self.retry
        if self._pending:
            self._lines([b"".join(self._pending)])
            self._pending.clear()
            self._pending_size = 0
        if self._data:
            self._discarded = self._make_event()
        self._last_event_id, self.retry = last_event_id, retry
        self._data = []
        self._data_size = 0
        return []

    def _strip_bom(self, chunk: bytes) -> bytes:
        head = self._head + chunk
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head
            return b""
        self._started = True
        self._head = b""
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _lines(self, lines: list[bytes]) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(self._make_event())
                    data = self._data = []
                    self._data_size = 0
                else:
                    self._event_type = ""
                    self._retry = None
                continue
            if line[:5] == b"data:":
                data.append(line[6:] if line[5:6] == b" " else line[5:])
                # The size counts whole lines, so an event under the limit never holds a
                # line over it, whichever way the stream was cut into pieces.
                self._data_size += len(line) + 1
                if self._data_size > self._max_event_size:
                    self._overflow()
                continue
            if len(line) > self._max_event_size:
                self._overflow()
            if line[0] == 0x3A:  # ':' starts a comment
                continue
            self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":  # "data" with no colon: an empty data line
            self._data.append(value)
            self._data_size += len(line) + 1
            if self._data_size > self._max_event_size:
                self._overflow()
        elif name == b"event":
            self._event_type = value.decode("utf-8", "replace")
        elif name == b"id":
            # NOTE: an id containing NUL is ignored, and the last event ID is
            # never reset between events, as the spec says.
            if b"\x00" not in value:
                self._last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # bytes.isdigit(): ASCII digits only
            # NOTE: int() refuses strings over sys.get_int_max_str_digits() (4,300 by
            # default, 640 at least) with ValueError; a reconnection time that long is
            # meaningless, so it is ignored like any other invalid value.
            digits = value.lstrip(b"0") or b"0"
            if len(digits) <= _MAX_RETRY_DIGITS:
                self._retry = self.retry = int(digits)
        # Any other field name is ignored, as the spec says.

    def _make_event(self) -> ServerSentEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        event = ServerSentEvent(
            raw.decode("utf-8", "replace"),
            self._event_type or "message",
            self._last_event_id,
            self._retry,
        )
        self._event_type = ""
        self._retry = None
        return event

    def _overflow(self) -> None:
        limit = self._max_event_size
        self._pending.clear()
        self._pending_size = 0
        self._data = []
        self._data_size = 0
        raise StreamError(f"an event in the stream is larger than the {limit:,}-byte limit")
