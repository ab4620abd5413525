"""The config file: the subset of LiteLLM's proxy config that fits us, read strictly.

```yaml
model_list:
  - model_name: qwen                      # what clients ask for; several entries share it
    litellm_params:
      model: openai/Qwen2.5-7B-Instruct   # openai/<upstream model>: any OpenAI-compatible server
      api_base: http://10.0.0.1:8000/v1   # anthropic/<model> may leave it out: Anthropic's
      api_key: os.environ/VLLM_KEY        # a value read from the environment
      rpm: 600                            # also tpm, max_parallel_requests, weight
      timeout: 30                         # also stream_timeout, max_retries
    model_info: {id: vllm-a}              # the deployment's name in metrics and logs
  - model_name: small
    litellm_params: {model: local/smollm2, model_path: /models/any.gguf}   # the embedded model
  - model_name: ava
    litellm_params: {model: codelinkava/gpt-3.5-turbo, api_base: http://host/api/chat}
  - model_name: claude                    # Anthropic's API (or api_base: any server speaking it)
    litellm_params: {model: anthropic/claude-haiku-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
router_settings:
  routing_strategy: least-busy            # simple-shuffle | least-busy | latency-based-routing
  num_retries: 2
  allowed_fails: 3
  cooldown_time: 30
  fallbacks: [{qwen: [small]}]
  hedging: {qwen: {delay: p95, max_delay: 1.5}}   # ours: a second attempt when slow to start
  redis_host: 127.0.0.1                   # or redis_url; also redis_port, redis_password
general_settings:
  master_key: os.environ/CODELINKAVA_API_KEY
```

Every key not listed here stops the start with a `ConfigError` naming it and
where it is: nothing is silently ignored. Secrets (`api_key`, `master_key`,
`redis_password`, `redis_url`) come from the file or from `os.environ/NAME`,
and no message or `repr` shows them.

The rules are pydantic models (the server extra's), so this module is imported
only when a config is read; each pydantic error is worded here, in one place.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import pydantic
from pydantic import BaseModel, BeforeValidator, Field, ValidationInfo, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from ..errors import InvalidRequestError
from ..providers import PROVIDERS
from ..providers.base import AsyncGeneratorProvider, SetupOption
from .deployment import Deployment
from .settings import HedgePolicy, RouterSettings, number_problem, strategy_problem, whole_problem

if TYPE_CHECKING:
    import random

    from .limits import DeploymentLimits
    from .router import Router

__all__ = ["ConfigError", "GatewayConfig", "RedisSettings", "load_config", "parse_config"]

ENV_PREFIX = "os.environ/"
_LIMIT_PARAMS = ("model", "rpm", "tpm", "max_parallel_requests", "weight")
_NETWORK_PARAMS = ("timeout", "stream_timeout", "max_retries")
#: How a missing key is said, where "needs <key>" would not do.
_ABSENT = {
    "model_list": "has no model_list: list at least one deployment",
    "litellm_params": "has no litellm_params",
}


def _url_option(provider: type[AsyncGeneratorProvider]) -> SetupOption | None:
    """The set-up option `api_base` fills: a network provider's first that is not a secret."""
    if not provider.uses_network:
        return None
    return next((o for o in provider.setup_options if not o.secret), None)


def _key_option(provider: type[AsyncGeneratorProvider]) -> SetupOption | None:
    """The set-up option `api_key` fills: its secret one, if it has one."""
    return next((o for o in provider.setup_options if o.secret), None)


def _params(provider: type[AsyncGeneratorProvider]) -> tuple[str, ...]:
    """The litellm_params a `<name>/...` deployment of this provider takes.

    Asked of the provider, not listed per provider: a network provider takes
    `api_base` (its URL option), `api_key` (its secret option, if any) and the
    time limits; one in process takes its own set-up options by name
    (`model_path`).
    """
    if not provider.uses_network:
        return (*_LIMIT_PARAMS, *(option.name for option in provider.setup_options))
    options = {"api_base": _url_option(provider), "api_key": _key_option(provider)}
    return (*_LIMIT_PARAMS, *_NETWORK_PARAMS, *(k for k, o in options.items() if o is not None))


class ConfigError(InvalidRequestError):
    """The config file says something we do not do, or says it wrongly; the message names where."""


@dataclass(frozen=True)
class RedisSettings:
    """Where shared limits live: `redis_url`, else `redis_host`, `redis_port`, `redis_password`."""

    host: str | None = None
    port: int = 6379
    password: str | None = field(default=None, repr=False)
    given_url: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """A `redis://` URL for `redis.asyncio.from_url` (holds the password: never log it)."""
        if self.given_url:
            return self.given_url
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"


