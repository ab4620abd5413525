"""The page itself: what it loads, how fast, its CSP, its Markdown, phone width, colours, keys."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from playwright.sync_api import Browser, Page, expect

from codelinkava.server.chat_page import CONTENT_SECURITY_POLICY
from support.live_gateway import LiveGateway
from support.scripted import Reply, ScriptedServer, chunk, event, sse

from .chat import (
    DOCS,
    STATIC,
    answers,
    message_box,
    model_picker,
    open_chat,
    questions,
    send,
    send_button,
    wait_idle,
)
from .conftest import SCRIPTED_MODEL, make_context, watch

PAGE_FILES = {
    "index.html",
    "app.js",
    "api.js",
    "markdown.js",
    "markdown-parse.js",
    "store.js",
    "style.css",
}


def test_page_is_light_fast_and_loads_nothing_from_elsewhere(
    page: Page, proxy: LiveGateway
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = open_chat(page, proxy)
    assert response.status == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    expect(model_picker(page)).to_have_value(SCRIPTED_MODEL)
    expect(message_box(page)).to_be_focused()
    page.wait_for_load_state("load")

    # Everything from the gateway itself: no CDN, nothing from the internet.
    assert requested and all(url.startswith(proxy.url + "/") for url in requested), requested
    loaded = {url.rsplit("/", 1)[-1] for url in requested}
    assert PAGE_FILES - {"index.html"} | {""} <= loaded, loaded  # "" is "/", the index

    # No inline script or style for the CSP to have to allow.
    assert (
        page.evaluate("document.querySelectorAll('script:not([src]), style, [style]').length") == 0
    )

    timing = page.evaluate(
        """() => {
          const nav = performance.getEntriesByType("navigation")[0];
          const res = performance.getEntriesByType("resource");
          return {
            load: nav.loadEventEnd,
            bytes: nav.encodedBodySize + res.reduce((sum, r) => sum + r.encodedBodySize, 0),
          };
        }"""
    )
    shipped = sum(p.stat().st_size for p in STATIC.iterdir() if p.is_file())
    print(
        f"\npage: {timing['bytes']} bytes loaded, {shipped} shipped, load {timing['load']:.0f} ms"
    )
    assert 0 < timing["bytes"] < 300_000
    assert shipped < 300_000
    assert 0 < timing["load"] < 1000


def test_page_and_assets_open_without_the_key_but_the_api_needs_it(
    keyed_proxy: LiveGateway,
) -> None:
    for path in ("/", "/static/app.js", "/static/style.css"):
        with urllib.request.urlopen(keyed_proxy.url + path, timeout=5) as response:
            assert response.status == 200
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    try:
        urllib.request.urlopen(keyed_proxy.url + "/v1/models", timeout=5)
    except urllib.error.HTTPError as refused:
        assert refused.code == 401
    else:
        raise AssertionError("/v1/models answered without the key")


def test_the_csp_stops_inline_script_in_the_browser(page: Page, proxy: LiveGateway) -> None:
    open_chat(page, proxy)
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__inline = 'ran'";
          document.body.append(s);
          const d = document.createElement("div");
          d.setAttribute("onclick", "window.__inline = 'ran'");
          document.body.append(d);
          d.click();
        }"""
    )
    page.wait_for_function("window.__violations.length >= 2")
    assert page.evaluate("window.__inline") is None
    violations = page.evaluate("window.__violations")
    assert all(v.startswith("script-src") for v in violations), violations
    page.evaluate("window.__violations = []")  # the ones we caused on purpose


MARKDOWN = """\
Reversing a list in Python ([docs](https://docs.python.org/3/tutorial/)), **three ways**:

1. `reversed()` gives an *iterator*
2. slicing makes a copy
3. `list.reverse()` works in place

```python
numbers = [1, 2, 3]
print(numbers[::-1])  # [3, 2, 1]
numbers.reverse()
```

| way | copies? | speed |
|:----|:-------:|------:|
| `[::-1]` | yes | fast |
| `.reverse()` | no | fast |
"""


