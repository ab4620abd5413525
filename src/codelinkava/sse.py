"""The old home of the SSE decoder, kept so that `import codelinkava.sse` goes on working.

It lives in `codelinkava.formats.sse`; import it from there.
"""

from codelinkava.formats.sse import *  # noqa: F403
from codelinkava.formats.sse import __all__ as __all__
