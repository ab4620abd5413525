"""The options the library consumes itself, never sent in a request body.

`split_options(kwargs)` is the one place that decides which keyword arguments
are ours (`proxy`, `timeout`, `max_retries`, `retry`, `headers`, `transport`)
and which belong to the upstream's body. Provider-specific options (`api_url`, `base_url`,
`api_key`) are popped by the provider that owns them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidRequestError
from .retry import DEFAULT_RETRY_POLICY, RetryPolicy

if TYPE_CHECKING:
    from .transports import Transport

__all__ = ["LIBRARY_OPTIONS", "ClientOptions", "Timeouts", "split_options"]

#: Every keyword option the library consumes itself, whatever the provider: never sent
#: in a body, and never taken from a gateway request.
LIBRARY_OPTIONS = frozenset(
    {
        "proxy",
        "timeout",
        "max_retries",
        "retry",
        "headers",
        "transport",
        "api_url",
        "base_url",
        "api_key",
        "model_path",
    }
)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Time limits in seconds; None switches one off.

    | example                                 | meaning                                        |
    |-----------------------------------------|------------------------------------------------|
    | `Timeouts()`                            | connect 10 s, first chunk 60 s, idle 30 s      |
    | `timeout=5` (a number)                  | connect, first chunk and idle 5 s each         |
    | `Timeouts(idle=5)`                      | a stalled stream fails after 5 s of silence    |
    | `Timeouts(total=120)`                   | the whole answer must arrive within 120 s      |

    `first_chunk` runs from sending the request to the first bytes of the
    body: it covers a model that thinks before it speaks. `idle` is the
    longest silence allowed between two pieces of the stream after that.
    """

    connect: float | None = 10.0
    first_chunk: float | None = 60.0
    idle: float | None = 30.0
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "first_chunk", "idle", "total"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidRequestError(f"timeout {name} must be a number of seconds or None")
            # NOTE: infinity is refused too (aiohttp cannot round it); None means no limit.
            if not (value > 0 and math.isfinite(value)):
                raise InvalidRequestError(
                    f"timeout {name} must be a finite number of seconds > 0 (or None), "
                    f"got {value!r}"
                )

    @classmethod
    def coerce(cls, value: Any) -> Timeouts:
        """Accept None (defaults), a number, a mapping of fields, or a Timeouts."""
        if value is None:
            return DEFAULT_TIMEOUTS
        if isinstance(value, Timeouts):
            return value
        if isinstance(value, bool):
            raise InvalidRequestError("timeout must be a number of seconds or a Timeouts")
        if isinstance(value, int | float):
            return cls(connect=value, first_chunk=value, idle=value)
        if isinstance(value, Mapping):
            unknown = set(value) - {"connect", "first_chunk", "idle", "total"}
            if unknown:
                names = ", ".join(sorted(map(str, unknown)))
                raise InvalidRequestError(f"unknown timeout field(s): {names}")
            return cls(**value)
        raise InvalidRequestError(
            f"timeout must be a number or a Timeouts, not {type(value).__name__}"
        )


DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How to send one request: everything that is not the body."""

    timeouts: Timeouts = DEFAULT_TIMEOUTS
    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    proxy: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: None: the default (aiohttp) transport.
    transport: Transport | None = None

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries


def split_options(
    kwargs: dict[str, Any], retry: RetryPolicy = DEFAULT_RETRY_POLICY
) -> tuple[ClientOptions, dict[str, Any]]:
    """Separate the library's options from the keyword arguments to send in the body.

    `retry` is the provider's default policy; a `retry=` option replaces it and
    `max_retries=` changes only its number of retries.
    """
    body = dict(kwargs)
    timeouts = Timeouts.coerce(body.pop("timeout", None))
    policy = body.pop("retry", None)
    if policy is None:
        policy = retry
    if not isinstance(policy, RetryPolicy):
        raise InvalidRequestError(f"retry must be a RetryPolicy, not {type(policy).__name__}")
    max_retries = body.pop("max_retries", None)
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidRequestError(
                f"max_retries must be a whole number >= 0, got {max_retries!r}"
            )
        policy = policy.with_max_retries(max_retries)
    transport = body.pop("transport", None)
    if transport is not None and not callable(getattr(transport, "open", None)):
        raise InvalidRequestError("transport must have an `open(request, deadline, phase)` method")
    proxy = body.pop("proxy", None)
    if proxy is not None and not isinstance(proxy, str):
        raise InvalidRequestError("proxy must be a URL string")
    headers = body.pop("headers", None)
    if headers is None:
        headers = {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidRequestError("headers must be a mapping of str to str")
    options = ClientOptions(
        timeouts=timeouts,
        retry=policy,
        proxy=proxy or None,
        headers=dict(headers),
        transport=transport,
    )
    return options, body