def test_markdown_renders_and_the_screenshot_is_taken(
    browser: Browser, scripted: ScriptedServer, proxy: LiveGateway
) -> None:
    pieces = [MARKDOWN[i : i + 24] for i in range(0, len(MARKDOWN), 24)]
    scripted.reply(Reply(body=[event(chunk(p)) for p in pieces] + [sse()], delay=0.005))
    context = make_context(browser)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=proxy.url)
    watched = watch(context)
    page = watched.page
    try:
        open_chat(page, proxy)
        send(page, "How do I reverse a list in Python?")
        wait_idle(page)
        body = answers(page).last.locator(".body")
        expect(body.locator("p").first).to_have_text(
            "Reversing a list in Python (docs), three ways:"
        )
        expect(body.locator("p strong")).to_have_text("three ways")
        items = body.locator("ol > li")
        expect(items).to_have_count(3)
        expect(items.nth(0).locator("code")).to_have_text("reversed()")
        expect(items.nth(0).locator("em")).to_have_text("iterator")
        code = body.locator(".code-block pre code")
        expect(code).to_have_text(MARKDOWN.split("```python\n")[1].split("\n```")[0])
        expect(body.locator(".code-lang")).to_have_text("python")
        expect(body.locator("table thead th")).to_have_text(["way", "copies?", "speed"])
        expect(body.locator("table tbody tr")).to_have_count(2)
        expect(body.locator("table tbody td.align-right").first).to_have_text("fast")
        link = body.locator("p a")
        expect(link).to_have_text("docs")
        expect(link).to_have_attribute("href", "https://docs.python.org/3/tutorial/")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(link).to_have_attribute("target", "_blank")
        meta = answers(page).last.locator(".meta")
        expect(meta).to_have_text(
            re.compile(r"^first token \d+\.\d\d s · \d+\.\d tokens/s · \d+ tokens$")
        )

        copy = body.get_by_role("button", name="Copy code")
        copy.click()
        expect(copy).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == code.text_content()

        page.mouse.move(0, 0)
        message_box(page).blur()
        expect(copy).to_have_text("Copy")
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "chat-page.png"))
        assert watched.errors == []
        assert watched.violations() == []
    finally:
        context.close()


WIDE = (
    "```text\n"
    + "x" * 400
    + "\n```\n\n| a | b | c | d | e | f |\n|---|---|---|---|---|---|\n"
    + ("| wide cell text | wide cell text | wide cell text | wide cell text | wide | cell |\n")
)


def test_phone_width_and_the_keyboard(
    browser: Browser, scripted: ScriptedServer, proxy: LiveGateway
) -> None:
    scripted.reply(Reply(body=[sse(WIDE)]))
    context = make_context(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    watched = watch(context)
    page = watched.page
    try:
        open_chat(page, proxy)

        def fits() -> bool:
            return bool(page.evaluate("document.documentElement.scrollWidth <= innerWidth"))

        assert fits()
        api_key = page.get_by_role("button", name="API key", exact=True)
        for control in (message_box(page), send_button(page), model_picker(page), api_key):
            expect(control).to_be_in_viewport(ratio=1)
        # The list of conversations slides in on demand and Escape closes it.
        chats = page.get_by_role("button", name="Chats", exact=True)
        new_chat = page.get_by_role("button", name="New chat", exact=True)
        expect(new_chat).to_be_hidden()
        chats.click()
        expect(new_chat).to_be_in_viewport(ratio=1)
        expect(new_chat).to_be_focused()
        page.keyboard.press("Escape")
        expect(new_chat).to_be_hidden()
        expect(chats).to_be_focused()

        # Shift+Enter is a new line, Enter sends.
        box = message_box(page)
        box.focus()
        page.keyboard.type("line one")
        page.keyboard.press("Shift+Enter")
        page.keyboard.type("line two")
        expect(box).to_have_value("line one\nline two")
        page.keyboard.press("Enter")
        expect(questions(page).last.locator(".body")).to_have_text("line one\nline two")
        expect(box).to_have_value("")
        wait_idle(page)
        expect(answers(page).last.locator("pre")).to_contain_text("x" * 400)
        assert fits(), "a wide answer made the page scroll sideways"
        assert watched.errors == []
    finally:
        context.close()


def test_every_control_is_reached_with_tab(page: Page, proxy: LiveGateway) -> None:
    open_chat(page, proxy)
    expect(model_picker(page)).to_have_value(SCRIPTED_MODEL)
    seen: list[str] = []
    for _ in range(30):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                """() => {
                  const el = document.activeElement;
                  const label = el.labels && el.labels[0] ? el.labels[0].textContent : "";
                  const name = el.getAttribute("aria-label") || label || el.textContent;
                  return (name || el.tagName).trim();
                }"""
            )
        )
    for name in ("New chat", "Model", "API key", "Message", "Send", "Rename conversation"):
        assert name in seen, (name, seen)


def test_light_and_dark_follow_the_system(browser: Browser, proxy: LiveGateway) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = make_context(browser, color_scheme=scheme)
        try:
            page = watch(context).page
            open_chat(page, proxy)
            backgrounds[scheme] = page.evaluate(
                """() => getComputedStyle(document.body).backgroundColor
                        .match(/\\d+/g).slice(0, 3).map(Number)"""
            )
        finally:
            context.close()
    assert sum(backgrounds["light"]) > 600, backgrounds
    assert sum(backgrounds["dark"]) < 150, backgrounds
