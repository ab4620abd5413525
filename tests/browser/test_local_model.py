"""A conversation with the real local model (SmolLM2-135M) through the page.

The model is tiny and often wrong: the tests check that its tokens stream in and
what the page sends, never what the model says.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, Request, expect

from support.live_gateway import LiveGateway

from .chat import (
    answers,
    health,
    model_picker,
    open_chat,
    questions,
    record_lengths,
    send,
    stop_button,
    stored,
    wait_idle,
)

STATS = re.compile(r"^first token \d+\.\d\d s · \d+\.\d tokens/s · \d+ tokens$")


def test_a_conversation_with_the_local_model(page: Page, local_gateway: LiveGateway) -> None:
    bodies: list[Any] = []

    def record(request: Request) -> None:
        if request.url.endswith("/v1/chat/completions"):
            bodies.append(request.post_data_json)

    page.on("request", record)
    open_chat(page, local_gateway)
    served = health(local_gateway)["model"]
    expect(model_picker(page)).to_have_value(served)
    page.get_by_text("System prompt and temperature").click()
    page.get_by_label("System prompt").fill("You are a helpful assistant.")
    page.get_by_label("Temperature").fill("0.3")

    record_lengths(page)
    send(page, "Name three animals that live in the sea.")
    expect(stop_button(page)).to_be_visible()
    wait_idle(page, timeout=30_000)
    answer = answers(page).last
    text = answer.locator(".body").text_content() or ""
    assert text.strip(), "the model said nothing"
    # The answer grew on screen piece by piece, not in one go at the end.
    lengths = page.evaluate("window.__lengths")
    growing = [n for n in lengths if 0 < n < len(text)]
    assert len(growing) >= 2, lengths
    expect(answer.locator(".meta")).to_have_text(STATS)
    first = bodies[0]
    assert first["model"] == served and first["stream"] is True
    assert first["temperature"] == 0.3
    assert first["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three animals that live in the sea."},
    ]
    assert first["stream_options"] == {"include_usage": True}

    # Regenerate: the same question again, the answer replaced.
    answer.get_by_role("button", name="Regenerate", exact=True).click()
    wait_idle(page, timeout=30_000)
    expect(answers(page)).to_have_count(1)
    expect(answers(page).last.locator(".meta")).to_have_text(STATS)
    assert bodies[1]["messages"] == first["messages"]

    # Edit and resend the last question.
    questions(page).last.get_by_role("button", name="Edit", exact=True).click()
    edited = page.get_by_role("textbox", name="Edited text")
    expect(edited).to_have_value("Name three animals that live in the sea.")
    edited.fill("What is the capital of France?")
    edited.press("Enter")
    wait_idle(page, timeout=30_000)
    expect(questions(page).locator(".body")).to_have_text(["What is the capital of France?"])
    expect(answers(page)).to_have_count(1)
    assert bodies[2]["messages"][-1] == {
        "role": "user",
        "content": "What is the capital of France?",
    }
    assert len(bodies[2]["messages"]) == 2

    saved = stored(page)["conversations"][0]
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant"]
    assert saved["messages"][1]["content"].strip() and saved["messages"][1]["stats"]["tokens"] > 0
    assert health(local_gateway)["in_flight"] == 0
