"""The old home of the failover rule, kept so that `import codelinkava.failover` goes on working.

It lives in `codelinkava.core.failover`; import it from there.
"""

from codelinkava.core.failover import *  # noqa: F403
from codelinkava.core.failover import __all__ as __all__
