"""The chat page at `/`: static files shipped inside the package, served with a strict CSP.

The page is plain HTML, CSS and JavaScript (no build step, nothing fetched
from the internet). It loads without the gateway's key -- it holds no data --
and every API call it makes still needs the key.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import PurePosixPath

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["CONTENT_SECURITY_POLICY", "is_page_path", "page_routes"]

#: No inline script, nothing from another origin: the model's output is untrusted.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_STATIC_PREFIX = "/static/"


def is_page_path(path: str) -> bool:
    """The page and its assets: open without the key (they hold no data)."""
    return path == "/" or path.startswith(_STATIC_PREFIX)


def _asset(name: str) -> Response:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or pure.suffix not in _TYPES:
        return Response(status_code=404)
    resource = files("codelinkava.server").joinpath("static", *pure.parts)
    if not resource.is_file():
        return Response(status_code=404)
    headers = {
        "content-security-policy": CONTENT_SECURITY_POLICY,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-cache",
    }
    return Response(resource.read_bytes(), media_type=_TYPES[pure.suffix], headers=headers)


async def _index(request: Request) -> Response:
    return _asset("index.html")


async def _static(request: Request) -> Response:
    return _asset(str(request.path_params["name"]))


def page_routes() -> list[BaseRoute]:
    """`GET /` (the page) and `GET /static/{name}` (its assets)."""
    return [
        Route("/", _index, methods=["GET", "HEAD"], include_in_schema=False),
        Route("/static/{name:path}", _static, methods=["GET", "HEAD"], include_in_schema=False),
    ]