@dataclass(frozen=True)
class GatewayConfig:
    """What a config file describes: deployments, how to route over them, Redis, the key."""

    deployments: tuple[Deployment, ...]
    router_settings: RouterSettings
    redis: RedisSettings | None = None
    master_key: str | None = field(default=None, repr=False)
    source: str = "config"

    def models(self) -> list[str]:
        return list(dict.fromkeys(d.model_name for d in self.deployments))

    def router(
        self, *, limits: DeploymentLimits | None = None, rng: random.Random | None = None
    ) -> Router:
        """A router over these deployments (`limits`: the rate limiter, shared or not)."""
        from .router import Router

        return Router(self.deployments, self.router_settings, limits=limits, rng=rng)


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and check a YAML (or JSON) config file; `ConfigError` says what is wrong."""
    source = str(path)
    try:
        yaml = importlib.import_module("yaml")  # the server extra's; untyped
    except ImportError:
        raise ConfigError(
            "reading a config file needs PyYAML: pip install 'codelinkava[server]'"
        ) from None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {source}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from None
    return parse_config(data, source=source)


def parse_config(
    data: Any, *, source: str = "config", environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Check an already-parsed config (a mapping) and build the `GatewayConfig`."""
    if data is None:
        raise ConfigError(f"{source} is empty: it needs a model_list")
    try:
        config = _File.model_validate(
            data, context={"environ": os.environ if environ is None else environ}
        )
    except pydantic.ValidationError as exc:
        # `from None`: pydantic's own text quotes the input, secrets included.
        raise _config_error(exc.errors()[0], source) from None
    router = config.router_settings
    return GatewayConfig(
        deployments=tuple(entry.deployment() for entry in config.model_list),
        router_settings=router.settings(),
        redis=router.redis(),
        master_key=config.general_settings.master_key,
        source=source,
    )


def _fail(problem: str, at: str = "") -> PydanticCustomError:
    """Our wording for a value's problem; `at`: the path below that value, if deeper."""
    # As context, not as the template: a quoted value may hold braces.
    return PydanticCustomError("config", "{problem}", {"problem": problem, "at": at})


def _config_error(error: ErrorDetails, source: str) -> ConfigError:
    """The one place pydantic's errors become ours, named by their path.

    `model_list[2].litellm_params.rpm must be ...`; a missing key is said of its
    parent (`model_list[0] needs model_name`); the top level is "the config".
    """
    loc, context = list(error["loc"]), error.get("ctx") or {}
    if error["type"] == "missing":
        key = str(loc.pop())
        problem = _ABSENT.get(key, f"needs {key}")
    else:
        problem = context.get("problem", error["msg"])
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    where = (where + context.get("at", "")).lstrip(".") or "the config"
    return ConfigError(f"{source}: {where} {problem}")


def _context(info: ValidationInfo) -> dict[str, Any]:
    assert isinstance(info.context, dict)  # parse_config always gives one
    return info.context


def _env(value: Any, info: ValidationInfo) -> Any:
    """`os.environ/NAME` -> the variable's value, from the environment parse_config was given."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value.removeprefix(ENV_PREFIX)
        resolved = _context(info)["environ"].get(name)
        if not resolved:
            raise _fail(f"reads the environment variable {name}, which is not set")
        return resolved
    return value


def _text(*, secret: bool = False, required: bool = False) -> BeforeValidator:
    """A non-empty string, maybe from the environment; null reads like the key not given."""

    def check(value: Any, info: ValidationInfo) -> str | None:
        if value is None:
            if required:  # said of the parent: `model_list[0] needs model_name`
                raise PydanticCustomError("missing", "missing")
            return None
        value = _env(value, info)
        if not isinstance(value, str) or not value.strip():
            raise _fail("must be a non-empty string" + ("" if secret else f", got {value!r}"))
        return value

    return BeforeValidator(check)


def _number(minimum: float, *, inclusive: bool = True, whole: bool = False) -> BeforeValidator:
    """A number, maybe from the environment or written as a string ("30"); null: not given."""

    def check(value: Any, info: ValidationInfo) -> float | None:
        if value is None:
            return None
        value = _env(value, info)
        if isinstance(value, str) and (not whole or value.strip().isdigit()):
            with contextlib.suppress(ValueError):
                value = int(value) if whole else float(value)
        if whole:
            problem = whole_problem(value, int(minimum))
        else:
            problem = number_problem(value, minimum, inclusive=inclusive)
        if problem is not None:
            raise _fail(problem)
        return value if whole else float(value)

    return BeforeValidator(check)


_Text = Annotated[str | None, _text()]
#: Never quoted in a message, never in a repr: api_key, master_key, redis_password, redis_url.
_Secret = Annotated[str | None, _text(secret=True), Field(repr=False)]
_Required = Annotated[str, _text(required=True)]
_Count0 = Annotated[int | None, _number(0, whole=True)]
_Count1 = Annotated[int | None, _number(1, whole=True)]
_Seconds = Annotated[float | None, _number(0.0)]
_Timeout = Annotated[float | None, _number(0, inclusive=False)]


def _known_group(model: Any, info: ValidationInfo, at: str) -> None:
    """Fallbacks and hedging name model groups; an unknown name is a typo, not a no-op."""
    groups = _context(info).get("groups")  # None: model_list failed, which is said first
    if groups is not None and model not in groups:
        raise _fail(f"names the model {model!r}, which no model_list entry serves", at)


def _deployment_list(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("missing", "missing")
    if not isinstance(value, list) or not value:
        raise _fail("must be a non-empty list of deployments")
    return value


def _fallbacks(value: Any, info: ValidationInfo) -> dict[str, tuple[str, ...]]:
    """LiteLLM's shape, `[{"model": ["fallback", ...]}, ...]`, folded into one mapping."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _fail('must be a list like [{"my-model": ["other-model"]}]')
    out: dict[str, tuple[str, ...]] = {}
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not item:
            raise _fail('must be a mapping like {"a": ["b"]}', f"[{index}]")
        for model, targets in item.items():
            at = f"[{index}].{model}"
            _known_group(model, info, at)
            names = [targets] if isinstance(targets, str) else targets
            if not isinstance(names, list) or not all(isinstance(t, str) for t in names):
                raise _fail("must be a list of model names", at)
            for name in names:
                _known_group(name, info, at)
            out[model] = out.get(model, ()) + tuple(names)
    return out


