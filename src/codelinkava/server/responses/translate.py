"""Pure: a Responses body, and the stored conversation it continues, in chat terms.

Every provider behind the gateway takes OpenAI chat messages and chat fields, so
a Responses request becomes one: `instructions` a leading system message, input
items messages (`function_call` items an assistant's tool calls,
`function_call_output` items tool messages), `text.format` a `response_format`,
`max_output_tokens` a `max_tokens`, `reasoning.effort` a `reasoning_effort`.
What has no chat counterpart is refused here with the field or item named
(`input[2].content[0].file_id`), never dropped; fields the chat API shares
(`temperature`, `user`, `service_tier`, ...) and unknown ones go as sent, and
the provider refuses what it cannot honour by name (`responses_param` gives the
name back in the caller's terms).

No I/O: the caller looks the stored conversation up and passes its messages in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from codelinkava.errors import InvalidRequestError

from . import items
from .wire import INCLUDABLE, ResponsesRequest

__all__ = ["ResponsesTranslation", "responses_param", "translate_responses"]

#: Chat names a body may not carry: the Responses field that says it (or why not).
_CHAT_ONLY = {
    "messages": "send `input`",
    "response_format": "send `text.format`",
    "max_tokens": "send `max_output_tokens`",
    "max_completion_tokens": "send `max_output_tokens`",
    "reasoning_effort": "send `reasoning.effort`",
    "verbosity": "send `text.verbosity`",
    "logprobs": 'send `include: ["message.output_text.logprobs"]`',
    "n": "a response has one answer",
    "functions": "send `tools`",
    "function_call": "send `tool_choice`",
    "audio": "the Responses API answers in text",
    "modalities": "the Responses API answers in text",
    "web_search_options": "built-in tools are not served",
}
#: Fields of the Responses API this gateway does not serve, refused when set.
_NOT_SERVED = {
    "conversation": "the Conversations API is not served; continue with previous_response_id",
    "prompt": "prompt templates are not served; send instructions and input",
    "context_management": "context compaction is not served",
    "background_options": "background responses are not served",
    "access_programs": "access programs are not served",
    "image": "image context options are not served",
}
#: About the client, not the answer (Codex's session and turn ids), as `metadata` is:
#: accepted and kept from the upstream, which would refuse a name it does not know.
_CLIENT_ONLY = frozenset({"client_metadata"})
#: Fields the chat API shares, forwarded under the same name.
_SHARED = (
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
)
#: Chat field -> the Responses field it comes from, for errors about it.
_SOURCES = {
    "response_format": "text.format",
    "max_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning.effort",
    "verbosity": "text.verbosity",
    "logprobs": "include",
    "stream_options": "stream",
    "messages": "input",
}
_TOOLS = re.compile(r"^tools\[(\d+)\](?:\.function)?")


@dataclass(frozen=True)
class ResponsesTranslation:
    """One Responses request in chat terms."""

    #: What the backend is asked: the instructions first, then the conversation.
    messages: list[dict[str, Any]]
    #: The same without the instructions (they are not carried over to a continuation).
    conversation: list[dict[str, Any]]
    #: Chat fields by OpenAI chat names; `stream` is set by the gateway.
    fields: dict[str, Any]
    #: The request's parameters as the Response object repeats them.
    echo: dict[str, Any]


def responses_param(param: str | None) -> str | None:
    """The Responses field a chat field (named by a provider's error) came from."""
    if param is None:
        return None
    if param in _SOURCES:
        return _SOURCES[param]
    if param.startswith("messages["):
        return "input"
    return _TOOLS.sub(r"tools[\1]", param)


def translate_responses(
    body: ResponsesRequest, history: list[dict[str, Any]] | None = None
) -> ResponsesTranslation:
    """`body` (continuing `history`, a stored conversation's messages) in chat terms.

    Raises InvalidRequestError naming the field or item that cannot be translated.
    """
    _refuse_unserved(body)
    conversation = list(history or [])
    conversation += items.input_messages(body.input, conversation)
    if not conversation:
        raise InvalidRequestError("input is empty: send a string or a list of items", param="input")
    messages = conversation
    if body.instructions:
        messages = [{"role": "system", "content": body.instructions}, *conversation]
    tools = items.chat_tools(body.tools)
    fields = _fields(body, tools)
    return ResponsesTranslation(messages, conversation, fields, _echo(body))


def _refuse_unserved(body: ResponsesRequest) -> None:
    extra = body.model_extra or {}
    for name, why in _NOT_SERVED.items():
        if extra.get(name) not in (None, [], {}):
            raise InvalidRequestError(f"{name} cannot be honoured: {why}", param=name)
    for name in extra:
        if name in _CHAT_ONLY:
            raise InvalidRequestError(
                f"{name} is a chat completions field: {_CHAT_ONLY[name]}", param=name
            )
    if body.background:
        raise InvalidRequestError(
            "background responses are not served: send background false and wait, or stream",
            param="background",
        )
    if body.truncation == "auto":
        raise InvalidRequestError(
            'truncation "auto" cannot be honoured: the gateway does not know the model\'s '
            'context window; send "disabled" and keep the conversation short enough',
            param="truncation",
        )
    reasoning = body.reasoning
    for name in ("summary", "generate_summary"):
        if reasoning is not None and getattr(reasoning, name) is not None:
            raise InvalidRequestError(
                f"reasoning.{name} cannot be honoured: the chat upstreams behind this gateway "
                "return no reasoning summaries; leave it out",
                param=f"reasoning.{name}",
            )
    options = body.stream_options
    if options is not None and options.include_obfuscation:
        raise InvalidRequestError(
            "stream obfuscation is not served: send include_obfuscation false",
            param="stream_options.include_obfuscation",
        )
    for index, value in enumerate(body.include or ()):
        if value not in INCLUDABLE:
            raise InvalidRequestError(
                f"include value {value!r} cannot be honoured; this gateway includes "
                f"{', '.join(INCLUDABLE)}",
                param=f"include[{index}]",
            )


def _fields(body: ResponsesRequest, tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in _SHARED:
        value = getattr(body, name)
        if value is not None:
            fields[name] = value
    if body.max_output_tokens is not None:
        fields["max_tokens"] = body.max_output_tokens
    if tools:  # an empty list is no tools (OpenAI's chat API refuses `tools: []`)
        fields["tools"] = tools
    if body.tool_choice is not None:
        fields["tool_choice"] = items.chat_tool_choice(body.tool_choice)
    text = body.text
    if text is not None and text.format is not None:
        response_format = items.chat_response_format(text.format)
        if response_format is not None:
            fields["response_format"] = response_format
    if text is not None and text.verbosity is not None:
        fields["verbosity"] = text.verbosity
    if body.reasoning is not None and body.reasoning.effort is not None:
        fields["reasoning_effort"] = body.reasoning.effort
    if "message.output_text.logprobs" in (body.include or ()) or body.top_logprobs:
        fields["logprobs"] = True
        if body.top_logprobs:
            fields["top_logprobs"] = body.top_logprobs
    if body.stream:
        fields["stream_options"] = {"include_usage": True}  # usage for response.completed
    for name, value in (body.model_extra or {}).items():
        if name not in _NOT_SERVED and name not in _CLIENT_ONLY:
            fields[name] = value  # the relay's rule: unknown fields go as sent
    return fields


def _echo(body: ResponsesRequest) -> dict[str, Any]:
    """The request's parameters, as OpenAI's Response object repeats them."""
    text: dict[str, Any] = {"format": {"type": "text"}}
    if body.text is not None:
        if body.text.format is not None:
            text["format"] = body.text.format.model_dump(by_alias=True, exclude_none=True)
        if body.text.verbosity is not None:
            text["verbosity"] = body.text.verbosity
    reasoning = body.reasoning
    return {
        "background": False,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "max_tool_calls": body.max_tool_calls,
        "metadata": dict(body.metadata or {}),
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "prompt_cache_key": body.prompt_cache_key,
        "prompt_cache_retention": body.prompt_cache_retention,
        "reasoning": {
            "effort": reasoning.effort if reasoning is not None else None,
            "summary": None,
        },
        "safety_identifier": body.safety_identifier,
        "service_tier": body.service_tier,
        "store": body.stores,
        "temperature": body.temperature,
        "text": text,
        "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
        "tools": [items.echoed_tool(tool) for tool in body.tools or ()],
        "top_logprobs": body.top_logprobs,
        "top_p": body.top_p,
        "truncation": body.truncation or "disabled",
        "user": body.user,
    }
