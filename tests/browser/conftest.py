"""Fixtures for the chat page tests: Debian's chromium driven by Playwright, gateways on 127.0.0.1.

The browser is the real one (`chromium` on PATH, never a downloaded build) and
the gateways are real: `create_app` on uvicorn in a thread, in front of either
the embedded model or a scripted OpenAI-compatible upstream (support/scripted.py).
Each test gets a fresh browser context (its own localStorage and sessionStorage)
and fails if the page threw an uncaught error or reported a CSP violation.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from codelinkava.server import GatewaySettings
from support.live_gateway import LiveGateway, fronting, live_gateway
from support.scripted import ScriptedServer, running_server

API_KEY = "sesame"
SCRIPTED_MODEL = "scripted-model"
VIEWPORT = {"width": 1100, "height": 750}

#: Recorded in the page before any of its own scripts run (Playwright's init
#: scripts are not subject to the page's CSP): CSP violations and a canary that a
#: hostile answer would have to set to prove it ran.
_WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not on PATH: the chat page tests drive Debian's chromium "
            "(`./dev test` installs it; or `apt-get install chromium`). "
            "Never `playwright install`: the tests use the system browser.",
            pytrace=False,
        )
    return path


# Module scope, not session: Playwright's sync API keeps an event loop running on the
# main thread while it lives, and every asyncio test after it would find a loop
# already running. Stopped at the end of each browser module, it leaves none behind.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    try:
        yield launched
    finally:
        launched.close()


@dataclass
class Watched:
    """A page, with what went wrong in it recorded."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations || []")
        return found


def watch(context: BrowserContext) -> Watched:
    context.add_init_script(_WATCH)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watched = Watched(page)
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    return watched


def make_context(browser: Browser, **options: Any) -> BrowserContext:
    options.setdefault("viewport", VIEWPORT)
    options.setdefault("color_scheme", "light")
    options.setdefault("reduced_motion", "reduce")
    return browser.new_context(**options)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = make_context(browser)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def watched(context: BrowserContext) -> Iterator[Watched]:
    w = watch(context)
    yield w
    assert w.errors == [], f"the page threw: {w.errors}"
    if not w.page.is_closed():
        assert w.violations() == [], "the page broke its own Content-Security-Policy"


@pytest.fixture
def page(watched: Watched) -> Page:
    return watched.page


# Gateways ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def upstream() -> Iterator[ScriptedServer]:
    with running_server() as running:
        yield running


@pytest.fixture
def scripted(upstream: ScriptedServer) -> Iterator[ScriptedServer]:
    """The session's upstream, its script and records reset for this test."""
    upstream.reply()
    upstream.handler = None
    upstream.requests.clear()
    yield upstream
    assert upstream.errors == [], "the scripted upstream failed"


@pytest.fixture(scope="session")
def proxy(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    """The gateway in front of the scripted upstream, no key."""
    settings = fronting(upstream.url("/v1"), model=SCRIPTED_MODEL)
    with live_gateway(settings) as running:
        yield running


@pytest.fixture(scope="session")
def keyed_proxy(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    """The same, behind `api_key`."""
    settings = fronting(upstream.url("/v1"), model=SCRIPTED_MODEL, api_key=API_KEY)
    with live_gateway(settings) as running:
        yield running


@pytest.fixture(scope="session")
def busy_proxy(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    """One stream at a time (the second is refused with 503), a patient upstream timeout."""
    settings = fronting(
        upstream.url("/v1"),
        model=SCRIPTED_MODEL,
        max_concurrency=1,
        provider_options={"timeout": 15.0},
    )
    with live_gateway(settings) as running:
        yield running


@pytest.fixture(scope="session")
def local_gateway() -> Iterator[LiveGateway]:
    """The embedded model (SmolLM2-135M), no key."""
    with live_gateway(GatewaySettings(provider="local", api_key=None)) as running:
        yield running
