"""`codelinkava providers`: what each provider is, and whether it answers now."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from ..errors import ProviderError, ProviderNotWorkingError
from ..providers import DEFAULT_PROVIDER, PROVIDERS, AsyncGeneratorProvider

__all__ = ["list_providers"]


async def _check(
    provider: type[AsyncGeneratorProvider], options: dict[str, Any], limit: float
) -> tuple[list[str], str]:
    """(the models it serves, as its upstream lists them: [] when it cannot tell; how a
    short question to the first of them went). The gateway lists and defaults the same."""
    started = time.perf_counter()
    network = {"timeout": limit, "max_retries": 0} if provider.uses_network else {}
    listed: list[str] = []
    try:
        async with asyncio.timeout(limit):
            with contextlib.suppress(ProviderError):  # the question below says what is wrong
                listed = await provider.served_models({**options, **network})
            agen = provider.create_async_generator(
                listed[0] if listed else provider.served_model(options),
                [{"role": "user", "content": "Say OK."}],
                max_tokens=4,
                **options,
                **network,
            )
            try:
                async for _ in agen:
                    break
            finally:
                await agen.aclose()
    except ProviderNotWorkingError as exc:  # it cannot run here: say why, in full
        return listed, f"unavailable ({exc})"
    except (ProviderError, TimeoutError) as exc:
        return listed, f"down ({type(exc).__name__}: {str(exc)[:120]})"
    return listed, f"ok ({(time.perf_counter() - started) * 1000:.0f} ms to first chunk)"


#: The most model names a line shows (OpenAI's own API lists dozens).
_SHOWN_MODELS = 4


def list_providers(
    args: argparse.Namespace, options_of: Callable[[argparse.Namespace, str], dict[str, Any]]
) -> int:
    """One line per provider: its models (with the check: as its endpoint lists them), its
    endpoint and (unless --no-check) whether it answers now."""
    for name in sorted(PROVIDERS, key=lambda n: (n != DEFAULT_PROVIDER, n)):  # the default first
        provider = PROVIDERS[name]
        options = options_of(args, name)
        names, status = list(provider.models), ""
        if not args.no_check:
            listed, status = asyncio.run(_check(provider, options, args.timeout))
            names = listed or names
        models = ", ".join(names[:_SHOWN_MODELS]) or "(whatever the server serves)"
        if len(names) > _SHOWN_MODELS:
            models += f" (+{len(names) - _SHOWN_MODELS} more)"
        where = provider.describe_endpoint(options)
        line = f"{name:<12} {provider.__name__:<17} models: {models:<28} {where}"
        print(f"{line}  {status}" if status else line)
    return 0
