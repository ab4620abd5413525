"""Pure ASGI middleware: the bearer key and the request-size limit.

Pure ASGI rather than FastAPI dependencies so they guard every route
(including /docs and /openapi.json) and never buffer a body they will refuse.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .chat_page import is_page_path
from .errors import shape_for

__all__ = ["OPEN_PATHS", "AuthMiddleware", "BodyLimitMiddleware"]

OPEN_PATHS = frozenset({"/health"})


class AuthMiddleware:
    """Every route but /health needs the key when one is set: `Authorization: Bearer <key>`
    (OpenAI's clients) or `x-api-key: <key>` (Anthropic's)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        open_path = path in OPEN_PATHS or is_page_path(path)
        if scope["type"] != "http" or open_path or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = token.strip()
                    break
            elif name == b"x-api-key":  # Anthropic's clients send the key so
                given = value.strip()
                break
        # NOTE: constant-time comparison, so response timing leaks nothing about the key.
        if not hmac.compare_digest(given, self._key):
            refused = shape_for(scope)(
                401,
                "missing or wrong API key: send `Authorization: Bearer <key>` "
                "or `x-api-key: <key>`",
                "authentication_error",
                "invalid_api_key",
                {"www-authenticate": "Bearer"},
            )
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse bodies over `limit` bytes with 413, by Content-Length or while they stream in.

    The body is read here, bounded, and replayed to the app: the app's own
    body parser would turn an exception from `receive` into a vague 400.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    await self._refuse(scope, receive, send)
                    return
                break
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = shape_for(scope)(
            413,
            f"the request body is larger than {self.limit:,} bytes",
            "invalid_request_error",
            "request_too_large",
            {"connection": "close"},
        )
        await refused(scope, receive, send)
