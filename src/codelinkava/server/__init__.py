"""The gateway (`codelinkava serve`): serves the CodeLinkAva and OpenAI wire formats.

Imported only by the CLI and by users who want the app: `import codelinkava`
never loads FastAPI.
"""

from __future__ import annotations

from .app import create_app
from .settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
