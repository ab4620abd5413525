"""What the tests do on the chat page, by the names the page gives its controls.

The names are the page's contract (for assistive technology and outside tests):
the textbox "Message", the buttons "Send" and "Stop", the combobox "Model".
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, Response, expect

from support.live_gateway import LiveGateway

STATIC = Path(__file__).resolve().parents[2] / "src" / "codelinkava" / "server" / "static"
DOCS = Path(__file__).resolve().parents[2] / "docs"
CONVERSATIONS = "codelinkava.conversations.v1"
KEY = "codelinkava.apiKey"


def open_chat(page: Page, gateway: LiveGateway) -> Response:
    """Loads the page and waits until its script has started."""
    response = page.goto(gateway.url + "/")
    assert response is not None
    expect(page.locator("html[data-ready=true]")).to_be_attached()
    return response


def message_box(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Message", exact=True)


def send_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Send", exact=True)


def stop_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Stop", exact=True)


def model_picker(page: Page) -> Locator:
    return page.get_by_role("combobox", name="Model", exact=True)


def send(page: Page, text: str) -> None:
    """Types `text` in the message box and presses Enter."""
    box = message_box(page)
    box.fill(text)
    box.press("Enter")


def answers(page: Page) -> Locator:
    return page.locator("#messages .msg.assistant")


def questions(page: Page) -> Locator:
    return page.locator("#messages .msg.user")


def wait_idle(page: Page, timeout: float = 10_000) -> None:
    """Until no answer is streaming: Send is back, Stop is gone."""
    expect(send_button(page)).to_be_visible(timeout=timeout)
    expect(stop_button(page)).to_be_hidden(timeout=timeout)


def notice(page: Page) -> Locator:
    return page.get_by_role("alert")


def stored(page: Page) -> Any:
    """The conversations as the page saved them in localStorage."""
    return page.evaluate("(k) => JSON.parse(localStorage.getItem(k))", CONVERSATIONS)


def health(gateway: LiveGateway) -> dict[str, Any]:
    with urllib.request.urlopen(gateway.url + "/health", timeout=5) as response:
        payload: dict[str, Any] = json.load(response)
    return payload


def eventually(condition: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    """Polls `condition` (a state outside the page: the gateway, the upstream) until it holds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s: {what or condition}")
        time.sleep(0.01)


def record_lengths(page: Page) -> None:
    """Records each length the last answer's text takes, as the page renders it."""
    page.evaluate(
        """() => {
          window.__lengths = [];
          new MutationObserver(() => {
            const bodies = document.querySelectorAll("#messages .msg.assistant .body");
            const body = bodies[bodies.length - 1];
            const n = body ? body.textContent.length : 0;
            if (window.__lengths.at(-1) !== n) window.__lengths.push(n);
          }).observe(document.getElementById("messages"),
                     {subtree: true, childList: true, characterData: true});
        }"""
    )
