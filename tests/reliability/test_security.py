"""Security: the key, what reaches the logs, what a request may choose, and CORS.

- The key is compared with `hmac.compare_digest` (constant time); a wrong
  key of the same or of another length gets the same 401.
- With a key set, every route but /health needs it -- /docs and
  /openapi.json included -- whatever the method, and unknown paths too.
- At the default log level neither keys nor message contents reach the logs.
- No request field (body or header) can pick the upstream host, a proxy, or
  a GGUF path: the upstream that such a field names is never contacted.
- CORS is off unless `--cors-origin` names an origin.
"""

from __future__ import annotations

import asyncio
import hmac
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import codelinkava.server.middleware
from codelinkava import LocalModel
from codelinkava.config import LIBRARY_OPTIONS
from codelinkava.server import GatewaySettings
from codelinkava.server.chat_page import is_page_path
from support.live_gateway import LiveGateway, live_gateway
from support.scripted import Reply, ScriptedServer, running_server, sse

from .conftest import gateway_settings
from .support import MESSAGES, assert_error_shape, assert_http_error, call, start_serve

KEY = "sk-reliability-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def keyed(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    settings = gateway_settings(upstream.url("/v1"), api_key=KEY)
    with live_gateway(settings) as running:
        yield running


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# The key --------------------------------------------------------------------------

WRONG = {
    "same length": KEY[:-1] + ("0" if KEY[-1] != "0" else "1"),
    "shorter": KEY[:-1],
    "longer": KEY + "f",
    "a prefix": KEY[:8],
    "empty": "",
    "another key": "sk-" + "x" * 60,
    "the key twice": KEY + KEY,
}


@pytest.mark.parametrize("case", list(WRONG))
async def test_wrong_keys_of_any_length_get_the_same_401(
    keyed: LiveGateway, upstream: ScriptedServer, case: str
) -> None:
    upstream.reply(Reply(body=[sse("secret answer")]))
    before = len(upstream.requests)
    answer = await call(keyed.url, headers=bearer(WRONG[case]))
    error = assert_http_error(answer, 401)
    assert error["code"] == "invalid_api_key" and error["type"] == "authentication_error"
    assert answer.headers.get("www-authenticate") == "Bearer"
    assert len(upstream.requests) == before
    assert KEY not in answer.body.decode()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": KEY},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": f"Token {KEY}"},
        {"X-API-Key": KEY + "x"},
        {"X-API-Key": ""},
        {"Api-Key": KEY},
        {"Cookie": f"api_key={KEY}"},
    ],
    ids=[
        "none",
        "no scheme",
        "basic",
        "token",
        "wrong x-api-key",
        "empty x-api-key",
        "api-key",
        "cookie",
    ],
)
async def test_the_key_counts_only_as_a_bearer_token_or_x_api_key(
    keyed: LiveGateway, headers: dict[str, str]
) -> None:
    assert_http_error(await call(keyed.url, headers=headers), 401)
    assert_http_error(await call(keyed.url, f"/v1/models?api_key={KEY}", method="GET"), 401)


async def test_the_right_key_is_served(keyed: LiveGateway, upstream: ScriptedServer) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        upstream.reply(Reply(body=[sse("welcome")]))
        answer = await call(keyed.url, headers={"Authorization": f"{scheme} {KEY}"})
        assert answer.status == 200 and answer.text == "welcome"
    # Anthropic's clients (the SDK, Claude Code) send the key as `x-api-key`.
    upstream.reply(Reply(body=[sse("welcome")]))
    answer = await call(keyed.url, headers={"x-api-key": KEY})
    assert answer.status == 200 and answer.text == "welcome"


