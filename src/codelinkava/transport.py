"""The old home of the transport seam, kept so that `import codelinkava.transport` goes on working.

It lives in `codelinkava.transports`; import it from there.
"""

from codelinkava.transports import *  # noqa: F403
from codelinkava.transports import __all__ as __all__
