"""The gateway floor: a thin relay that forwards the upstream's bytes as it reads them.

`python -m bench.relay --upstream URL` (URL: the upstream's `.../v1`) serves
`POST /v1/chat/completions` on 127.0.0.1: it sends the request body on to
`URL/chat/completions` and writes back each piece of the answer the moment
aiohttp hands it over. No parsing, no re-encoding, no checks: the least any
gateway in Python on aiohttp must do, so a real gateway is judged against this
rather than against zero. Prints its port, stops when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading

import aiohttp
from aiohttp import web

__all__ = ["main"]


async def serve(upstream: str) -> None:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )
    target = upstream.rstrip("/") + "/chat/completions"

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with session.post(
            target, data=body, headers={"Content-Type": "application/json"}
        ) as up:
            resp = web.StreamResponse(
                status=up.status,
                headers={"Content-Type": up.headers.get("Content-Type", "text/event-stream")},
            )
            await resp.prepare(request)
            async for data in up.content.iter_any():
                await resp.write(data)
            await resp.write_eof()
            return resp

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)),
                     daemon=True).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.upstream))


if __name__ == "__main__":
    main()
