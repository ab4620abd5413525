"""The `codelinkava` command's parser and dispatch: chat, serve, providers.

Each command runs in a module of its own (`chat.py`, `serve.py`, `providers.py`),
imported when it is chosen, so `--help` loads none of them.

Built on the public library like any other user (httpx's `_main.py` habit).
Every failure a user can cause ends in one line on stderr and a non-zero
exit code, never a traceback: 1 for provider errors, 2 for usage errors,
130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import InvalidRequestError, ProviderError
from ..providers import DEFAULT_PROVIDER, PROVIDERS, AsyncGeneratorProvider, get_provider
from ..server.defaults import API_KEY_ENV, MAX_BODY_BYTES, MAX_CONCURRENCY

__all__ = ["main"]

EXIT_PROVIDER_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codelinkava",
        description="Streaming chat completions: the embedded local model, CodeLinkAva, "
        "or any OpenAI-compatible endpoint.",
    )
    parser.add_argument("--version", action="version", version=f"codelinkava {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_chat_command(commands)
    _add_serve_command(commands)
    providers = commands.add_parser(
        "providers", help="list providers, their models and a live check"
    )
    providers.add_argument("--no-check", action="store_true", help="skip the live check")
    providers.add_argument(
        "--timeout", type=float, default=5.0, help="seconds for each live check (default 5)"
    )
    _add_endpoint_options(providers)
    return parser


def _add_chat_command(commands: Any) -> None:
    chat = commands.add_parser(
        "chat",
        help="stream an answer to stdout (no prompt: an interactive conversation)",
        description="Stream an answer to PROMPT. With no PROMPT, open a conversation that keeps "
        "its history: Ctrl-C stops the current answer, Ctrl-D (or /exit) quits. With nothing "
        "configured it uses the embedded local model.",
    )
    chat.add_argument("prompt", nargs="?", help="the question; '-' reads it from stdin")
    _add_provider_options(chat)
    chat.add_argument("--system", help="a system prompt to start the conversation")
    chat.add_argument("--temperature", type=float, help="sampling temperature")
    chat.add_argument("--max-tokens", type=int, help="the most tokens to generate")
    chat.add_argument("--timeout", type=float, help="connect / first-chunk / idle limit in seconds")


def _add_serve_command(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the gateway (/api/chat, /v1/chat/completions, the chat page at /)",
        description="Serve the CodeLinkAva wire format (POST /api/chat) and OpenAI's "
        "(POST /v1/chat/completions, GET /v1/models), a chat page at /, GET /health and "
        "GET /metrics, in front of one provider or, with --config, many deployments.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    _add_provider_options(serve, default="local")
    serve.add_argument(
        "--config",
        help="a LiteLLM-style config file (model_list, router_settings, general_settings."
        "master_key): route over its deployments instead of one --provider",
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes on the port (default 1)"
    )
    serve.add_argument(
        "--redis-url",
        help="share the limits of every worker and host through this Redis "
        "(e.g. redis://10.0.0.9:6379/0; default: the config's redis settings, else per process)",
    )
    serve.add_argument(
        "--api-key",
        default=None,
        help=f"require `Authorization: Bearer KEY` on every route but /health and the page "
        f"(default: ${API_KEY_ENV}, else the config's master_key; none means open)",
    )
    most = f"streams at once before 503 (default {MAX_CONCURRENCY})"
    serve.add_argument("--max-concurrency", type=int, default=MAX_CONCURRENCY, help=most)
    _add_upstream_limits(serve)
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=MAX_BODY_BYTES,
        help=f"largest request body (default {MAX_BODY_BYTES // 2**20} MiB)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="allow this browser origin (repeatable; default: CORS off)",
    )
    serve.add_argument(
        "--grace", type=float, default=30.0, help="seconds in-flight streams get on SIGTERM"
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's level; the access log (a line per request) at info and debug only",
    )
    serve.add_argument(
        "--log-json", action="store_true", help="the access log as JSON lines (default: text)"
    )


def _add_upstream_limits(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--timeout",
        type=float,
        help="network providers: upstream connect / first-chunk / idle limit in seconds",
    )
    serve.add_argument(
        "--max-retries",
        type=int,
        help="network providers: retries before the first chunk (default 2)",
    )


def _add_provider_options(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    claimed: set[str] = set()
    selectors = {name: _selectors(provider, claimed) for name, provider in PROVIDERS.items()}
    configured = ", ".join(
        f"{name} if {' or '.join(found)} is set" for name, found in selectors.items() if found
    )
    parser.add_argument(
        "--provider",
        choices=sorted(PROVIDERS),
        default=default,
        help="local (embedded SmolLM2), codelinkava (the seed's API), openai (any compatible "
        "server), anthropic (any Messages API server); "
        f"default: {configured}, else {DEFAULT_PROVIDER}",
    )
    parser.add_argument(
        "--model",
        help="model name (default: the provider's; with --base-url, the server's first listed)",
    )
    _add_endpoint_options(parser)


def _selectors(provider: type[AsyncGeneratorProvider], claimed: set[str]) -> list[str]:
    """The flags and variables that pick a provider when --provider is not given (a flag
    an earlier provider shares, `claimed`, picks that one)."""
    out: list[str] = []
    for option in provider.setup_options:
        if not option.secret and provider.uses_network:
            if option.flag not in claimed:
                claimed.add(option.flag)
                out.append(option.flag)
            if option.env and provider.chosen_by_environment:
                out.append(f"${option.env}")
    return out


def _add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    """One flag per provider set-up option (--api-url, --base-url, --model-path, ...); a
    flag providers share (--base-url) says what it means for each."""
    meanings: dict[str, tuple[str, list[str]]] = {}
    for name, provider in PROVIDERS.items():
        for option in provider.setup_options:
            default = f" (default ${option.env})" if option.env else ""
            dest, said = meanings.setdefault(option.flag, (f"setup_{option.name}", []))
            said.append(f"{name} provider: {option.help}{default}")
    for flag, (dest, said) in meanings.items():
        parser.add_argument(flag, dest=dest, help="; ".join(said))


def _choose_provider(args: argparse.Namespace) -> str:
    if args.provider:
        return str(args.provider)
    for name, provider in PROVIDERS.items():
        if any(getattr(args, f"setup_{o.name}", None) for o in provider.setup_options):
            return name
    for name, provider in PROVIDERS.items():
        if provider.uses_network and provider.selected_by_environment():
            return name
    return DEFAULT_PROVIDER


def _provider_options(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The set-up options the chosen provider takes, from its flags."""
    options: dict[str, Any] = {}
    for option in get_provider(name).setup_options:
        value = getattr(args, f"setup_{option.name}", None)
        if value:
            options[option.name] = value
    return options


def _chat(args: argparse.Namespace) -> int:
    from .chat import run_chat

    name = _choose_provider(args)
    return run_chat(args, name, _provider_options(args, name))


def _serve(args: argparse.Namespace) -> int:
    from .serve import run_serve

    name = _choose_provider(args)
    return run_serve(args, name, _provider_options(args, name))


def _providers(args: argparse.Namespace) -> int:
    from .providers import list_providers

    return list_providers(args, _provider_options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handlers = {"chat": _chat, "serve": _serve, "providers": _providers}
    try:
        return handlers[args.command](args)
    except InvalidRequestError as exc:
        print(f"codelinkava: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ProviderError as exc:
        print(f"codelinkava: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_PROVIDER_ERROR
    except KeyboardInterrupt:
        print("\ncodelinkava: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout was closed (`| head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
