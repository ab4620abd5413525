"""`codelinkava providers`: what each provider is, and whether it answers now."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from ..errors import ProviderError, ProviderNotWorkingError
from ..providers import DEFAULT_PROVIDER, PROVIDERS, AsyncGeneratorProvider

__all__ = ["list_providers"]


async def _check(
    provider: type[AsyncGeneratorProvider], options: dict[str, Any], limit: float
) -> str:
    started = time.perf_counter()
    network = {"timeout": limit, "max_retries": 0} if provider.uses_network else {}
    try:
        async with asyncio.timeout(limit):
            agen = provider.create_async_generator(
                await provider.pick_model(options),
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
        return f"unavailable ({exc})"
    except (ProviderError, TimeoutError) as exc:
        return f"down ({type(exc).__name__}: {str(exc)[:120]})"
    return f"ok ({(time.perf_counter() - started) * 1000:.0f} ms to first chunk)"


def list_providers(
    args: argparse.Namespace, options_of: Callable[[argparse.Namespace, str], dict[str, Any]]
) -> int:
    """One line per provider: its models, its endpoint and (unless --no-check) whether it
    answers now."""
    for name in sorted(PROVIDERS, key=lambda n: (n != DEFAULT_PROVIDER, n)):  # the default first
        provider = PROVIDERS[name]
        options = options_of(args, name)
        models = ", ".join(provider.models) or "(whatever the server serves)"
        where = provider.describe_endpoint(options)
        line = f"{name:<12} {provider.__name__:<17} models: {models:<28} {where}"
        if not args.no_check:
            line += "  " + asyncio.run(_check(provider, options, args.timeout))
        print(line)
    return 0
