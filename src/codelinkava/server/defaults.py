"""The gateway's defaults, in one place for the settings, the serve spec and the CLI flags.

Importing it loads nothing else, so `codelinkava --help` stays fast.
"""

from __future__ import annotations

__all__ = ["API_KEY_ENV", "MAX_BODY_BYTES", "MAX_CONCURRENCY", "MAX_MESSAGES"]

#: The environment variable holding the gateway's own key (not an upstream's).
API_KEY_ENV = "CODELINKAVA_API_KEY"
#: The largest request body, in bytes.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: Responses in flight at once before a 503.
MAX_CONCURRENCY = 64
#: Messages in one request.
MAX_MESSAGES = 2048
