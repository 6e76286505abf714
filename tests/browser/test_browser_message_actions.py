"""Browser tests (real app, real model, real Chromium) of the buttons on each message: edit in place,
regenerate adds a version and < > move between them, continue, branch, delete; the speed and context
line after a reply; the token counter changing as one types."""

from __future__ import annotations

import re
import sqlite3

import pytest

from tests.support.browser_utils import new_chat, open_app_page, wait_for, wait_until_stable
from tests.support.chat_ui import (
    T,
    edit_in_place,
    gradio_button,
    last_bot_text,
    message_count,
    send,
    tool,
    versions,
    wait_settled,
)
from tests.support.server_utils import served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from served_app(tmp_path_factory, "browser-message-actions")


@pytest.fixture
def page(app, browser):  # type: ignore[no-untyped-def]
    pg = open_app_page(browser, app.url, T)
    short_replies(pg)
    yield pg
    pg.close()


def short_replies(page, tokens: int = 12) -> None:  # type: ignore[no-untyped-def]
    """Keep replies short on a slow machine (the Parameters tab's Max new tokens)."""
    page.get_by_role("tab", name="Parameters").click()
    box = page.locator("#param-max_new_tokens input[type=number]")
    box.fill(str(tokens))
    box.press("Enter")
    page.get_by_role("tab", name="Chat").click()


def stored(app, sql: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    with sqlite3.connect(app.data_dir / "webui.db") as db:
        return db.execute(sql).fetchall()


def test_regenerate_versions_edit_continue_branch_delete(app, page) -> None:  # type: ignore[no-untyped-def]
    new_chat(page)
    wait_settled(page, 1)
    send(page, "Name a colour.", 3)

    # the speed and context line
    stats = page.inner_text("#reply-stats")
    assert re.match(r"Output generated in \d+\.\d\d s · first token after \d+\.\d\d s · \d+\.\d\d tokens/s · "
                    r"\d+ tokens · context \d+/\d+", stats), stats

    # Regenerate (Gradio's retry button on the last reply) adds a version; < and > move between them
    first = last_bot_text(page)
    gradio_button(page, 2, "Retry").click()
    wait_for(lambda: versions(page)[-1:] == ["2/2/a"], timeout=T, what="a second version")
    wait_settled(page, 3)
    assert page.locator("#chatbot .msg-tools[data-index='2'] .msg-version").inner_text() == "2/2"
    tool(page, 2, "prev").click()
    wait_for(lambda: versions(page)[-1:] == ["1/2/a"], timeout=T, what="version 1 shown")
    wait_for(lambda: last_bot_text(page) == first, timeout=T, what="the first version's text")
    tool(page, 2, "next").click()
    wait_for(lambda: versions(page)[-1:] == ["2/2/a"], timeout=T, what="version 2 shown")

    # edit the user's message in place: stored, and it is what the chat shows
    edit_in_place(page, 1, "Name a <b>fruit</b>.")
    wait_for(lambda: "Name a <b>fruit</b>." in page.inner_text("#chatbot"), timeout=T, what="the edit shown")
    wait_for(lambda: ("Name a <b>fruit</b>.",) in stored(app, "select content from message_versions"), timeout=T,
             what="the edit stored")
    assert page.locator("#chatbot b").count() == 0  # shown as text, not as HTML

    # Continue the last reply: it is extended, in the same version
    before = stats
    tool(page, 2, "continue").click()
    wait_for(lambda: page.inner_text("#reply-stats") != before, timeout=T, what="the continued reply's stats")
    wait_settled(page, 3)
    assert versions(page)[-1] == "2/2/a"

    # Branch from the user's message: a new chat holding the greeting and that message, opened
    tool(page, 1, "branch").click()
    wait_for(lambda: "(branch)" in page.inner_text("#chat-list") and "(branch)" in page.input_value(
        "#rename-box textarea"), timeout=T, what="the branch opened")
    wait_settled(page, 2)
    assert versions(page) == ["1/1/a", "1/1/u"]

    # Delete the branch's user message (after a confirm)
    page.answers.append(True)  # type: ignore[attr-defined]
    tool(page, 1, "delete").click()
    wait_settled(page, 1)
    assert page.dialogs[-1] == "Delete this message?"  # type: ignore[attr-defined]
    assert message_count(page) == 1


def count(page) -> int | None:  # type: ignore[no-untyped-def]
    found = re.search(r"(\d+) / \d+ tokens", page.inner_text("#token-count"))
    return int(found.group(1)) if found else None


def test_token_counter_follows_the_typing(app, page) -> None:  # type: ignore[no-untyped-def]
    new_chat(page)
    wait_settled(page, 1)
    box = page.locator("#chat-input textarea")
    box.press_sequentially("Hello", delay=30)
    wait_for(lambda: count(page) is not None, timeout=T, what="a count")
    # the count for "Hello" in this new chat (not one left from the chat the page opened on)
    first = int(wait_until_stable(lambda: str(count(page)), quiet=2.0, timeout=T))
    box.press_sequentially(" there, how many tokens is this sentence now?", delay=20)
    wait_for(lambda: (count(page) or 0) > first + 5, timeout=T, what="a larger count")
    box.fill("")
    box.press_sequentially("x", delay=30)
    wait_for(lambda: (count(page) or 10**6) < first + 5, timeout=T, what="a smaller count")
