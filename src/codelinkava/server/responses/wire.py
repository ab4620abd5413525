"""`POST /v1/responses` bodies as pydantic v2 models: OpenAI's Responses API.

The top-level fields are typed so nonsense is refused early, with the field
named (a 400 from the validation handler). Input items and tools stay plain
dicts here: `translate.py` reads them one by one and names the exact item at
fault (`input[3].call_id`), which a union of pydantic models would bury under
one error per member. Unknown top-level fields are kept (`extra="allow"`):
`translate.py` forwards them to the chat upstream as sent, or refuses them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

__all__ = [
    "INCLUDABLE",
    "Reasoning",
    "ResponsesRequest",
    "ResponsesStreamOptions",
    "TextConfig",
    "TextFormat",
]

_INT32 = 2**31 - 1

# What the OpenAPI page shows of input items and tools (the items `translate.py` reads);
# validation takes any JSON there, so an error names the exact item at fault.
_TEXT_PART = {
    "type": "object",
    "properties": {"type": {"const": "input_text"}, "text": {"type": "string"}},
    "required": ["type", "text"],
}
_INPUT_ITEM = {
    "oneOf": [
        {
            "title": "message",
            "type": "object",
            "properties": {
                "type": {"const": "message"},
                "role": {"enum": ["user", "system", "developer", "assistant"]},
                "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}]},
            },
            "required": ["role", "content"],
        },
        {
            "title": "function_call",
            "type": "object",
            "properties": {
                "type": {"const": "function_call"},
                "call_id": {"type": "string"},
                "name": {"type": "string"},
                "arguments": {"type": "string"},
            },
            "required": ["type", "call_id", "name", "arguments"],
        },
        {
            "title": "function_call_output",
            "type": "object",
            "properties": {
                "type": {"const": "function_call_output"},
                "call_id": {"type": "string"},
                "output": {"type": "string"},
            },
            "required": ["type", "call_id", "output"],
        },
    ]
}
_FUNCTION_TOOL = {
    "type": "object",
    "properties": {
        "type": {"const": "function"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "parameters": {"type": "object"},
        "strict": {"type": "boolean"},
    },
    "required": ["type", "name"],
}
#: `include` values honoured: logprobs are asked of the upstream; chat upstreams give no
#: reasoning items, so there is never encrypted reasoning content to leave out.
INCLUDABLE = ("message.output_text.logprobs", "reasoning.encrypted_content")
InputItem = Annotated[Any, WithJsonSchema(_INPUT_ITEM)]
Includable = Annotated[str, WithJsonSchema({"type": "string", "enum": list(INCLUDABLE)})]
FunctionTool = Annotated[Any, WithJsonSchema(_FUNCTION_TOOL)]


class TextFormat(BaseModel):
    """`text.format`: plain text, any JSON object, or JSON held to a schema."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, min_length=1, max_length=64)
    # `schema` would shadow BaseModel.schema: the attribute has another name.
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class ResponsesStreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_obfuscation: bool | None = None


class ResponsesRequest(BaseModel):
    """`POST /v1/responses`, OpenAI's shape; every field is honoured, forwarded or refused."""

    model_config = ConfigDict(extra="allow")

    model: str = ""
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=_INT32)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    include: list[Includable] | None = None
    reasoning: Reasoning | None = None
    truncation: Literal["auto", "disabled"] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    stream: bool = False
    stream_options: ResponsesStreamOptions | None = None
    #: OpenAI's default is to store: None reads as True.
    store: bool | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=256)
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    background: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=1, le=_INT32)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        """OpenAI's bounds: 16 pairs, keys up to 64 characters, values up to 512."""
        if value is None:
            return value
        if len(value) > 16:
            raise ValueError("at most 16 metadata pairs")
        for key, text in value.items():
            if len(key) > 64:
                raise ValueError(f"metadata key {key[:20]!r}... is longer than 64 characters")
            if len(text) > 512:
                raise ValueError(f"metadata[{key!r}] is longer than 512 characters")
        return value

    @property
    def stores(self) -> bool:
        """Whether the finished response is kept for GET and `previous_response_id`."""
        return self.store is not False
