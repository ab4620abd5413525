"""`codelinkava serve`: the gateway under uvicorn, one process or `--workers` of them."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..config import split_options
from ..errors import InvalidRequestError
from ..providers import get_provider
from ..server.defaults import API_KEY_ENV

__all__ = ["run_serve"]


def run_serve(args: argparse.Namespace, name: str, options: dict[str, Any]) -> int:
    """Build the app for the chosen provider (or config file) and run uvicorn."""
    try:
        import uvicorn  # noqa: F401

        from ..server.factory import ServeSpec, build_app
    except ImportError as exc:
        raise InvalidRequestError(
            f"the gateway needs its extras: pip install 'codelinkava[server]' ({exc})"
        ) from None
    if args.workers < 1:
        raise InvalidRequestError("--workers must be at least 1")
    if get_provider(name).uses_network:
        if args.timeout is not None:
            options["timeout"] = args.timeout
        if args.max_retries is not None:
            options["max_retries"] = args.max_retries
        split_options({k: v for k, v in options.items() if k in ("timeout", "max_retries")})
    spec = ServeSpec(
        provider=name,
        provider_options=options,
        model=args.model,
        config=args.config,
        redis_url=args.redis_url,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        max_body_bytes=args.max_body_bytes,
        max_concurrency=args.max_concurrency,
        cors_origins=list(args.cors_origin),
        access_log_json=args.log_json,
        log_level=args.log_level,
    )
    app = build_app(spec)  # also checks a config file before any worker starts
    if not args.config:
        # One provider and nothing else to serve: a model that cannot run here is an
        # error now, in one line, not a failed start-up in uvicorn's log.
        get_provider(name).preflight(options)
    keyed = ", key required" if app.state.gateway.settings.api_key else ""
    what = f"config {args.config}" if args.config else f"provider {name}"
    print(
        f"codelinkava gateway on http://{args.host}:{args.port} ({what}{keyed}, "
        f"{args.workers} worker{'s' if args.workers > 1 else ''})",
        file=sys.stderr,
    )
    if args.workers > 1 and not app.state.gateway.settings.redis_url:
        print(
            "note: without Redis each worker keeps its own stored responses (/v1/responses): "
            "a GET or previous_response_id may reach another worker; set --redis-url",
            file=sys.stderr,
        )
    _run_uvicorn(args, app, spec)
    return 0


def _run_uvicorn(args: argparse.Namespace, app: Any, spec: Any) -> None:
    """One process serving `app`, or `--workers` processes each building it from `spec`."""
    import uvicorn

    run: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "timeout_graceful_shutdown": args.grace,
        "access_log": args.log_level == "debug",
        "http": _http_protocol(),
    }
    if args.workers == 1:
        uvicorn.run(app, **run)
        return
    from ..server.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

    given = os.environ.get(MULTIPROC_ENV)
    # Before the workers start: they inherit the directory, emptied of an earlier run's files.
    metrics_dir = prepare_multiprocess_dir(given)
    spec.to_environment()
    try:
        uvicorn.run(
            "codelinkava.server.factory:app_from_environment",
            factory=True,
            workers=args.workers,
            **run,
        )
    finally:
        if not given:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _http_protocol() -> str:
    """uvicorn's httptools protocol with our head limit and read deadlines, by import name
    (worker processes import it); plain "auto" without httptools."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "auto"  # no head-size limit or read deadlines (README, "The gateway")
    return "codelinkava.server.protocol:GuardedHttpToolsProtocol"
