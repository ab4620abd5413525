"""When a failed answer may be asked of someone else: the one rule routers share.

The gateway's router (across deployments) and the library's `RetryProvider`
(across providers) both move on to the next candidate when one fails before
its first chunk -- but not when the request itself is at fault, since every
candidate would refuse it the same way and trying them all only hides the
reason from the caller.
"""

from __future__ import annotations

from ..errors import InvalidRequestError, ProviderError, ResponseStatusError

__all__ = ["REQUEST_FAULT_STATUSES", "is_request_fault", "moves_on"]

#: Upstream statuses that blame the request, not the upstream. 404 is not among
#: them: behind a router it means that deployment does not serve the model.
REQUEST_FAULT_STATUSES = frozenset({400, 413, 422})


def is_request_fault(exc: BaseException) -> bool:
    """Whether `exc` says the request is wrong (so another upstream would refuse it too)."""
    if isinstance(exc, InvalidRequestError):
        return True
    return isinstance(exc, ResponseStatusError) and exc.status in REQUEST_FAULT_STATUSES


def moves_on(exc: BaseException) -> bool:
    """Whether a failure before the first chunk should be tried on the next candidate.

    Our errors that blame the upstream do (unreachable, too slow, 5xx, 429,
    a refused key, a broken stream, a model it does not serve); the request's
    own faults and anything that is not a `ProviderError` (a bug) do not.
    """
    return isinstance(exc, ProviderError) and not is_request_fault(exc)
