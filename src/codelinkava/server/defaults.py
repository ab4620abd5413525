"""The gateway's defaults, in one place for the settings, the serve spec and the CLI flags.

Importing it loads nothing else, so `codelinkava --help` stays fast.
"""

from __future__ import annotations

__all__ = [
    "API_KEY_ENV",
    "MAX_BODY_BYTES",
    "MAX_CONCURRENCY",
    "MAX_MESSAGES",
    "RESPONSES_MAX_BYTES",
    "RESPONSES_MAX_ENTRIES",
    "RESPONSES_TTL",
]

#: The environment variable holding the gateway's own key (not an upstream's).
API_KEY_ENV = "CODELINKAVA_API_KEY"
#: The largest request body, in bytes.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: Responses in flight at once before a 503.
MAX_CONCURRENCY = 64
#: Messages in one request.
MAX_MESSAGES = 2048
#: Stored responses (`/v1/responses`) a process keeps in memory, at most...
RESPONSES_MAX_ENTRIES = 1000
#: ... and their bytes at most (a bigger one is not stored, in Redis either)...
RESPONSES_MAX_BYTES = 64 * 1024 * 1024
#: ... each for this many seconds (in Redis too).
RESPONSES_TTL = 3600.0
