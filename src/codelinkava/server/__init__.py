"""The gateway (`codelinkava serve`): serves the chat APIs over any provider.

Imported only by the CLI and by users who want the app: `import codelinkava`
never loads FastAPI, and neither does `import codelinkava.server.defaults`
(the names below are imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "GatewaySettings":
        from .settings import GatewaySettings

        return GatewaySettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
