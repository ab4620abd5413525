"""Answers as they stream: stopping, hostile output, cuts, and the errors the gateway reports."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from support.live_gateway import LiveGateway
from support.scripted import Close, Reply, ScriptedServer, Sleep, Stall, chunk, event, sse

from .chat import (
    CONVERSATIONS,
    answers,
    eventually,
    health,
    message_box,
    notice,
    open_chat,
    questions,
    send,
    stop_button,
    stored,
    wait_idle,
)

JSON = {"Content-Type": "application/json"}


def slow_words(count: int = 400, delay: float = 0.03) -> Reply:
    """`count` words, one every `delay` seconds (12 s in all by default)."""
    return Reply(body=[event(chunk(f"word{i} ")) for i in range(count)] + [sse()], delay=delay)


@pytest.mark.parametrize("how", ["button", "escape"])
def test_stop_ends_the_answer_and_the_generation_behind_it(
    page: Page, scripted: ScriptedServer, proxy: LiveGateway, how: str
) -> None:
    scripted.reply(slow_words())
    open_chat(page, proxy)
    send(page, "Count slowly")
    body = answers(page).last.locator(".body")
    expect(body).to_contain_text("word10")
    expect(stop_button(page)).to_be_visible()
    assert health(proxy)["in_flight"] == 1

    if how == "button":
        stop_button(page).click()
    else:
        expect(message_box(page)).to_be_focused()
        page.keyboard.press("Escape")

    # The browser's abort reached the gateway, and the gateway let go of the upstream.
    assert scripted.requests[-1].disconnected.wait(5), "the upstream never saw the stop"
    eventually(lambda: health(proxy)["in_flight"] == 0, what="in_flight back to 0")
    expect(answers(page).last.locator(".stopped")).to_have_text("Stopped")
    wait_idle(page)
    text = body.text_content() or ""
    assert text.startswith("word0 word1 ") and "word10" in text and "word399" not in text
    saved = stored(page)["conversations"][0]["messages"][-1]
    assert saved["stopped"] is True and saved["content"] == text
    assert saved["stats"]["ttft"] > 0


def test_a_reload_while_answering_keeps_the_part_that_arrived_marked_cut(
    page: Page, scripted: ScriptedServer, proxy: LiveGateway
) -> None:
    scripted.reply(slow_words())
    open_chat(page, proxy)
    send(page, "Count slowly")
    expect(answers(page).last.locator(".body")).to_contain_text("word5")
    # The page saves a streaming answer about once a second.
    page.wait_for_function(
        "(k) => (localStorage.getItem(k) || '').includes('word5')", arg=CONVERSATIONS
    )
    page.reload()
    assert scripted.requests[-1].disconnected.wait(5), "the upstream never saw the page leave"
    eventually(lambda: health(proxy)["in_flight"] == 0, what="in_flight back to 0")
    answer = answers(page).last
    expect(answer.locator(".body")).to_contain_text("word0 word1 word2 word3 word4 word5")
    cut = answer.locator(".cut")
    expect(cut).to_have_text("Cut off: the page was closed while it was answering")
    expect(page.get_by_role("button", name="Regenerate", exact=True)).to_be_visible()


BIG_CODE = "".join(
    f"<div onclick=\"window.__pwned='code'\">line {i} "
    "<script>window.__pwned='code'</script></div>\n"
    for i in range(700)
)[:50_000]
HOSTILE = (
    "Here you go:\n\n"
    "<script>window.__pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.__pwned = 'img'\">\n\n"
    "[click me](javascript:window.__pwned='link') "
    "[shouting](JAVASCRIPT:window.__pwned='link') "
    "[tabbed](java\tscript:window.__pwned='link') "
    "[data](data:text/html,<script>alert(1)</script>) "
    "[relative](/v1/models) "
    "<javascript:window.__pwned='autolink'> "
    "![pixel](https://example.com/pixel.png) "
    "[safe](https://example.com/ok)\n\n"
    '**<b onmouseover="window.__pwned=\'b\'">bold</b>** <iframe src="https://example.com"></iframe>\n\n'
    "| <i>col</i> | two |\n|---|---|\n"
    "| <svg onload=\"window.__pwned='svg'\"></svg> | `<script>` |\n\n"
    "```html\n" + BIG_CODE + "\n```\n\n"
    "After the code.\n"
)


SHOWN_AS_TEXT = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "[tabbed](java\tscript:window.__pwned='link')",
    "<javascript:window.__pwned='autolink'>",
    "<b onmouseover=\"window.__pwned='b'\">bold</b>",
    '<iframe src="',
    "<svg onload=\"window.__pwned='svg'\"></svg>",
]


def missing_text(page: Page, needles: list[str]) -> list[str]:
    """The needles not found in the last answer's text (checked in the page: it is 50 KB)."""
    found: list[str] = page.evaluate(
        """(needles) => {
          const bodies = document.querySelectorAll("#messages .msg.assistant .body");
          const text = bodies[bodies.length - 1].textContent;
          return needles.filter((n) => !text.includes(n));
        }""",
        needles,
    )
    return found


