"""A gateway in a process of its own, for the scaling tests (run as a script).

`create_app` on uvicorn at 127.0.0.1:PORT, fronting an OpenAI-compatible
upstream, with the limits and the Redis the test names. Whatever the test
puts in the environment (`PROMETHEUS_MULTIPROC_DIR`) the gateway inherits.
"""

from __future__ import annotations

import argparse

import uvicorn

from codelinkava.server import GatewaySettings, create_app
from codelinkava.server.limiters import RedisLimiter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's base URL (…/v1)")
    parser.add_argument("--redis-url")
    parser.add_argument("--max-concurrency", type=int, default=64)
    parser.add_argument("--api-key")
    parser.add_argument("--upstream-timeout", type=float, default=30.0)
    args = parser.parse_args()
    settings = GatewaySettings(
        provider="openai",
        provider_options={
            "base_url": args.upstream,
            "timeout": args.upstream_timeout,
            "max_retries": 0,
        },
        api_key=args.api_key,
        redis_url=args.redis_url,
        max_concurrency=args.max_concurrency,
        preload=False,  # no model listing at start-up: the upstream sees only the tests' chats
    )
    # A patient Redis deadline: these tests check that limits are shared; what a slow
    # or hung Redis does is test_limits' business, on a machine that may be busy.
    limiter = RedisLimiter(args.redis_url, timeout=5.0) if args.redis_url else None
    uvicorn.run(
        create_app(settings, limiter=limiter),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
