"""The `AnswerEncoder` of `POST /v1/responses`: typed chunks in, Responses events out.

A streamed answer is, in OpenAI's documented order, each event with its
`sequence_number` (0, 1, 2, ...) and an `event:` line naming it:

    response.created, response.in_progress
    per output item:  response.output_item.added
      a message:      response.content_part.added, response.output_text.delta...,
                      response.output_text.done, response.content_part.done
                      (a refusal: response.refusal.delta... / .done in a part of its own)
      a tool call:    response.function_call_arguments.delta..., .done
                      response.output_item.done
    response.completed (or response.incomplete when max_output_tokens cut it short)
    with the whole Response and its usage; response.failed if the upstream broke.

Items are sequential, as OpenAI streams them: a new item closes the one before.
Text deltas take the fast path (the chat encoder's habit): the JSON around the
text is computed once per content part, so each delta costs one string escape
and one format. A whole answer is the Response object. When the request asked
to store it, `settle()` writes the finished Response, and the conversation a
continuation rebuilds, before the last bytes go out.
"""

from __future__ import annotations

import json
import time
from json.encoder import encode_basestring
from typing import Any

from starlette.responses import Response

from codelinkava import errors
from codelinkava.chunk import AnswerBuilder, ChatChunk, ToolCallDelta

from ..backend import Call
from ..errors import provider_error_response
from .objects import (
    failure,
    function_call_item,
    message_item,
    new_id,
    response_object,
    response_status,
    responses_usage,
)
from .store import ResponseStore, StoredResponse
from .translate import ResponsesTranslation, responses_param

__all__ = ["ResponsesEncoder"]

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_TEXT_DELTA = (
    'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    '"sequence_number":'
)
_NO_LOGPROBS = ',"logprobs":[]}\n\n'


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _event(kind: str, sequence_number: int, body: dict[str, Any]) -> str:
    payload = _compact({"type": kind, "sequence_number": sequence_number, **body})
    return f"event: {kind}\ndata: {payload}\n\n"


class _Message:
    """An assistant message item on its way: its text part, then maybe a refusal part."""

    def __init__(self, output_index: int) -> None:
        self.id = new_id("msg")
        self.output_index = output_index
        self.texts: list[str] | None = None
        self.refusals: list[str] | None = None
        self.logprobs: list[Any] = []
        self.part: str | None = None  # "text" or "refusal": the part open now
        self.content_index = -1
        #: What sits between a text delta's sequence number and its text.
        self.delta_head = ""
        self.status = "in_progress"

    def item(self, status: str) -> dict[str, Any]:
        text = "".join(self.texts) if self.texts is not None else None
        refusal = "".join(self.refusals) if self.refusals is not None else None
        return message_item(self.id, text, refusal, status, self.logprobs)


class _FunctionCall:
    def __init__(self, output_index: int, delta: ToolCallDelta) -> None:
        self.id = new_id("fc")
        self.output_index = output_index
        self.call_id = delta.id or new_id("call")
        self.name = delta.name or ""
        self.arguments: list[str] = []
        self.status = "in_progress"

    def item(self, status: str) -> dict[str, Any]:
        return function_call_item(self.id, self.call_id, self.name, "".join(self.arguments), status)