def test_a_hostile_answer_runs_nothing_and_the_page_stays_responsive(
    page: Page, scripted: ScriptedServer, proxy: LiveGateway
) -> None:
    pieces = [HOSTILE[i : i + 256] for i in range(0, len(HOSTILE), 256)]
    scripted.reply(Reply(body=[event(chunk(p)) for p in pieces] + [sse()], delay=0.005))
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    open_chat(page, proxy)
    page.evaluate(
        """() => {
          window.__long = [];
          new PerformanceObserver((list) => {
            for (const e of list.getEntries()) window.__long.push(Math.round(e.duration));
          }).observe({type: "longtask"});
        }"""
    )
    send(page, "Show me something nasty")
    body = answers(page).last.locator(".body")

    # While the 50 KB code block streams in, the page still takes input.
    expect(body.locator(".code-block code")).to_contain_text("line 100 ")
    expect(stop_button(page)).to_be_visible()
    message_box(page).press_sequentially("still typing")
    expect(message_box(page)).to_have_value("still typing")
    wait_idle(page)
    expect(body.locator("p").last).to_have_text("After the code.")

    long_tasks = page.evaluate("window.__long")
    assert max(long_tasks, default=0) < 200, f"the main thread was blocked: {long_tasks} ms"
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    messages = page.locator("#messages")
    assert (
        messages.locator("script, img, iframe, svg, object, embed, b, i, div[onclick]").count() == 0
    )
    assert page.locator("[onerror], [onload], [onclick], [onmouseover]").count() == 0
    # Raw HTML is shown as the text it is.
    assert missing_text(page, SHOWN_AS_TEXT) == []
    expect(body.locator("table td code")).to_have_text("<script>")
    # Only the https URLs are links (the image is a link to it, the iframe's URL a bare link).
    links = body.locator("a")
    expect(links).to_have_count(3)
    hrefs = [links.nth(k).get_attribute("href") for k in range(3)]
    assert hrefs == [
        "https://example.com/pixel.png",
        "https://example.com/ok",
        "https://example.com/",
    ]
    expect(links.nth(0)).to_have_text("[image: pixel]")
    for k in range(3):
        expect(links.nth(k)).to_have_attribute("rel", "noopener noreferrer")
        expect(links.nth(k)).to_have_attribute("target", "_blank")
    not_links = body.locator(".not-a-link")
    expect(not_links).to_have_text(["click me", "shouting", "data", "relative"])
    # The code block holds the 50 KB exactly, as text.
    assert page.evaluate(
        "(big) => document.querySelector('#messages .code-block code').textContent === big",
        BIG_CODE,
    )
    # Clicking what would have been a javascript: link does nothing.
    url = page.url
    not_links.first.click()
    body.locator("strong").hover()
    assert page.url == url and page.evaluate("window.__pwned") is None
    assert len(page.context.pages) == 1