async def test_keys_are_compared_in_constant_time(
    keyed: LiveGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The code: AuthMiddleware compares with hmac.compare_digest. Proved here by a spy.
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(codelinkava.server.middleware.hmac, "compare_digest", spy)
    for key in (WRONG["same length"], WRONG["shorter"], KEY):
        await call(keyed.url, "/v1/models", method="GET", headers=bearer(key))
    assert [given for given, _key in compared] == [
        k.encode() for k in (WRONG["same length"], WRONG["shorter"], KEY)
    ]
    assert all(key == KEY.encode() for _given, key in compared)


def every_route(gateway: LiveGateway) -> list[str]:
    paths = {getattr(route, "path", "") for route in gateway.app.routes}
    paths |= {"/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect", "/v1/models",
              "/nowhere", "/v1/completions", "/v1/embeddings", "/health/", "//health",
              "/health/../v1/models", "/api/chat/"}  # fmt: skip
    return sorted(p for p in paths if p and p != "/health" and not is_page_path(p))


async def test_every_route_but_health_needs_the_key(keyed: LiveGateway) -> None:
    routes = every_route(keyed)
    assert {"/docs", "/openapi.json", "/v1/models", "/v1/chat/completions", "/api/chat"} <= set(
        routes
    )
    for path in routes:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"):
            answer = await call(keyed.url, path, method=method, data=b"{}")
            assert answer.status == 401, (method, path, answer)
            if method == "HEAD":
                continue
            if path.startswith("/v1/messages"):  # Anthropic's API, Anthropic's shape
                assert answer.json()["error"]["type"] == "authentication_error", answer
            else:
                assert_error_shape(answer.json())
    health = await call(keyed.url, "/health", method="GET")
    assert health.status == 200 and health.json()["status"] == "ok"
    # The key opens the documentation routes.
    for path in ("/docs", "/openapi.json", "/v1/models"):
        answer = await call(keyed.url, path, method="GET", headers=bearer(KEY))
        assert answer.status == 200, (path, answer)


async def test_options_without_a_key_reveals_nothing(keyed: LiveGateway) -> None:
    # OPTIONS passes the key check (browsers send CORS preflights without credentials).
    for path in ("/v1/models", "/openapi.json", "/docs", "/v1/chat/completions"):
        answer = await call(keyed.url, path, method="OPTIONS")
        assert answer.status in (401, 405), (path, answer)
        assert b"gpt" not in answer.body and b"openapi" not in answer.body


# Logs ----------------------------------------------------------------------------------


async def test_keys_and_messages_never_reach_the_logs(
    upstream: ScriptedServer, log_dir: Path
) -> None:
    upstream_key = "sk-upstream-SECRET-9f8e7d6c5b4a"
    gateway_key = "sk-gateway-SECRET-1a2b3c4d5e6f"
    wrong_key = "sk-wrong-SECRET-0a0b0c0d0e0f"
    secret = "SECRET-MESSAGE-the launch code is 0000"
    served = start_serve(
        log_dir,
        "--provider", "openai", "--base-url", upstream.url("/v1"), "--timeout", "1",
        "--max-retries", "0", "--api-key", gateway_key, "--cors-origin", "https://app.example",
        OPENAI_API_KEY=upstream_key,
    )  # fmt: skip
    try:
        good = bearer(gateway_key)
        conversation = {"model": "m", "messages": [{"role": "user", "content": secret}]}
        upstream.reply(Reply(body=[sse("an answer about ", secret)]))
        ok = await call(served.url, body={**conversation, "stream": True}, headers=good)
        assert ok.status == 200 and secret in ok.text
        assert upstream.requests[-1].headers["Authorization"] == f"Bearer {upstream_key}"
        await call(served.url, body={**conversation, "stream": False}, headers=good)
        assert_http_error(await call(served.url, body=conversation, headers=bearer(wrong_key)), 401)
        await call(served.url, data=b'{"messages": [{"role": "root", "content": "' +
                   secret.encode() + b'"}]}', headers=good)  # fmt: skip
        await call(served.url, data=secret.encode() + b"\xff", headers=good)
        for fault in (Reply(status=500, body=[b"upstream says: " + secret.encode()]),
                      Reply(body=[sse("x", done=False), b"data: {" + secret.encode() + b"\n\n"]),
                      Reply(before=[b"garbage"])):  # fmt: skip
            upstream.reply(fault)
            await call(served.url, body={**conversation, "stream": True}, headers=good)
        await call(served.url, f"/v1/models?key={wrong_key}", method="GET")
    finally:
        served.stop(signal.SIGTERM)
    output = served.output()
    assert "codelinkava gateway on" in output  # the log was captured
    for needle in (upstream_key, gateway_key, wrong_key, secret, "launch code", "SECRET"):
        assert needle not in output, f"{needle!r} is in the log:\n{output}"


# What a request may choose ---------------------------------------------------------------------

SMUGGLED_FIELDS = ("api_url", "base_url", "url", "endpoint", "proxy", "api_base", "host")


def smuggling_body(trap: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {field: trap for field in SMUGGLED_FIELDS}
    body.update(
        model="m",
        messages=MESSAGES,
        stream=True,
        headers={"Host": "trap"},
        extra_headers={"X-Target": trap},
        extra_body={"base_url": trap},
        model_path="/etc/passwd",
        api_key="sk-attacker",
        timeout=0.000001,
        max_retries=1000,
        **extra,
    )
    return body


@pytest.fixture(scope="module")
def trap() -> Iterator[ScriptedServer]:
    """The upstream a smuggled field would pick: it must never hear a thing."""
    with running_server() as server:
        yield server


@pytest.mark.parametrize("provider", ["openai", "codelinkava"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_no_request_field_or_header_picks_the_upstream(
    upstream: ScriptedServer, trap: ScriptedServer, provider: str, path: str
) -> None:
    upstream.reply(Reply(body=[sse("from the configured upstream")]))
    trap.reply(Reply(body=[sse("from the trap")]))
    option = "base_url" if provider == "openai" else "api_url"
    where = upstream.url("/v1") if provider == "openai" else upstream.url("/api/chat")
    settings = GatewaySettings(
        provider=provider,
        provider_options={option: where, "max_retries": 0},
        api_key=None,
        preload=False,  # nothing sent at start-up either (no model listing)
    )
    trap_url = trap.url("/v1")
    headers = {
        "X-Forwarded-Host": f"127.0.0.1:{trap.port}",
        "X-Upstream": trap_url,
        "OpenAI-Base-URL": trap_url,
        "Forwarded": f"host=127.0.0.1:{trap.port}",
    }
    before = len(upstream.requests)
    with live_gateway(settings) as gateway:
        # Each library option in a body is refused by name, and nothing is sent anywhere.
        for name in sorted(LIBRARY_OPTIONS):
            body = {"model": "m", "messages": MESSAGES, name: trap_url}
            refused = await call(gateway.url, path, body=body, headers=headers, within=10)
            error = assert_http_error(refused, 400)
            assert error["param"] == name, (name, error)
        refused = await call(
            gateway.url, path, body=smuggling_body(trap_url), headers=headers, within=10
        )
        assert assert_http_error(refused, 400)["param"] in LIBRARY_OPTIONS
        assert len(upstream.requests) == before
        # Fields no provider reads travel in the body, and still pick nothing.
        harmless = {k: v for k, v in smuggling_body(trap_url).items() if k not in LIBRARY_OPTIONS}
        answer = await call(gateway.url, path, body=harmless, headers=headers, within=10)
        assert answer.status == 200 and answer.text == "from the configured upstream", answer
        model_url = await call(
            gateway.url, path, body={"model": trap_url, "messages": MESSAGES}, within=10
        )
        assert model_url.status == 200, model_url
    assert trap.requests == []
    sent = upstream.requests[before]
    body = sent.json()
    for field in LIBRARY_OPTIONS:
        assert field not in body, (field, body)
    assert "sk-attacker" not in sent.headers.get("Authorization", "")
    assert all(trap_url not in value for value in sent.headers.values())


@pytest.fixture(scope="module")
def local_gateway() -> Iterator[LiveGateway]:
    with live_gateway(GatewaySettings(provider="local", api_key=None)) as running:
        yield running


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_no_request_field_picks_a_model_file(local_gateway: LiveGateway, path: str) -> None:
    files = ["/etc/passwd", "/proc/self/environ", "../../../../etc/shadow"]
    before = set(LocalModel._engines)
    for name in files:
        body = smuggling_body("http://127.0.0.1:9/v1", max_tokens=2)
        body["model_path"] = name
        body.pop("model")
        answer = await call(local_gateway.url, path, body=body, within=30)
        assert assert_http_error(answer, 400)["param"] in LIBRARY_OPTIONS
        alone = await call(
            local_gateway.url, path, body={"messages": MESSAGES, "model_path": name}, within=30
        )
        assert assert_http_error(alone, 400)["param"] == "model_path"
        as_model = await call(
            local_gateway.url, path, body={"model": name, "messages": MESSAGES}, within=30
        )
        error = assert_http_error(as_model, 404)
        assert error["code"] == "model_not_found"
    assert set(LocalModel._engines) == before
    assert not any(name in path for path in LocalModel._engines for name in files)


# CORS -----------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": "https://app.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_cors_is_off_by_default(gateway: LiveGateway, upstream: ScriptedServer) -> None:
    upstream.reply(Reply(body=[sse("hi")]))
    preflight = await call(gateway.url, "/v1/chat/completions", method="OPTIONS",
                           headers=PREFLIGHT)  # fmt: skip
    assert preflight.status >= 400
    answers = [
        preflight,
        await call(gateway.url, "/health", method="GET", headers={"Origin": "https://app.example"}),
        await call(gateway.url, headers={"Origin": "https://app.example"}),
    ]
    for answer in answers:
        assert not any(h.startswith("access-control-") for h in answer.headers), answer.headers


async def test_cors_allows_only_the_configured_origin(upstream: ScriptedServer) -> None:
    upstream.reply(Reply(body=[sse("hi")]))
    settings = gateway_settings(upstream.url("/v1"), cors_origins=("https://app.example",))
    with live_gateway(settings) as gateway:
        preflight = await call(gateway.url, "/v1/chat/completions", method="OPTIONS",
                               headers=PREFLIGHT)  # fmt: skip
        assert preflight.status == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        simple = await call(gateway.url, headers={"Origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        for origin in ("https://evil.example", "null", "https://app.example.evil.example"):
            other = await call(gateway.url, "/v1/chat/completions", method="OPTIONS",
                               headers={**PREFLIGHT, "Origin": origin})  # fmt: skip
            assert other.headers.get("access-control-allow-origin") != origin, other
            plain = await call(gateway.url, headers={"Origin": origin})
            assert "access-control-allow-origin" not in plain.headers


async def test_the_cors_flag_of_codelinkava_serve(upstream: ScriptedServer, log_dir: Path) -> None:
    args = ("--provider", "openai", "--base-url", upstream.url("/v1"), "--log-level", "warning")
    served = start_serve(log_dir, *args, "--cors-origin", "https://app.example")
    off = start_serve(log_dir, *args)
    try:
        on_answer, off_answer = await asyncio.gather(
            call(served.url, "/v1/chat/completions", method="OPTIONS", headers=PREFLIGHT),
            call(off.url, "/v1/chat/completions", method="OPTIONS", headers=PREFLIGHT),
        )
    finally:
        served.stop()
        off.stop()
    assert on_answer.headers.get("access-control-allow-origin") == "https://app.example"
    assert "access-control-allow-origin" not in off_answer.headers


async def test_a_refused_key_still_carries_cors_headers(upstream: ScriptedServer) -> None:
    # Otherwise a browser reports a CORS failure and the page never learns it was a 401.
    settings = gateway_settings(
        upstream.url("/v1"), cors_origins=("https://app.example",), api_key="k" * 32
    )
    before = len(upstream.requests)
    with live_gateway(settings) as gateway:
        refused = await call(gateway.url, headers={"Origin": "https://app.example"})
    assert refused.status == 401
    assert refused.headers["access-control-allow-origin"] == "https://app.example"
    assert len(upstream.requests) == before


def test_every_providers_set_up_options_are_reserved_even_a_later_ones() -> None:
    """The names a body may not carry come from the providers themselves: a provider
    written after start-up, with an option under a new name, is covered at once."""
    from codelinkava.providers import PROVIDERS, SetupOption
    from codelinkava.providers.base import reserved_option_names
    from codelinkava.providers.openai import OpenAICompatible

    for provider in PROVIDERS.values():
        for option in provider.setup_options:
            assert option.name in reserved_option_names(), (provider, option.name)
    assert reserved_option_names() >= LIBRARY_OPTIONS

    class Tenanted(OpenAICompatible):
        setup_options = (
            *OpenAICompatible.setup_options,
            SetupOption("tenant_url", "--tenant-url", "where this tenant's upstream is"),
        )

    assert "tenant_url" in reserved_option_names()


async def test_a_later_providers_option_is_refused_in_a_body(upstream: ScriptedServer) -> None:
    from codelinkava.providers import SetupOption
    from codelinkava.providers.openai import OpenAICompatible

    class Regional(OpenAICompatible):
        setup_options = (
            *OpenAICompatible.setup_options,
            SetupOption("region_endpoint", "--region-endpoint", "the region's upstream"),
        )

    upstream.reply(Reply(body=[sse("ok")]))
    settings = GatewaySettings(
        provider="openai",
        provider_options={"base_url": upstream.url("/v1"), "max_retries": 0},
        api_key=None,
        preload=False,  # nothing sent at start-up either (no model listing)
    )
    before = len(upstream.requests)
    with live_gateway(settings) as gateway:
        for path in ("/v1/chat/completions", "/api/chat"):
            body = {"model": "m", "messages": MESSAGES, "region_endpoint": "http://127.0.0.1:9"}
            refused = await call(gateway.url, path, body=body, within=10)
            assert assert_http_error(refused, 400)["param"] == "region_endpoint"
    assert len(upstream.requests) == before
    assert Regional.setup_options[-1].name == "region_endpoint"
