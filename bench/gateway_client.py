"""The gateway section's measuring client: a light SSE reader in a process of its own.

`python -m bench.gateway_client` is a JSON-lines worker (the `bench.runner serve`
protocol, so `common.Worker` drives it). Its one command,

    {"op": "cell", "url": ".../v1/chat/completions", "c": C, "n": N, "delay_us": D,
     "headers": {...}, "repeat": R, "api": "chat" | "messages" | "responses"}

starts C streams at once on one event loop (R times in a row, pooled: more
samples for a single stream). Each asks the echo upstream
(`bench.source`, directly or through whatever listens at `url`) for N chunks
under a nonce of its own, in OpenAI's chat API, (`api: "messages"`) Anthropic's
Messages or (`api: "responses"`) OpenAI's Responses. While streaming, the client
only reads raw bytes (aiohttp `iter_any`) and looks for the first non-empty
`"content"` (a `text_delta`'s `"text"`, an `output_text.delta`'s `"delta"`) to
time the first chunk; the bytes are parsed and checked after every stream has ended:
each answer must be exactly `payload.tagged_tokens(N, its nonce)`, and any
other request's nonce found in it is counted as cross-talk.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sys
import time
import traceback
from typing import Any

import aiohttp

from bench.payload import tagged_tokens
from bench.runner import _answer_channel, _raise_nofile_limit

__all__ = ["main", "request_body"]

MODEL = "gpt-3.5-turbo"
#: The first text of an answer, per API: a chat chunk's `content`, a Messages `text_delta`.
_FIRST_CONTENT = {
    "chat": re.compile(rb'"content":\s*"[^"]'),
    "messages": re.compile(rb'"text_delta",\s*"text":\s*"[^"]'),
    "responses": re.compile(rb'"delta":\s*"[^"]'),
}
_NONCE = re.compile(r"#([0-9a-f]{8})")


def request_body(nonce: str, n: int, delay_us: int, api: str = "chat") -> bytes:
    """What the echo upstream reads its orders from: the user's message (the Responses
    route's input, which the gateway makes that message)."""
    content = f"bench nonce {nonce} n {n} delay_us {delay_us}"
    if api == "responses":
        return json.dumps({"model": MODEL, "input": content, "stream": True}).encode()
    body: dict[str, Any] = {
        "model": MODEL, "messages": [{"role": "user", "content": content}], "stream": True
    }
    if api == "messages":
        body["max_tokens"] = 1_000_000
    return json.dumps(body).encode()


async def _stream(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes,
    api: str = "chat",
) -> tuple[int, float, float, float, bytes]:
    parts: list[bytes] = []
    first = 0.0
    tail = b""
    first_content = _FIRST_CONTENT[api]
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as resp:
        async for data in resp.content.iter_any():
            if not first:
                if first_content.search(tail + data):
                    first = time.perf_counter()
                tail = data[-32:]
            parts.append(data)
        status = resp.status
    return status, t0, first, time.perf_counter(), b"".join(parts)


def _messages_text(body: bytes) -> tuple[list[str], bool, str | None]:
    """(text deltas, whether `message_stop` came, the error) of a Messages event stream."""
    pieces: list[str] = []
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            return pieces, False, f"not JSON: {line[:200]!r}"
        kind = event.get("type")
        if kind == "error":
            return pieces, False, f"the stream carried an error: {str(event)[:300]}"
        if kind == "message_stop":
            return pieces, True, None
        delta = event.get("delta") or {}
        if kind == "content_block_delta" and delta.get("type") == "text_delta":
            pieces.append(delta["text"])
    return pieces, False, None


def _responses_text(body: bytes) -> tuple[list[str], bool, str | None]:
    """(text deltas, whether `response.completed` came, the error) of a Responses stream."""
    pieces: list[str] = []
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            return pieces, False, f"not JSON: {line[:200]!r}"
        kind = event.get("type")
        if kind == "response.output_text.delta":
            pieces.append(event["delta"])
        elif kind == "response.completed":
            return pieces, True, None
        elif kind in ("response.failed", "response.incomplete", "error"):
            return pieces, False, f"the stream ended with {kind}: {str(event)[:300]}"
    return pieces, False, None


_READERS = {"messages": _messages_text, "responses": _responses_text}


