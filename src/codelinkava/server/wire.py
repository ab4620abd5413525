"""Request bodies the gateway accepts, as pydantic v2 models.

Only fields we understand are kept (`extra="ignore"`): a request can tune
sampling but can never smuggle in `api_url`, `base_url`, `proxy`, `headers`
or `model_path` -- the provider's options come from the server's settings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ChatCompletionRequest", "CodeLinkAvaRequest", "Message", "StreamOptions"]

_ROLE = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: _ROLE
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _parts_have_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            for part in value:
                if part.get("type", "text") != "text" or not isinstance(part.get("text", ""), str):
                    raise ValueError("only text content parts are supported")
        return value


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class _Sampling(BaseModel):
    """Sampling fields forwarded to the provider when set."""

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: int | None = Field(default=None, ge=1, le=1)

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def sampling(self) -> dict[str, Any]:
        """The set sampling fields, as provider keyword arguments."""
        out: dict[str, Any] = {}
        for name in (
            "temperature",
            "top_p",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        max_tokens = self.max_completion_tokens or self.max_tokens
        if max_tokens is not None:
            out["max_tokens"] = max_tokens
        return out


class ChatCompletionRequest(_Sampling):
    """`POST /v1/chat/completions`, OpenAI's shape."""

    model: str = ""
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None


class CodeLinkAvaRequest(_Sampling):
    """`POST /api/chat`, the seed's shape: streams unless told otherwise, temperature 0.6."""

    model: str = ""
    messages: list[Message] = Field(min_length=1)
    stream: bool = True
    temperature: float | None = Field(default=0.6, ge=0, le=2)