class ResponsesEncoder:
    """One response's answer in OpenAI's Responses wire format."""

    def __init__(
        self,
        model: str,
        translation: ResponsesTranslation,
        *,
        prompt_estimate: int = 0,
        store: ResponseStore | None = None,
    ) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.model = model
        self.echo = translation.echo
        self.conversation = translation.conversation
        self.prompt_estimate = prompt_estimate
        self.store = store
        self.pieces = 0
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self._seq = 0
        self._started = False
        self._items: list[_Message | _FunctionCall] = []
        self._message: _Message | None = None
        self._call: _FunctionCall | None = None  # the call item open now
        self._calls: dict[int, _FunctionCall] = {}  # by the chat tool-call index
        self._final: dict[str, Any] | None = None

    # the seam -------------------------------------------------------------------------

    def bind(self, call: Call) -> None:
        """Nothing to learn: chunks are rendered from their typed fields, whoever sent them."""

    def stream_headers(self) -> list[tuple[bytes, bytes]]:
        return _SSE_HEADERS

    def stream_batch(self, batch: list[ChatChunk]) -> bytes:
        out: list[str] = []
        if not self._started:
            self._start(out)
        texts, head = self._open_text()
        seq = self._seq
        for chunk in batch:
            content = chunk.content
            if texts is not None and content and chunk.logprobs is None:
                # The fast path: plain text into the part already open, in locals.
                texts.append(content)
                out.append(f"{_TEXT_DELTA}{seq}{head}{encode_basestring(content)}{_NO_LOGPROBS}")
                seq += 1
                self.pieces += 1
                if chunk.tool_calls is None and chunk.refusal is None:
                    if chunk.finish_reason is not None or chunk.usage is not None:
                        self._note(chunk)
                    continue
                content = None
            self._seq = seq
            self._chunk(chunk, content, out)
            seq = self._seq
            texts, head = self._open_text()
        self._seq = seq
        return "".join(out).encode()

    def _open_text(self) -> tuple[list[str] | None, str]:
        """The open text part's pieces and its delta head, or (None, "") when none is open."""
        message = self._message
        if message is None or message.part != "text":
            return None, ""
        return message.texts, message.delta_head

    def stream_end(self) -> bytes:
        out: list[str] = []
        if not self._started:
            self._start(out)
        status, details = response_status(self.finish_reason)
        self._close_all(out, "incomplete" if status == "incomplete" else "completed")
        self._final = self._response(status, incomplete_details=details)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._emit(kind, {"response": self._final}))
        return "".join(out).encode()

    def stream_error(self, exc: errors.ProviderError) -> bytes:
        out: list[str] = []
        if not self._started:
            self._start(out)
        self._close_all(out, "incomplete")
        self._final = self._response("failed", error=failure(exc))
        out.append(self._emit("response.failed", {"response": self._final}))
        return "".join(out).encode()

    def whole(self, answer: AnswerBuilder, upstream: ChatChunk | None) -> bytes:
        self.usage = answer.usage
        self.finish_reason = answer.finish_reason
        status, details = response_status(answer.finish_reason)
        item_status = "incomplete" if status == "incomplete" else "completed"
        calls = answer.tool_calls
        refusal = "".join(answer.refusal_parts) if answer.refusal_parts else None
        output: list[dict[str, Any]] = []
        if answer.parts or not (calls or refusal):
            text = answer.text
            output.append(message_item(new_id("msg"), text, refusal, item_status, answer.logprobs))
        elif refusal is not None:
            output.append(message_item(new_id("msg"), None, refusal, item_status))
        for call in calls:
            item = function_call_item(new_id("fc"), call.id, call.name, call.arguments, item_status)
            output.append(item)
        self._final = self._response(status, incomplete_details=details, output=output)
        return json.dumps(self._final, ensure_ascii=False).encode()

    def whole_headers(self, body: bytes) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]

    def error_response(self, exc: errors.ProviderError) -> Response:
        """The HTTP error, naming the field the caller sent (`text.format`, not the
        `response_format` a provider refused)."""
        if isinstance(exc, errors.InvalidRequestError) and exc.param:
            param = responses_param(exc.param)
            if param != exc.param:
                exc = errors.InvalidRequestError(f"{exc} (from {param})", param=param)
        return provider_error_response(exc)

    async def settle(self) -> None:
        if self.store is None or self._final is None:
            return
        record = StoredResponse(self._final, [*self.conversation, *self._answer_messages()])
        await self.store.put(self.id, record)

    # the stream's state -----------------------------------------------------------------

    def _emit(self, kind: str, body: dict[str, Any]) -> str:
        seq = self._seq
        self._seq = seq + 1
        return _event(kind, seq, body)

    def _start(self, out: list[str]) -> None:
        self._started = True
        opening = _compact(self._response("in_progress"))
        for kind in ("response.created", "response.in_progress"):
            seq = self._seq
            self._seq = seq + 1
            out.append(
                f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":{seq},'
                f'"response":{opening}}}\n\n'
            )

    def _note(self, chunk: ChatChunk) -> None:
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage

    def _chunk(self, chunk: ChatChunk, content: str | None, out: list[str]) -> None:
        """Any chunk off the fast path: the first text of a part, refusals, tool calls."""
        if content:
            self.pieces += 1
            message = self._open_part("text", out)
            assert message.texts is not None
            message.texts.append(content)
            seq = self._seq
            self._seq = seq + 1
            out.append(self._text_delta(message, seq, content, chunk.logprobs))
        if chunk.refusal:
            message = self._open_part("refusal", out)
            assert message.refusals is not None
            message.refusals.append(chunk.refusal)
            out.append(self._emit("response.refusal.delta", {
                "item_id": message.id, "output_index": message.output_index,
                "content_index": message.content_index, "delta": chunk.refusal,
            }))  # fmt: skip
        for delta in chunk.tool_calls or ():
            self._tool_delta(delta, out)
        self._note(chunk)

    def _text_delta(self, message: _Message, seq: int, content: str, logprobs: Any) -> str:
        entries = logprobs.get("content") if isinstance(logprobs, dict) else None
        entries = entries if isinstance(entries, list) else []
        message.logprobs.extend(entries)
        return (
            f"{_TEXT_DELTA}{seq}{message.delta_head}{encode_basestring(content)}"
            f',"logprobs":{_compact(entries)}}}\n\n'
        )

    def _open_part(self, part: str, out: list[str]) -> _Message:
        """The message item (opened if none is), with a `part` content part open."""
        message = self._message
        if message is None:
            self._close_call(out)
            message = self._message = _Message(len(self._items))
            self._items.append(message)
            out.append(self._emit("response.output_item.added", {
                "output_index": message.output_index, "item": message.item("in_progress"),
            }))  # fmt: skip
        if message.part == part:
            return message
        self._close_part(message, out)
        message.part = part
        message.content_index += 1
        if part == "text":
            message.texts = message.texts or []
            empty: dict[str, Any] = {"type": "output_text", "text": "", "annotations": [],
                                     "logprobs": []}  # fmt: skip
            message.delta_head = (
                f',"item_id":"{message.id}","output_index":{message.output_index},'
                f'"content_index":{message.content_index},"delta":'
            )
        else:
            message.refusals = message.refusals or []
            empty = {"type": "refusal", "refusal": ""}
        out.append(self._emit("response.content_part.added", {
            "item_id": message.id, "output_index": message.output_index,
            "content_index": message.content_index, "part": empty,
        }))  # fmt: skip
        return message

    def _close_part(self, message: _Message, out: list[str]) -> None:
        where = {
            "item_id": message.id,
            "output_index": message.output_index,
            "content_index": message.content_index,
        }
        if message.part == "text":
            text = "".join(message.texts or ())
            logprobs = message.logprobs
            out.append(self._emit("response.output_text.done",
                                  {**where, "text": text, "logprobs": logprobs}))  # fmt: skip
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}
        elif message.part == "refusal":
            refusal = "".join(message.refusals or ())
            out.append(self._emit("response.refusal.done", {**where, "refusal": refusal}))
            part = {"type": "refusal", "refusal": refusal}
        else:
            return
        out.append(self._emit("response.content_part.done", {**where, "part": part}))
        message.part = None

    def _tool_delta(self, delta: ToolCallDelta, out: list[str]) -> None:
        call = self._calls.get(delta.index)
        if call is None:
            self._close_message(out, "completed")
            self._close_call(out)
            call = self._calls[delta.index] = self._call = _FunctionCall(len(self._items), delta)
            self._items.append(call)
            out.append(self._emit("response.output_item.added", {
                "output_index": call.output_index, "item": call.item("in_progress"),
            }))  # fmt: skip
        elif delta.name and not call.name:
            call.name = delta.name
        if delta.arguments:
            # NOTE: a late piece of a call already closed (an upstream interleaving its
            # calls) still goes out, under that call's item; its done event is behind it.
            call.arguments.append(delta.arguments)
            out.append(self._emit("response.function_call_arguments.delta", {
                "item_id": call.id, "output_index": call.output_index, "delta": delta.arguments,
            }))  # fmt: skip

    def _close_call(self, out: list[str], status: str = "completed") -> None:
        call, self._call = self._call, None
        if call is None or call.status != "in_progress":
            return
        call.status = status
        where = {"item_id": call.id, "output_index": call.output_index}
        arguments = "".join(call.arguments)
        out.append(self._emit("response.function_call_arguments.done",
                              {**where, "name": call.name, "arguments": arguments}))  # fmt: skip
        out.append(
            self._emit(
                "response.output_item.done",
                {"output_index": call.output_index, "item": call.item(status)},
            )
        )

    def _close_message(self, out: list[str], status: str) -> None:
        message, self._message = self._message, None
        if message is None:
            return
        self._close_part(message, out)
        message.status = status
        out.append(self._emit("response.output_item.done",
                              {"output_index": message.output_index,
                               "item": message.item(status)}))  # fmt: skip

    def _close_all(self, out: list[str], status: str) -> None:
        self._close_message(out, status)
        self._close_call(out, status)

    def _response(
        self,
        status: str,
        *,
        output: list[dict[str, Any]] | None = None,
        error: dict[str, Any] | None = None,
        incomplete_details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if output is None:
            final = status != "in_progress"
            output = [item.item(item.status) for item in self._items] if final else []
        usage = None
        if status != "in_progress":
            usage = responses_usage(self.usage, self.pieces, self.prompt_estimate)
        return response_object(
            self.id, self.created_at, self.model, self.echo, status=status, output=output,
            usage=usage, error=error, incomplete_details=incomplete_details,
            completed_at=int(time.time()) if status == "completed" else None,
        )  # fmt: skip

    def _answer_messages(self) -> list[dict[str, Any]]:
        """The answer as chat messages, for a continuation to rebuild the conversation on."""
        assert self._final is not None
        texts: list[str] = []
        refusals: list[str] = []
        calls: list[dict[str, Any]] = []
        for item in self._final["output"]:
            if item["type"] == "function_call":
                function = {"name": item["name"], "arguments": item["arguments"]}
                calls.append({"id": item["call_id"], "type": "function", "function": function})
                continue
            for part in item["content"]:
                if part["type"] == "output_text":
                    texts.append(part["text"])
                else:
                    refusals.append(part["refusal"])
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
        if refusals:
            message["refusal"] = "".join(refusals)
        if calls:
            message["tool_calls"] = calls
            message["content"] = message["content"] or None
        return [message]
