"""Request bodies the gateway accepts, as pydantic v2 models.

The rule of the relay: a field that changes the answer is forwarded as the
caller sent it, or refused with a 400 that names it -- never dropped. So the
models keep unknown fields (`extra="allow"`) and type the documented ones only
to refuse nonsense early. What no request may carry are the library's own
options (`api_url`, `base_url`, `api_key`, `proxy`, `headers`, `model_path`,
...): they pick a destination, a key or a file, and come from the server's
settings; `reserved_field` names the first one a body tries to smuggle in.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from codelinkava.providers.base import reserved_option_names

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CodeLinkAvaRequest",
    "StreamOptions",
    "reserved_field",
]

_INT32 = 2**31 - 1
_ROLE = Literal["system", "developer", "user", "assistant", "tool", "function"]
_PART_KEYS = {
    "text": "text",
    "image_url": "image_url",
    "input_audio": "input_audio",
    "file": "file",
    "refusal": "refusal",
}


class ChatMessage(BaseModel):
    """One message; tool calls, tool results, names and content parts travel as sent."""

    model_config = ConfigDict(extra="allow")

    role: _ROLE
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    @field_validator("content")
    @classmethod
    def _parts_are_typed(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, part in enumerate(value):
                kind = part.get("type", "text")
                key = _PART_KEYS.get(kind) if isinstance(kind, str) else None
                if key is None:
                    raise ValueError(
                        f"content[{index}] has type {kind!r}; expected one of "
                        f"{', '.join(_PART_KEYS)}"
                    )
                if key not in part and not (kind == "text" and not part):
                    raise ValueError(f"content[{index}] ({kind}) has no {key!r}")
                if kind == "text" and not isinstance(part.get("text", ""), str):
                    raise ValueError(f"content[{index}].text must be a string")
                if kind == "image_url":
                    _check_image_url(index, part["image_url"])
        return value


def _check_image_url(index: int, image: Any) -> None:
    """Only http(s) and data: images: a `file:` URL would pick a file on the upstream's host."""
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise ValueError(f"content[{index}].image_url.url must be a string")
    scheme = url.partition(":")[0].lower()
    if scheme not in ("http", "https", "data"):
        raise ValueError(
            f"content[{index}].image_url.url must be an http(s) or data: URL, not {scheme}:"
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class _Tool(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "function"
    function: dict[str, Any]

    @field_validator("function")
    @classmethod
    def _named(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("name"), str) or not value["name"]:
            raise ValueError("a tool's function needs a name")
        return value


class _ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class _Fields(BaseModel):
    """The documented Chat Completions fields, typed; any other field is kept as sent."""

    model_config = ConfigDict(extra="allow")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=_INT32)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=_INT32)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: int | None = Field(default=None, ge=1, le=128)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[str, float] | None = None
    response_format: _ResponseFormat | None = None
    tools: list[_Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def forwarded(self) -> dict[str, Any]:
        """Every field the caller set (typed or not), as sent, but the model and messages."""
        fields = self.model_dump(exclude_unset=True, exclude={"model", "messages"})
        return fields

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_Fields):
    """`POST /v1/chat/completions`, OpenAI's shape."""

    model: str = ""
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class CodeLinkAvaRequest(_Fields):
    """`POST /api/chat`, the seed's shape: streams unless told otherwise, temperature 0.6."""

    model: str = ""
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = True
    temperature: float | None = Field(default=0.6, ge=0, le=2)

    def forwarded(self) -> dict[str, Any]:
        fields = super().forwarded()
        fields.setdefault("temperature", self.temperature)  # the seed's default, always sent
        return fields


def reserved_field(body: BaseModel) -> str | None:
    """The first field of `body` that only the server's settings may set, if any."""
    reserved = reserved_option_names()
    for name in (*(body.model_extra or {}), *sorted(body.model_fields_set)):
        if name in reserved:
            return name
    return None
