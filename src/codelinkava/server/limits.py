"""The old home of the gateway's limiters and shared gate, kept so that
`from codelinkava.server.limits import ...` goes on working.

The limiters live in `codelinkava.server.limiters`, the shared gate in
`codelinkava.server.gate`, and `Lease` in `codelinkava.routing.limits`.
"""

from codelinkava.routing.limits import Lease
from codelinkava.server.gate import GATEWAY_KEY, SharedGate, SharedTicket
from codelinkava.server.limiters import *  # noqa: F403
from codelinkava.server.limiters import __all__ as _limiters

__all__ = [*_limiters, "GATEWAY_KEY", "Lease", "SharedGate", "SharedTicket"]