def test_an_answer_cut_after_some_tokens_is_kept_and_marked(
    page: Page, scripted: ScriptedServer, proxy: LiveGateway
) -> None:
    scripted.reply(
        Reply(body=[event(chunk("Partial ")), event(chunk("answer")), Sleep(0.2), Close()])
    )
    open_chat(page, proxy)
    send(page, "Tell me everything")
    wait_idle(page)
    answer = answers(page).last
    expect(answer.locator(".body")).to_have_text("Partial answer")
    cut = answer.locator(".cut")
    expect(cut).to_contain_text("Cut off:")
    reason = cut.text_content()
    assert health(proxy)["in_flight"] == 0
    # It is kept as cut: after a reload too.
    page.reload()
    expect(answers(page).last.locator(".body")).to_have_text("Partial answer")
    expect(answers(page).last.locator(".cut")).to_have_text(reason or "")


def test_an_upstream_failure_before_the_first_token(
    page: Page, scripted: ScriptedServer, proxy: LiveGateway
) -> None:
    scripted.reply(
        Reply(status=500, headers=JSON, body=[b'{"error": {"message": "kaput"}}']),
        Reply(body=[sse("Hello", ", world")]),
    )
    open_chat(page, proxy)
    send(page, "Hello?")
    expect(notice(page)).to_contain_text("The upstream failed before answering (HTTP 502): ")
    expect(notice(page)).to_contain_text("kaput")
    wait_idle(page)
    expect(answers(page)).to_have_count(0)
    expect(questions(page)).to_have_count(1)  # the question stays, to be asked again
    page.get_by_role("button", name="Regenerate", exact=True).click()
    expect(answers(page).last.locator(".body")).to_have_text("Hello, world")
    expect(notice(page)).to_be_hidden()


def test_429_shows_the_wait_from_retry_after(
    page: Page, scripted: ScriptedServer, proxy: LiveGateway
) -> None:
    scripted.reply(
        Reply(
            status=429,
            headers={**JSON, "Retry-After": "2"},
            body=[b'{"error": {"message": "slow down"}}'],
        ),
        Reply(body=[sse("Hello", ", world")]),
    )
    open_chat(page, proxy)
    with page.expect_response("**/v1/chat/completions") as refused:
        send(page, "Hello?")
    assert refused.value.status == 429 and refused.value.headers["retry-after"] == "2"
    alert = notice(page)
    expect(alert).to_contain_text("Too many requests (HTTP 429)")
    expect(alert).to_contain_text("wait 2 s (Retry-After)")
    retry = alert.get_by_role("button", name="Retry", exact=True)
    expect(retry).to_be_disabled()
    shown = time.monotonic()
    expect(retry).to_be_enabled(timeout=5000)
    assert time.monotonic() - shown > 1.0, "the page did not wait as it was told"
    retry.click()
    expect(answers(page).last.locator(".body")).to_have_text("Hello, world")
    expect(alert).to_be_hidden()


def test_503_at_the_concurrency_limit_shows_the_wait(
    page: Page, scripted: ScriptedServer, busy_proxy: LiveGateway
) -> None:
    scripted.handler = lambda recorded: (
        Reply(body=[Stall()])
        if b"hold the slot" in recorded.body
        else Reply(body=[sse("Free again")])
    )
    open_chat(page, busy_proxy)
    page.evaluate(
        """() => {
          window.__hold = new AbortController();
          fetch("/v1/chat/completions", {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({
              messages: [{role: "user", content: "hold the slot"}], stream: true,
            }),
            signal: window.__hold.signal,
          }).catch(() => {});
        }"""
    )
    eventually(lambda: health(busy_proxy)["in_flight"] == 1, what="the slot taken")
    send(page, "Anyone there?")
    alert = notice(page)
    expect(alert).to_contain_text("The service is busy or unavailable (HTTP 503)")
    expect(alert).to_contain_text("wait 1 s (Retry-After)")
    page.evaluate("window.__hold.abort()")
    eventually(lambda: health(busy_proxy)["in_flight"] == 0, what="the slot freed")
    retry = alert.get_by_role("button", name="Retry", exact=True)
    expect(retry).to_be_enabled(timeout=5000)
    retry.click()
    expect(answers(page).last.locator(".body")).to_have_text("Free again")
