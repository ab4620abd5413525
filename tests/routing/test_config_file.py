"""The LiteLLM-style config file: what it accepts, and that it names everything it refuses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from codelinkava.errors import InvalidRequestError
from codelinkava.providers import PROVIDERS, CodeLinkAva, LocalModel, OpenAICompatible
from codelinkava.routing import ConfigError, HedgePolicy, RouterSettings, load_config, parse_config

THREE_UPSTREAMS = textwrap.dedent(
    """
    model_list:
      - model_name: qwen
        litellm_params:
          model: openai/Qwen2.5-7B-Instruct
          api_base: http://10.0.0.1:8000/v1
          api_key: os.environ/VLLM_KEY
          rpm: 600
          tpm: 100000
          max_parallel_requests: 8
          timeout: 30
          stream_timeout: 10
        model_info: {id: vllm-a}
      - model_name: qwen
        litellm_params:
          model: openai/Qwen2.5-7B-Instruct
          api_base: http://10.0.0.2:8000/v1
          weight: 2
      - model_name: small
        litellm_params: {model: local/smollm2, model_path: /models/any.gguf}
      - model_name: ava
        litellm_params: {model: codelinkava/gpt-3.5-turbo, api_base: http://h/api/chat}
    router_settings:
      routing_strategy: least-busy
      num_retries: 1
      allowed_fails: 2
      cooldown_time: 30
      fallbacks: [{qwen: [small, ava]}]
      hedging: {qwen: {delay: p95, max_delay: 1.5}, ava: 0.25}
      redis_host: 127.0.0.1
      redis_port: 6380
      redis_password: os.environ/REDIS_PASSWORD
    general_settings:
      master_key: os.environ/GATEWAY_KEY
    """
)
ENV = {"VLLM_KEY": "sk-vllm-secret", "REDIS_PASSWORD": "p@ss/word", "GATEWAY_KEY": "sk-master"}


def parse(text: str, environ: dict[str, str] | None = None) -> Any:
    import yaml

    return parse_config(yaml.safe_load(text), source="config.yaml", environ=environ or {})


def minimal(**params: Any) -> dict[str, Any]:
    litellm_params = {"model": "openai/m", "api_base": "http://127.0.0.1:9/v1", **params}
    return {"model_list": [{"model_name": "m", "litellm_params": litellm_params}]}


def test_reads_three_upstreams_a_local_model_and_the_seed_wire() -> None:
    config = parse(THREE_UPSTREAMS, ENV)
    a, b, small, ava = config.deployments
    assert config.models() == ["qwen", "small", "ava"]
    assert (a.name, b.name, small.name, ava.name) == ("vllm-a", "qwen-2", "small-1", "ava-1")
    assert a.provider is OpenAICompatible and a.upstream_model == "Qwen2.5-7B-Instruct"
    assert a.options == {
        "base_url": "http://10.0.0.1:8000/v1",
        "api_key": "sk-vllm-secret",
        "timeout": 30.0,
        "max_retries": 0,
    }
    assert (a.rpm, a.tpm, a.max_parallel_requests, a.stream_timeout) == (600, 100000, 8, 10.0)
    assert b.weight == 2.0 and "api_key" not in b.options
    assert small.provider is LocalModel and small.options == {"model_path": "/models/any.gguf"}
    assert small.upstream_model == ""
    assert ava.provider is CodeLinkAva and ava.options["api_url"] == "http://h/api/chat"
    settings = config.router_settings
    assert settings.routing_strategy == "least-busy"
    assert (settings.num_retries, settings.allowed_fails, settings.cooldown_time) == (1, 2, 30.0)
    assert settings.fallbacks == {"qwen": ("small", "ava")}
    assert settings.hedging == {
        "qwen": HedgePolicy(delay=None, max_delay=1.5),
        "ava": HedgePolicy(delay=0.25),
    }
    assert config.redis is not None
    assert config.redis.url == "redis://:p%40ss%2Fword@127.0.0.1:6380/0"
    assert config.master_key == "sk-master"


def test_secrets_never_show_in_repr() -> None:
    config = parse(THREE_UPSTREAMS, ENV)
    shown = repr(config)
    for secret in ENV.values():
        assert secret not in shown
    assert "vllm-a" in shown  # the repr still says what it is


def test_stream_timeout_replaces_timeout_only_when_streaming() -> None:
    deployment = parse(THREE_UPSTREAMS, ENV).deployments[0]
    assert deployment.call_options(stream=True)["timeout"] == 10.0
    assert deployment.call_options(stream=False)["timeout"] == 30.0


def test_defaults_match_litellm() -> None:
    config = parse_config(minimal(), environ={})
    settings = config.router_settings
    assert settings.routing_strategy == "simple-shuffle"
    assert (settings.num_retries, settings.allowed_fails, settings.cooldown_time) == (2, 3, 5.0)
    assert config.redis is None and config.master_key is None


def test_a_network_deployment_needs_its_api_base() -> None:
    entry = {"model_name": "m", "litellm_params": {"model": "openai/gpt-4o"}}
    with pytest.raises(ConfigError, match=r"needs api_base \(OpenAICompatible's base URL"):
        parse_config({"model_list": [entry]}, environ={})


def test_redis_url() -> None:
    data = {**minimal(), "router_settings": {"redis_url": "redis://h:1/2"}}
    config = parse_config(data, environ={})
    assert config.redis is not None and config.redis.url == "redis://h:1/2"


def test_load_config_reads_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(THREE_UPSTREAMS)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    config = load_config(path)
    assert config.source == str(path)
    assert len(config.deployments) == 4
    assert config.deployments[0].options["api_key"] == "sk-vllm-secret"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {**minimal(), "litellm_settings": {}}, r"litellm_settings is not supported", id="top"
        ),
        pytest.param(
            {**minimal(), "router_settings": {"redis_ttl": 3}},
            r"router_settings\.redis_ttl is not supported",
            id="router",
        ),
        pytest.param(
            {**minimal(), "general_settings": {"database_url": "x"}},
            r"general_settings\.database_url is not supported",
            id="general",
        ),
        pytest.param(
            minimal(extra_headers={"a": "b"}),
            r"model_list\[0\]\.litellm_params\.extra_headers is not supported for openai/",
            id="param",
        ),
        pytest.param(
            {
                "model_list": [
                    {"model_name": "m", "litellm_params": {"model": "local/x", "timeout": 3}}
                ]
            },
            r"model_list\[0\]\.litellm_params\.timeout is not supported for local/",
            id="local-timeout",
        ),
        pytest.param(
            {"model_list": [{"model_name": "m", "litellm_params": {"model": "azure/gpt"}}]},
            r"model_list\[0\]\.litellm_params\.model is 'azure/gpt'; write <provider>/<model>",
            id="prefix",
        ),
        pytest.param(
            {"model_list": [{"model_name": "m", "litellm_params": {"model": "codelinkava/x"}}]},
            r"model_list\[0\]\.litellm_params needs api_base",
            id="codelinkava-url",
        ),
        pytest.param(
            {**minimal(), "router_settings": {"routing_strategy": "cost-based-routing"}},
            r"'cost-based-routing' is not supported",
            id="strategy",
        ),
        pytest.param(
            {**minimal(), "router_settings": {"fallbacks": [{"m": ["nope"]}]}},
            r"fallbacks\[0\]\.m names the model 'nope'",
            id="fallback-name",
        ),
        pytest.param(
            {**minimal(), "router_settings": {"hedging": {"m": {"after": 1}}}},
            r"hedging\.m\.after is not supported",
            id="hedge-key",
        ),
        pytest.param(
            {**minimal(), "router_settings": {"hedging": {"m": "soon"}}},
            r"hedging\.m\.delay must be seconds",
            id="hedge-delay",
        ),
        pytest.param(minimal(rpm=0), r"rpm must be a whole number >= 1, got 0", id="rpm"),
        pytest.param(minimal(timeout="fast"), r"timeout must be a number > 0", id="timeout"),
        pytest.param({"model_list": []}, r"model_list must be a non-empty list", id="empty-list"),
        pytest.param({"router_settings": {}}, r"has no model_list", id="no-list"),
        pytest.param(
            {**minimal(), "router_settings": {"redis_url": "redis://h", "redis_host": "h"}},
            r"give one of them",
            id="redis-both",
        ),
        pytest.param(
            {**minimal(), "router_settings": {"redis_port": 1}},
            r"without redis_host",
            id="redis-port-alone",
        ),
    ],
)
def test_refuses_with_a_message_naming_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, source="config.yaml", environ={})


def test_a_missing_environment_variable_is_named_and_its_value_never_quoted() -> None:
    with pytest.raises(ConfigError, match="environment variable NOT_SET, which is not set"):
        parse_config(minimal(api_key="os.environ/NOT_SET"), environ={})
    with pytest.raises(ConfigError) as info:
        parse_config(minimal(api_key=["sk-leaky"]), environ={})
    assert "api_key must be a non-empty string" in str(info.value)
    assert "sk-leaky" not in str(info.value)


def test_duplicate_deployment_ids_are_refused() -> None:
    params = {"model": "openai/x", "api_base": "http://127.0.0.1:9/v1"}
    entry = {"model_name": "m", "litellm_params": params, "model_info": {"id": "a"}}
    with pytest.raises(ConfigError, match="'a' is used twice"):
        parse_config({"model_list": [entry, entry]}, environ={})


def test_a_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model_list: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml is not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(tmp_path / "empty.yaml")


def test_config_builds_a_router_serving_its_model_names() -> None:
    router = parse(THREE_UPSTREAMS, ENV).router()
    assert router.models() == ["qwen", "small", "ava"]
    assert [s.name for s in router.deployments("qwen")] == ["vllm-a", "qwen-2"]


def test_numbers_may_be_strings_or_come_from_the_environment() -> None:
    data = minimal(rpm="os.environ/RPM", timeout="2.5", max_retries=" 3 ")
    (deployment,) = parse_config(data, environ={"RPM": "12"}).deployments
    assert deployment.rpm == 12
    assert (deployment.options["timeout"], deployment.options["max_retries"]) == (2.5, 3)
    with pytest.raises(ConfigError, match=r"rpm must be a whole number >= 1, got '1\.5'"):
        parse_config(minimal(rpm="1.5"), environ={})
    with pytest.raises(ConfigError, match=r"\.rpm must be a whole number >= 1, got 2\.0"):
        parse_config(minimal(rpm=2.0), environ={})


def test_an_unknown_key_is_named_before_a_wrong_value_beside_it() -> None:
    with pytest.raises(ConfigError, match=r"litellm_params\.zz is not supported for openai/"):
        parse_config(minimal(rpm=0, zz=1), environ={})
    with pytest.raises(ConfigError, match=r"litellm_params needs api_base"):
        parse_config(
            {
                "model_list": [
                    {"model_name": "m", "litellm_params": {"model": "openai/m", "rpm": 0}}
                ]
            },
            environ={},
        )


def test_a_null_key_reads_like_a_missing_one() -> None:
    with pytest.raises(ConfigError, match=r"^config\.yaml: model_list\[0\] needs model_name$"):
        parse_config({"model_list": [{"model_name": None}]}, source="config.yaml", environ={})
    with pytest.raises(ConfigError, match=r"^config: the config has no model_list"):
        parse_config({"model_list": None}, environ={})


@pytest.mark.parametrize(
    "section",
    [
        {"general_settings": {"master_key": ["sk-leaky"]}},
        {"router_settings": {"redis_host": "h", "redis_password": ["sk-leaky"]}},
        {"router_settings": {"redis_url": "http://:sk-leaky@h"}},
        {"router_settings": {"redis_url": ["sk-leaky"]}},
    ],
)
def test_no_message_quotes_a_secret(section: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**minimal(), **section}, environ={})
    assert "sk-leaky" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # nor pydantic's text


def test_every_in_process_provider_takes_its_own_setup_options() -> None:
    for prefix, provider in PROVIDERS.items():
        if provider.uses_network:
            continue
        options = {option.name: f"/models/{option.name}" for option in provider.setup_options}
        entry = {"model_name": "m", "litellm_params": {"model": f"{prefix}/x", **options}}
        (deployment,) = parse_config({"model_list": [entry]}, environ={}).deployments
        assert deployment.options == options


def test_router_settings_and_the_config_file_share_one_rule_and_its_words() -> None:
    with pytest.raises(
        InvalidRequestError, match=r"^cooldown_time must be a number >= 0\.0, got -1$"
    ):
        RouterSettings(cooldown_time=-1)
    with pytest.raises(
        ConfigError, match=r": router_settings\.cooldown_time must be a number >= 0\.0, got -1$"
    ):
        parse_config({**minimal(), "router_settings": {"cooldown_time": -1}}, environ={})
    with pytest.raises(InvalidRequestError, match=r"^hedging max_delay must be a number >= 0\.0"):
        HedgePolicy(max_delay=float("inf"))


def test_routing_needs_pydantic_only_once_a_config_is_read() -> None:
    code = (
        "import json, sys\n"
        "from codelinkava.routing import Router, RouterSettings, HedgePolicy\n"
        "before = 'pydantic' in sys.modules\n"
        "from codelinkava.routing import parse_config\n"
        "print(json.dumps([before, 'pydantic' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == [False, True]