def _hedging(value: Any, info: ValidationInfo) -> Any:
    """`{group: seconds | "p95" | {delay: seconds | "p95", max_delay: seconds}}`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail('must map model names to a delay: {"my-model": {"delay": "p95"}}')
    for model in value:
        _known_group(model, info, f".{model}")
    return {m: spec if isinstance(spec, Mapping) else {"delay": spec} for m, spec in value.items()}


def _delay(value: Any) -> float | None:
    if value == "p95":
        return None
    if number_problem(value) is not None:
        raise _fail(f'must be seconds >= 0 or "p95", got {value!r}')
    return float(value)


# sections ----------------------------------------------------------------------------


def _only(data: Mapping[Any, Any], keys: Sequence[str], whose: str = "") -> dict[Any, Any]:
    """Unknown keys are refused before the values: they explain more than what follows."""
    for key in data:
        if key not in keys:
            raise _fail(f"is not supported{whose} (supported: {', '.join(keys)})", f".{key}")
    return dict(data)


class _Section(BaseModel):
    """A mapping whose every key we know: LiteLLM's others are refused, never ignored."""

    model_config = pydantic.ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any, info: ValidationInfo) -> Any:  # info: as _Params' needs
        if not isinstance(data, Mapping):
            raise _fail("must be a mapping of keys to values")
        return _only(data, tuple(cls.model_fields))


class _Params(_Section):
    """litellm_params: which keys it takes depends on the provider its `model` names."""

    model: _Required
    rpm: _Count1 = None
    tpm: _Count1 = None
    max_parallel_requests: _Count1 = None
    weight: Annotated[float | None, _number(0.0, inclusive=False)] = None
    timeout: _Timeout = None
    stream_timeout: _Timeout = None
    max_retries: _Count0 = None
    api_base: _Text = None
    api_key: _Secret = None
    #: The set-up options of in-process providers (LocalModel's); a test checks all are here.
    model_path: _Text = None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any, info: ValidationInfo) -> Any:  # replaces _Section's
        if not isinstance(data, Mapping):
            raise _fail("must be a mapping")
        try:
            model = _env(data.get("model"), info)
        except PydanticCustomError:
            model = None
        if not isinstance(model, str) or not model.strip():
            return data  # `model`'s own check says what is wrong
        prefix, _, upstream = model.partition("/")
        if prefix not in PROVIDERS or not upstream:
            raise _fail(
                f"is {model!r}; write <provider>/<model> with provider one of "
                f"{', '.join(PROVIDERS)} (openai: any OpenAI-compatible server, "
                "vLLM, llama.cpp, Ollama's /v1; anthropic: any Messages API server)",
                ".model",
            )
        provider = PROVIDERS[prefix]
        data = _only(data, _params(provider), f" for {prefix}/ models")
        url = _url_option(provider)
        if url is not None and url.default is None and data.get("api_base") is None:
            raise _fail(f"needs api_base ({provider.__name__}'s {url.help})")
        return data

    @property
    def provider(self) -> type[AsyncGeneratorProvider]:
        return PROVIDERS[self.model.partition("/")[0]]

    def options(self) -> dict[str, Any]:
        """What the provider is set up with: its URL, key and time limits, or its own options."""
        provider = self.provider
        if not provider.uses_network:
            return {o.name: v for o in provider.setup_options if (v := getattr(self, o.name))}
        options: dict[str, Any] = {}
        if (url := _url_option(provider)) is not None:
            # Never the environment's: a deployment says where it goes, or goes to the
            # provider's public endpoint (`anthropic/...` to Anthropic's).
            options[url.name] = self.api_base or url.default
        if (key := _key_option(provider)) is not None and self.api_key:
            options[key.name] = self.api_key
        if self.timeout is not None:
            options["timeout"] = self.timeout
        # The router moves to another deployment on a failure; retrying the same one
        # first would only delay that.
        options["max_retries"] = self.max_retries or 0
        return options


