"""The old home of the OpenAI chunk parser, kept so `import codelinkava.chunks` goes on working.

It lives in `codelinkava.formats.openai_chunks`; import it from there.
"""

from codelinkava.formats.openai_chunks import *  # noqa: F403
from codelinkava.formats.openai_chunks import __all__ as __all__
