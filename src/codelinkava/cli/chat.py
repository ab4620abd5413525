"""`codelinkava chat`: stream an answer, or hold a conversation, on any provider."""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from typing import Any, TextIO

from ..errors import InvalidRequestError, ProviderError
from ..providers import AsyncGeneratorProvider, get_provider

__all__ = ["run_chat"]


class _Spinner:
    """'loading the model...' on stderr while the model loads (animated on a terminal)."""

    def __init__(self, stream: TextIO, message: str) -> None:
        self._stream = stream
        self._message = message
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False

    def start(self) -> None:
        if self._stream.isatty():
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        else:
            self._stream.write(f"{self._message}\n")
            self._stream.flush()

    def _run(self) -> None:
        frames = "|/-\\"
        i = 0
        if self._stop.wait(0.15):  # fast loads show nothing
            return
        while not self._stop.is_set():
            self._stream.write(f"\r{frames[i % 4]} {self._message}")
            self._stream.flush()
            self._shown = True
            i += 1
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if self._shown:
                self._stream.write("\r" + " " * (len(self._message) + 2) + "\r")
                self._stream.flush()


async def _stream_answer(
    provider: type[AsyncGeneratorProvider],
    model: str,
    messages: list[dict[str, str]],
    options: dict[str, Any],
) -> str:
    """Print the answer as it streams; return it whole."""
    parts: list[str] = []
    if not provider.is_warm(options):
        spinner = _Spinner(sys.stderr, provider.warm_up_message or "getting ready...")
        spinner.start()
        try:
            await provider.warm_up(options)
        finally:
            spinner.stop()
    async for piece in provider.create_async_generator(model, messages, **options):
        parts.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()
    if parts and not parts[-1].endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()
    return "".join(parts)


def run_chat(args: argparse.Namespace, name: str, options: dict[str, Any]) -> int:
    """`codelinkava chat`: one answer for a prompt, else a conversation."""
    provider = get_provider(name)
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.max_tokens is not None:
        options["max_tokens"] = args.max_tokens
    if args.timeout is not None and provider.uses_network:
        options["timeout"] = args.timeout
    model = args.model or asyncio.run(provider.pick_model(options))
    history: list[dict[str, str]] = []
    if args.system:
        history.append({"role": "system", "content": args.system})

    prompt = args.prompt
    if prompt == "-":
        prompt = sys.stdin.read()
    if prompt is not None:
        if not prompt.strip():
            raise InvalidRequestError("the prompt is empty")
        history.append({"role": "user", "content": prompt})
        asyncio.run(_stream_answer(provider, model, history, options))
        return 0
    return _conversation(provider, model, history, options)


def _conversation(
    provider: type[AsyncGeneratorProvider],
    model: str,
    history: list[dict[str, str]],
    options: dict[str, Any],
) -> int:
    """The interactive loop. One event loop for the whole talk, so connections are reused."""
    interactive = sys.stdin.isatty()
    if interactive:
        print(
            f"codelinkava chat ({provider.__name__}). Ctrl-C stops an answer, Ctrl-D quits.",
            file=sys.stderr,
        )
    with asyncio.Runner() as runner:
        while True:
            try:
                line = input("> " if interactive else "")
            except EOFError:
                if interactive:
                    print(file=sys.stderr)
                return 0
            except KeyboardInterrupt:
                print(file=sys.stderr)
                continue
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                return 0
            history.append({"role": "user", "content": text})
            try:
                answer = runner.run(_stream_answer(provider, model, history, options))
            except KeyboardInterrupt:
                print("\n[stopped]", file=sys.stderr)
                history.pop()
                continue
            except ProviderError as exc:
                print(f"error: {exc}", file=sys.stderr)
                history.pop()
                continue
            history.append({"role": "assistant", "content": answer})
