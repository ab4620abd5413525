"""The config file: the subset of LiteLLM's proxy config that fits us, read strictly.

```yaml
model_list:
  - model_name: qwen                      # what clients ask for; several entries share it
    litellm_params:
      model: openai/Qwen2.5-7B-Instruct   # openai/<upstream model>: any OpenAI-compatible server
      api_base: http://10.0.0.1:8000/v1
      api_key: os.environ/VLLM_KEY        # a value read from the environment
      rpm: 600                            # also tpm, max_parallel_requests, weight
      timeout: 30                         # also stream_timeout, max_retries
    model_info: {id: vllm-a}              # the deployment's name in metrics and logs
  - model_name: small
    litellm_params: {model: local/smollm2, model_path: /models/any.gguf}   # the embedded model
  - model_name: ava
    litellm_params: {model: codelinkava/gpt-3.5-turbo, api_base: http://host/api/chat}
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
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import InvalidRequestError
from ..providers import PROVIDERS
from ..providers.base import AsyncGeneratorProvider, SetupOption
from .deployment import Deployment
from .settings import HedgePolicy, RouterSettings
from .strategies import STRATEGIES

if TYPE_CHECKING:
    import random

    from .limits import DeploymentLimits
    from .router import Router

__all__ = ["ConfigError", "GatewayConfig", "RedisSettings", "load_config", "parse_config"]

ENV_PREFIX = "os.environ/"
_SECRETS = frozenset({"api_key", "master_key", "redis_password", "redis_url"})

_TOP_KEYS = ("model_list", "router_settings", "general_settings")
_ENTRY_KEYS = ("model_name", "litellm_params", "model_info")
_MODEL_INFO_KEYS = ("id",)
_ROUTER_KEYS = (
    "routing_strategy",
    "num_retries",
    "fallbacks",
    "allowed_fails",
    "cooldown_time",
    "hedging",
    "redis_host",
    "redis_port",
    "redis_password",
    "redis_url",
)
_GENERAL_KEYS = ("master_key",)
_HEDGE_KEYS = ("delay", "max_delay")
_LIMIT_PARAMS = ("model", "rpm", "tpm", "max_parallel_requests", "weight")
_NETWORK_PARAMS = ("timeout", "stream_timeout", "max_retries")


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
    params = list(_LIMIT_PARAMS)
    if provider.uses_network:
        params += _NETWORK_PARAMS
        if _url_option(provider) is not None:
            params.append("api_base")
        if _key_option(provider) is not None:
            params.append("api_key")
    else:
        params += [option.name for option in provider.setup_options]
    return tuple(params)


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
    reader = _Reader(source, os.environ if environ is None else environ)
    return reader.config(data)


class _Reader:
    """Reads one config, naming every mistake by its path (`model_list[2].litellm_params.rpm`)."""

    def __init__(self, source: str, environ: Mapping[str, str]) -> None:
        self.source = source
        self.environ = environ

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where} {problem}")

    # sections ------------------------------------------------------------------

    def config(self, data: Any) -> GatewayConfig:
        if data is None:
            raise ConfigError(f"{self.source} is empty: it needs a model_list")
        top = self.mapping(data, "the config", _TOP_KEYS)
        deployments = self.model_list(top.get("model_list"))
        groups = {d.model_name for d in deployments}
        router = self.mapping(top.get("router_settings", {}), "router_settings", _ROUTER_KEYS)
        general = self.mapping(top.get("general_settings", {}), "general_settings", _GENERAL_KEYS)
        master_key = self.text(general, "master_key", "general_settings")
        return GatewayConfig(
            deployments=tuple(deployments),
            router_settings=self.router_settings(router, groups),
            redis=self.redis(router),
            master_key=master_key,
            source=self.source,
        )

    def model_list(self, value: Any) -> list[Deployment]:
        if value is None:
            raise self.fail("the config", "has no model_list: list at least one deployment")
        if not isinstance(value, list) or not value:
            raise self.fail("model_list", "must be a non-empty list of deployments")
        deployments = []
        names: set[str] = set()
        per_group: dict[str, int] = {}
        for index, entry in enumerate(value):
            deployment = self.deployment(entry, f"model_list[{index}]", per_group)
            if deployment.name in names:
                raise self.fail(
                    f"model_list[{index}].model_info.id", f"{deployment.name!r} is used twice"
                )
            names.add(deployment.name)
            deployments.append(deployment)
        return deployments

    def deployment(self, value: Any, where: str, per_group: dict[str, int]) -> Deployment:
        entry = self.mapping(value, where, _ENTRY_KEYS)
        model_name = self.text(entry, "model_name", where, required=True)
        assert model_name is not None
        params_where = f"{where}.litellm_params"
        if "litellm_params" not in entry:
            raise self.fail(where, "has no litellm_params")
        raw = entry["litellm_params"]
        if not isinstance(raw, Mapping):
            raise self.fail(params_where, "must be a mapping")
        model = self.text(raw, "model", params_where, required=True)
        assert model is not None
        prefix, _, upstream = model.partition("/")
        provider = PROVIDERS.get(prefix)
        if provider is None or not upstream:
            raise self.fail(
                f"{params_where}.model",
                f"is {model!r}; write <provider>/<model> with provider one of "
                f"{', '.join(PROVIDERS)} (openai: any OpenAI-compatible server, "
                "vLLM, llama.cpp, Ollama's /v1)",
            )
        params = self.mapping(raw, params_where, _params(provider), f"for {prefix}/ models")
        info = self.mapping(entry.get("model_info", {}), f"{where}.model_info", _MODEL_INFO_KEYS)
        per_group[model_name] = per_group.get(model_name, 0) + 1
        name = self.text(info, "id", f"{where}.model_info") or (
            f"{model_name}-{per_group[model_name]}"
        )
        options = self.provider_options(provider, params, params_where)
        weight = self.number(params, "weight", params_where, minimum_exclusive=0.0)
        return Deployment(
            name=name,
            model_name=model_name,
            provider=provider,
            upstream_model="" if provider.single_model else upstream,
            options=options,
            stream_timeout=self.number(params, "stream_timeout", params_where, minimum_exclusive=0),
            weight=1.0 if weight is None else weight,
            rpm=self.whole(params, "rpm", params_where, minimum=1),
            tpm=self.whole(params, "tpm", params_where, minimum=1),
            max_parallel_requests=self.whole(params, "max_parallel_requests", params_where, 1),
        )

    def provider_options(
        self, provider: type[AsyncGeneratorProvider], params: Mapping[str, Any], where: str
    ) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if not provider.uses_network:
            for option in provider.setup_options:
                value = self.text(params, option.name, where)
                if value:
                    options[option.name] = value
            return options
        url = _url_option(provider)
        if url is not None:
            options[url.name] = self.text(
                params,
                "api_base",
                where,
                required=True,
                why=f"{provider.__name__}'s {url.help}",
            )
        key = _key_option(provider)
        api_key = self.text(params, "api_key", where) if key is not None else None
        if key is not None and api_key:
            options[key.name] = api_key
        timeout = self.number(params, "timeout", where, minimum_exclusive=0)
        if timeout is not None:
            options["timeout"] = timeout
        retries = self.whole(params, "max_retries", where, minimum=0)
        # The router moves to another deployment on a failure; retrying the same one
        # first would only delay that.
        options["max_retries"] = 0 if retries is None else retries
        return options

    def router_settings(self, section: Mapping[str, Any], groups: set[str]) -> RouterSettings:
        where = "router_settings"
        strategy = self.text(section, "routing_strategy", where) or "simple-shuffle"
        if strategy not in STRATEGIES:
            raise self.fail(
                f"{where}.routing_strategy",
                f"{strategy!r} is not supported; choose one of {', '.join(STRATEGIES)}",
            )
        settings = RouterSettings()
        num_retries = self.whole(section, "num_retries", where, minimum=0)
        allowed_fails = self.whole(section, "allowed_fails", where, minimum=0)
        cooldown_time = self.number(section, "cooldown_time", where, minimum=0.0)
        return RouterSettings(
            routing_strategy=strategy,
            num_retries=settings.num_retries if num_retries is None else num_retries,
            fallbacks=self.fallbacks(section.get("fallbacks"), groups),
            allowed_fails=settings.allowed_fails if allowed_fails is None else allowed_fails,
            cooldown_time=settings.cooldown_time if cooldown_time is None else cooldown_time,
            hedging=self.hedging(section.get("hedging"), groups),
        )

    def fallbacks(self, value: Any, groups: set[str]) -> dict[str, tuple[str, ...]]:
        """LiteLLM's shape: `[{"model": ["fallback", ...]}, ...]`."""
        where = "router_settings.fallbacks"
        if value is None:
            return {}
        if not isinstance(value, list):
            raise self.fail(where, 'must be a list like [{"my-model": ["other-model"]}]')
        out: dict[str, tuple[str, ...]] = {}
        for index, item in enumerate(value):
            if not isinstance(item, Mapping) or not item:
                raise self.fail(f"{where}[{index}]", 'must be a mapping like {"a": ["b"]}')
            for model, targets in item.items():
                here = f"{where}[{index}].{model}"
                self.known_group(model, groups, here)
                if isinstance(targets, str):
                    targets = [targets]
                if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                    raise self.fail(here, "must be a list of model names")
                for target in targets:
                    self.known_group(target, groups, here)
                out[model] = out.get(model, ()) + tuple(targets)
        return out

    def hedging(self, value: Any, groups: set[str]) -> dict[str, HedgePolicy]:
        """`{group: seconds | "p95" | {delay: seconds | "p95", max_delay: seconds}}`."""
        where = "router_settings.hedging"
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(
                where, 'must map model names to a delay: {"my-model": {"delay": "p95"}}'
            )
        out: dict[str, HedgePolicy] = {}
        for model, spec in value.items():
            here = f"{where}.{model}"
            self.known_group(model, groups, here)
            if not isinstance(spec, Mapping):
                spec = {"delay": spec}
            spec = self.mapping(spec, here, _HEDGE_KEYS)
            delay = spec.get("delay", "p95")
            if delay == "p95":
                delay = None
            elif (
                isinstance(delay, bool)
                or not isinstance(delay, int | float)
                or not (0 <= delay < math.inf)
            ):
                raise self.fail(f"{here}.delay", f'must be seconds >= 0 or "p95", got {delay!r}')
            max_delay = self.number(spec, "max_delay", here, minimum=0.0)
            policy = HedgePolicy(delay=None if delay is None else float(delay))
            if max_delay is not None:
                policy = HedgePolicy(delay=policy.delay, max_delay=max_delay)
            out[str(model)] = policy
        return out

    def redis(self, section: Mapping[str, Any]) -> RedisSettings | None:
        where = "router_settings"
        url = self.text(section, "redis_url", where)
        host = self.text(section, "redis_host", where)
        port = self.whole(section, "redis_port", where, minimum=1)
        password = self.text(section, "redis_password", where)
        if url and (host or port is not None or password):
            raise self.fail(where, "gives redis_url and redis_host/port/password: give one of them")
        if url:
            if not url.startswith(("redis://", "rediss://", "unix://")):
                raise self.fail(
                    f"{where}.redis_url", "must start with redis://, rediss:// or unix://"
                )
            return RedisSettings(given_url=url)
        if host is None:
            if port is not None or password:
                raise self.fail(where, "gives redis_port or redis_password without redis_host")
            return None
        if port is not None and port > 65535:
            raise self.fail(f"{where}.redis_port", f"must be a port number, got {port}")
        return RedisSettings(host=host, port=6379 if port is None else port, password=password)

    # values ----------------------------------------------------------------------------

    def mapping(
        self, value: Any, where: str, allowed: Sequence[str], context: str = ""
    ) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, "must be a mapping of keys to values")
        for key in value:
            if key not in allowed:
                hint = f" {context}" if context else ""
                raise self.fail(
                    f"{where}.{key}" if where != "the config" else str(key),
                    f"is not supported{hint} (supported: {', '.join(allowed)})",
                )
        return value

    def known_group(self, model: Any, groups: set[str], where: str) -> None:
        if model not in groups:
            raise self.fail(where, f"names the model {model!r}, which no model_list entry serves")

    def resolve(self, value: Any, key: str, where: str) -> Any:
        """`os.environ/NAME` -> the variable's value."""
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            resolved = self.environ.get(name)
            if not resolved:
                raise self.fail(
                    f"{where}.{key}", f"reads the environment variable {name}, which is not set"
                )
            return resolved
        return value

    def text(
        self,
        section: Mapping[str, Any],
        key: str,
        where: str,
        *,
        required: bool = False,
        why: str = "",
    ) -> str | None:
        if key not in section or section[key] is None:
            if required:
                reason = f" ({why})" if why else ""
                raise self.fail(where, f"needs {key}{reason}")
            return None
        value = self.resolve(section[key], key, where)
        if not isinstance(value, str) or not value.strip():
            shown = "" if key in _SECRETS else f", got {value!r}"
            raise self.fail(f"{where}.{key}", f"must be a non-empty string{shown}")
        return value

    def number(
        self,
        section: Mapping[str, Any],
        key: str,
        where: str,
        *,
        minimum: float | None = None,
        minimum_exclusive: float | None = None,
    ) -> float | None:
        if section.get(key) is None:
            return None
        value = self.resolve(section[key], key, where)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
        if ok and minimum is not None:
            ok = value >= minimum
        if ok and minimum_exclusive is not None:
            ok = value > minimum_exclusive
        if not ok:
            bound = f" >= {minimum}" if minimum is not None else ""
            bound += f" > {minimum_exclusive}" if minimum_exclusive is not None else ""
            raise self.fail(f"{where}.{key}", f"must be a number{bound}, got {value!r}")
        return float(value)

    def whole(
        self, section: Mapping[str, Any], key: str, where: str, minimum: int = 0
    ) -> int | None:
        if section.get(key) is None:
            return None
        value = self.resolve(section[key], key, where)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"{where}.{key}", f"must be a whole number >= {minimum}, got {value!r}")
        return value