def _chat_text(body: bytes) -> tuple[list[str], bool, str | None]:
    """(content deltas, whether `[DONE]` came, the error) of a chat completions stream."""
    pieces: list[str] = []
    done = False
    error = None
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            done = True
            break
        try:
            chunk = json.loads(payload)
        except ValueError:
            error = f"not JSON: {payload[:200]!r}"
            break
        if "error" in chunk:
            error = f"the stream carried an error: {str(chunk['error'])[:300]}"
            break
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                pieces.append(content)
    return pieces, done, error


def _verify(status: int, body: bytes, nonce: str, n: int, api: str = "chat") -> dict[str, Any]:
    """The answer's text, checked against what this request (its nonce) must get."""
    if status != 200:
        return {"ok": False, "chunks": 0, "foreign": [],
                "error": f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}"}
    pieces, done, error = _READERS.get(api, _chat_text)(body)
    text = "".join(pieces)
    foreign = sorted(set(_NONCE.findall(text)) - {nonce})
    ok = error is None and done and text == "".join(tagged_tokens(n, nonce))
    if not ok and error is None:
        error = "no end of stream" if not done else "the text differs from this request's"
    return {"ok": ok, "chunks": len(pieces), "foreign": foreign, "error": error}


async def _cell(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], c: int, n: int,
    delay_us: int, api: str = "chat",
) -> dict[str, Any]:
    nonces: set[str] = set()
    while len(nonces) < c:
        nonces.add(secrets.token_hex(4))
    order = sorted(nonces)
    c0 = time.process_time()
    results = await asyncio.gather(
        *(_stream(session, url, headers, request_body(nonce, n, delay_us, api), api)
          for nonce in order),
        return_exceptions=True,
    )
    client_cpu = time.process_time() - c0
    ttfc, total, errors = [], [], []
    chunks = verified = crosstalk = 0
    starts, ends = [], []
    for nonce, result in zip(order, results, strict=True):
        if isinstance(result, BaseException):
            errors.append(f"{type(result).__name__}: {result}"[:300])
            continue
        status, t0, first, end, body = result
        check = _verify(status, body, nonce, n, api)
        chunks += check["chunks"]
        crosstalk += bool(check["foreign"])
        if not check["ok"]:
            errors.append(check["error"])
            continue
        verified += 1
        starts.append(t0)
        ends.append(end)
        ttfc.append(first - t0)
        total.append(end - t0)
    wall = max(ends) - min(starts) if ends else float("nan")
    return {
        "ok": verified == c, "c": c, "n": n, "verified": verified, "crosstalk": crosstalk,
        "chunks": chunks, "wall_s": wall, "chunks_per_s": chunks / wall if ends else 0.0,
        "ttfc_s": ttfc, "total_s": total, "client_cpu_s": client_cpu,
        "errors": errors[:3], "error_count": len(errors),
    }


async def _repeat(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], c: int, n: int,
    delay_us: int, repeat: int, api: str = "chat",
) -> dict[str, Any]:
    runs = [await _cell(session, url, headers, c, n, delay_us, api) for _ in range(repeat)]
    if repeat == 1:
        return runs[0]
    wall = sum(r["wall_s"] for r in runs)
    merged = {k: sum(r[k] for r in runs)
              for k in ("c", "verified", "crosstalk", "chunks", "client_cpu_s", "error_count")}
    merged.update({
        "ok": all(r["ok"] for r in runs), "n": n, "wall_s": wall,
        "chunks_per_s": merged["chunks"] / wall if wall == wall and wall else 0.0,
        "ttfc_s": [t for r in runs for t in r["ttfc_s"]],
        "total_s": [t for r in runs for t in r["total_s"]],
        "errors": [e for r in runs for e in r["errors"]][:3],
    })
    return merged


def main() -> None:
    out = _answer_channel()
    _raise_nofile_limit()

    async def serve() -> None:
        timeout = aiohttp.ClientTimeout(total=300)
        # uvicorn (ours, LiteLLM's, g4f's) closes a keep-alive connection idle for 5 s; a
        # client that keeps one longer may send on a socket the server is closing
        # (ServerDisconnectedError), so idle connections are dropped at 4 s.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=4.0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False
        ) as session:
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                cmd = json.loads(line)
                if cmd.get("op") == "quit":
                    return
                try:
                    headers = {"Content-Type": "application/json", **(cmd.get("headers") or {})}
                    answer = await _repeat(session, cmd["url"], headers, cmd["c"], cmd["n"],
                                           cmd["delay_us"], cmd.get("repeat", 1),
                                           cmd.get("api", "chat"))
                except Exception as exc:
                    traceback.print_exc()
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
                out.write(json.dumps(answer) + "\n")

    asyncio.run(serve())


if __name__ == "__main__":
    main()
