"""`server/protocol.py` subclasses uvicorn's httptools protocol and leans on its internals.

uvicorn does not promise them, so this test names every one we use: an upgrade
that renames or drops one fails here, loudly, instead of silently turning off
the head-size limit or the read deadlines.
"""

from __future__ import annotations

import inspect

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from codelinkava.server.protocol import GuardedHttpToolsProtocol

#: The methods we override (their names and argument lists must stay as they are).
OVERRIDDEN = {
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "on_message_begin": ["self"],
    "on_headers_complete": ["self"],
    "on_message_complete": ["self"],
    "data_received": ["self", "data"],
}
#: Attributes of the instance that our code reads.
ATTRIBUTES = ("self.url", "self.headers", "self.cycle", "self.transport", "self.loop")


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_the_methods_we_override_exist_with_the_same_arguments(name: str) -> None:
    method = getattr(HttpToolsProtocol, name, None)
    assert method is not None, f"uvicorn's HttpToolsProtocol has no {name} any more"
    assert list(inspect.signature(method).parameters) == OVERRIDDEN[name]
    assert name in GuardedHttpToolsProtocol.__dict__


def test_the_helpers_and_attributes_we_use_are_still_there() -> None:
    assert callable(getattr(HttpToolsProtocol, "send_400_response", None))
    source = inspect.getsource(HttpToolsProtocol)
    for attribute in ATTRIBUTES:
        assert f"{attribute} =" in source or f"{attribute}:" in source, attribute
    cycle_source = inspect.getsource(inspect.getmodule(HttpToolsProtocol))  # type: ignore[arg-type]
    assert "response_started" in cycle_source