class _ModelInfo(_Section):
    id: _Text = None


class _Entry(_Section):
    model_name: _Required
    litellm_params: _Params
    model_info: _ModelInfo = Field(default_factory=_ModelInfo)
    _name: str = pydantic.PrivateAttr("")  # given by _File, which sees the whole list

    def deployment(self) -> Deployment:
        params, provider = self.litellm_params, self.litellm_params.provider
        limits = {"stream_timeout", "weight", "rpm", "tpm", "max_parallel_requests"}
        return Deployment(
            name=self._name,
            model_name=self.model_name,
            provider=provider,
            upstream_model="" if provider.single_model else params.model.partition("/")[2],
            options=params.options(),
            **params.model_dump(include=limits, exclude_none=True),  # else Deployment's defaults
        )


class _Hedge(_Section):
    delay: Annotated[float | None, BeforeValidator(_delay)] = None  # None: the p95
    max_delay: _Seconds = None


class _Router(_Section):
    routing_strategy: _Text = None
    num_retries: _Count0 = None
    fallbacks: Annotated[dict[str, tuple[str, ...]], BeforeValidator(_fallbacks)] = {}
    allowed_fails: _Count0 = None
    cooldown_time: _Seconds = None
    hedging: Annotated[dict[str, _Hedge], BeforeValidator(_hedging)] = {}
    redis_host: _Text = None
    redis_port: _Count1 = None
    redis_password: _Secret = None
    redis_url: _Secret = None

    @pydantic.field_validator("routing_strategy")
    @classmethod
    def _supported(cls, strategy: str | None) -> str | None:
        if strategy is not None and (problem := strategy_problem(strategy)) is not None:
            raise _fail(problem)
        return strategy

    @model_validator(mode="after")
    def _one_redis(self) -> _Router:
        url, host = self.redis_url, self.redis_host
        port, password = self.redis_port, self.redis_password
        if url and (host or port is not None or password):
            raise _fail("gives redis_url and redis_host/port/password: give one of them")
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise _fail("must start with redis://, rediss:// or unix://", ".redis_url")
        if host is None and (port is not None or password):
            raise _fail("gives redis_port or redis_password without redis_host")
        if port is not None and port > 65535:
            raise _fail(f"must be a port number, got {port}", ".redis_port")
        return self

    def settings(self) -> RouterSettings:
        """Only what the file gives: RouterSettings' defaults (LiteLLM's) fill the rest."""
        given = {"routing_strategy", "num_retries", "allowed_fails", "cooldown_time"}
        return RouterSettings(
            **self.model_dump(include=given, exclude_none=True),
            fallbacks=self.fallbacks,
            hedging={
                m: HedgePolicy(**h.model_dump(exclude_none=True)) for m, h in self.hedging.items()
            },
        )

    def redis(self) -> RedisSettings | None:
        if self.redis_url:
            return RedisSettings(given_url=self.redis_url)
        if self.redis_host is None:
            return None
        port = 6379 if self.redis_port is None else self.redis_port
        return RedisSettings(host=self.redis_host, port=port, password=self.redis_password)


class _General(_Section):
    master_key: _Secret = None


class _File(_Section):
    model_list: Annotated[list[_Entry], BeforeValidator(_deployment_list)]
    router_settings: _Router = Field(default_factory=_Router)
    general_settings: _General = Field(default_factory=_General)

    @pydantic.field_validator("model_list")
    @classmethod
    def _named(cls, entries: list[_Entry], info: ValidationInfo) -> list[_Entry]:
        """model_info.id, else `<model_name>-<n>` for the n-th deployment of its group."""
        per_group: Counter[str] = Counter()
        for index, entry in enumerate(entries):
            per_group[entry.model_name] += 1
            entry._name = entry.model_info.id or f"{entry.model_name}-{per_group[entry.model_name]}"
            if entry._name in {e._name for e in entries[:index]}:
                raise _fail(f"{entry._name!r} is used twice", f"[{index}].model_info.id")
        # For the fallbacks and hedging, validated after: pydantic keeps the fields' order.
        _context(info)["groups"] = set(per_group)
        return entries
