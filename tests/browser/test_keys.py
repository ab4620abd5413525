"""A gateway with a key: the page asks for it, sends it as a bearer token, keeps it per tab."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from support.live_gateway import LiveGateway
from support.scripted import ScriptedServer

from .chat import KEY, answers, model_picker, notice, open_chat, send, wait_idle
from .conftest import API_KEY, SCRIPTED_MODEL


def key_storage(page: Page) -> dict[str, str | None]:
    return page.evaluate(
        "(k) => ({session: sessionStorage.getItem(k), local: localStorage.getItem(k)})", KEY
    )


def enter_key(page: Page, key: str, remember: bool = False) -> None:
    dialog = page.get_by_role("dialog", name="API key")
    dialog.get_by_label("Key", exact=True).fill(key)
    dialog.get_by_label("Remember on this device").set_checked(remember)
    dialog.get_by_role("button", name="Save", exact=True).click()


def test_a_refused_key_then_the_right_one(
    page: Page, scripted: ScriptedServer, keyed_proxy: LiveGateway
) -> None:
    sent: list[tuple[str, str | None]] = []
    page.on(
        "request",
        lambda r: (
            sent.append((r.url.rsplit("/", 1)[-1], r.headers.get("authorization")))
            if "/v1/" in r.url
            else None
        ),
    )
    response = open_chat(page, keyed_proxy)
    assert response.status == 200  # the page itself needs no key
    dialog = page.get_by_role("dialog", name="API key")
    expect(dialog).to_contain_text("This gateway needs an API key.")
    expect(dialog.get_by_label("Key", exact=True)).to_be_focused()

    enter_key(page, "wrong-key")
    expect(dialog).to_contain_text("The gateway refused this key (HTTP 401)")
    expect(model_picker(page).locator("option")).to_have_count(0)

    enter_key(page, API_KEY)
    expect(dialog).to_be_hidden()
    expect(model_picker(page)).to_have_value(SCRIPTED_MODEL)
    assert key_storage(page) == {"session": API_KEY, "local": None}
    send(page, "Hello?")
    expect(answers(page).last.locator(".body")).to_have_text("Hello, world")
    assert sent == [
        ("models", None),
        ("models", "Bearer wrong-key"),
        ("models", f"Bearer {API_KEY}"),
        ("completions", f"Bearer {API_KEY}"),
    ]
    # The browser's key stops at the gateway: the upstream never sees it.
    assert API_KEY not in str(scripted.requests[-1].headers)

    # A key refused on a chat request: the error says so, and the dialog asks again.
    page.get_by_role("button", name="API key", exact=True).click()
    enter_key(page, "stale-key")
    expect(dialog).to_contain_text("refused")
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    send(page, "And now?")
    expect(notice(page)).to_contain_text("The gateway refused the API key (HTTP 401)")
    expect(dialog).to_be_visible()
    enter_key(page, API_KEY)
    notice(page).get_by_role("button", name="Retry", exact=True).click()
    wait_idle(page)
    expect(answers(page)).to_have_count(2)
    expect(notice(page)).to_be_hidden()


def test_the_key_is_kept_for_the_tab_unless_remembered(
    context: BrowserContext, page: Page, keyed_proxy: LiveGateway
) -> None:
    open_chat(page, keyed_proxy)
    enter_key(page, API_KEY)
    expect(model_picker(page)).to_have_value(SCRIPTED_MODEL)

    # A reload keeps the tab's key; another tab does not have it.
    page.reload()
    expect(model_picker(page)).to_have_value(SCRIPTED_MODEL)
    expect(page.get_by_role("dialog")).to_be_hidden()
    other = context.new_page()
    open_chat(other, keyed_proxy)
    expect(other.get_by_role("dialog", name="API key")).to_be_visible()
    assert key_storage(other) == {"session": None, "local": None}

    # Remembered: in localStorage only, and a third tab starts with it.
    enter_key(other, API_KEY, remember=True)
    expect(model_picker(other)).to_have_value(SCRIPTED_MODEL)
    assert key_storage(other) == {"session": None, "local": API_KEY}
    third = context.new_page()
    open_chat(third, keyed_proxy)
    expect(model_picker(third)).to_have_value(SCRIPTED_MODEL)
    expect(third.get_by_role("dialog")).to_be_hidden()

    # Forgotten: gone from both, and the page asks again.
    third.get_by_role("button", name="API key", exact=True).click()
    third.get_by_role("button", name="Forget the key", exact=True).click()
    expect(third.get_by_role("dialog", name="API key")).to_contain_text("needs an API key")
    assert key_storage(third) == {"session": None, "local": None}
