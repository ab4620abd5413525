"""OpenAI's Responses API on the gateway (`POST /v1/responses`, `GET`/`DELETE /v1/responses/{id}`).

One job per module: `wire` (the body), `items` and `translate` (pure: the body in
chat terms), `objects` (pure: the Response object and its items), `encoder`
(typed chunks to Responses events), `store` (stored responses), `routes` (the
route value and the stored responses' endpoints).
"""

from __future__ import annotations

from .routes import RESPONSES_ROUTE, install_responses

__all__ = ["RESPONSES_ROUTE", "install_responses"]
