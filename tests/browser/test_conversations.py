"""Conversations live in the browser: create, rename, delete, settings per conversation, reload."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from support.live_gateway import LiveGateway
from support.scripted import ScriptedServer

from .chat import answers, open_chat, questions, send, stored, wait_idle


def links(page: Page) -> Locator:
    return page.locator("#conversations .conv-link")


def entry(page: Page, title: str) -> Locator:
    return page.locator("#conversations li").filter(
        has=page.get_by_role("link", name=title, exact=True)
    )


def test_conversations_survive_a_reload_and_stay_in_the_browser(
    page: Page, scripted: ScriptedServer, proxy: LiveGateway
) -> None:
    calls: list[str] = []
    page.on("request", lambda r: calls.append(f"{r.method} {r.url.removeprefix(proxy.url)}"))
    open_chat(page, proxy)
    send(page, "First question")
    wait_idle(page)
    page.get_by_text("System prompt and temperature").click()
    page.get_by_label("System prompt").fill("Be terse.")
    page.get_by_label("Temperature").fill("0.5")

    page.get_by_role("button", name="New chat", exact=True).click()
    expect(questions(page)).to_have_count(0)
    expect(page.get_by_label("System prompt")).to_have_value("")
    send(page, "Second question")
    wait_idle(page)
    expect(links(page)).to_have_text(["Second question", "First question"])

    entry(page, "Second question").get_by_role("button", name="Rename conversation").click()
    name = page.get_by_role("textbox", name="Conversation name")
    expect(name).to_be_focused()
    name.fill("Renamed chat")
    name.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Renamed chat")
    expect(links(page)).to_have_text(["Renamed chat", "First question"])

    page.reload()
    expect(links(page)).to_have_text(["Renamed chat", "First question"])
    expect(page.get_by_role("link", name="Renamed chat", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    expect(questions(page).locator(".body")).to_have_text(["Second question"])
    expect(answers(page).locator(".body")).to_have_text(["Hello, world"])

    page.get_by_role("link", name="First question", exact=True).click()
    expect(questions(page).locator(".body")).to_have_text(["First question"])
    expect(page.get_by_label("System prompt")).to_have_value("Be terse.")
    expect(page.get_by_label("Temperature")).to_have_value("0.5")

    # Delete asks first; cancelled, nothing changes.
    page.once("dialog", lambda d: d.dismiss())
    entry(page, "Renamed chat").get_by_role("button", name="Delete conversation").click()
    expect(links(page)).to_have_count(2)
    page.once("dialog", lambda d: d.accept())
    entry(page, "Renamed chat").get_by_role("button", name="Delete conversation").click()
    expect(links(page)).to_have_text(["First question"])
    page.reload()
    expect(links(page)).to_have_text(["First question"])
    saved = stored(page)
    assert [c["title"] for c in saved["conversations"]] == ["First question"]
    assert saved["conversations"][0]["system"] == "Be terse."
    assert saved["conversations"][0]["temperature"] == 0.5

    # The server was only asked for the page, the models and the answers: nothing was stored there.
    asked = {call.split("?")[0] for call in calls}
    assert asked <= {
        "GET /",
        "GET /static/app.js",
        "GET /static/api.js",
        "GET /static/markdown.js",
        "GET /static/markdown-parse.js",
        "GET /static/store.js",
        "GET /static/style.css",
        "GET /static/icon.svg",
        "GET /v1/models",
        "POST /v1/chat/completions",
    }, asked
    bodies = [r.json() for r in scripted.requests]
    assert [b["messages"][-1]["content"] for b in bodies] == ["First question", "Second question"]
