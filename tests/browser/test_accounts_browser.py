"""Two accounts in two browser contexts against the real app: private chat lists, and one
user's Stop never stops the other's reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser_utils import bot_texts, reply_finished, send_message, user_texts, wait_for, wait_until_stable
from tests.support.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LONG = "Write a very long story about a lighthouse keeper. Use many paragraphs."


def login(browser, url: str, user: str, password: str):  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("input[type='password']", timeout=30000)
    page.locator("input:not([type='password'])").first.fill(user)
    page.fill("input[type='password']", password)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#chat-input textarea", timeout=60000)
    return context, page


def chat_titles(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator("#chat-list label").all_inner_texts()


def test_two_users_private_chats_and_independent_stop(tmp_path: Path, browser) -> None:
    app = start_app(tmp_path / "data", "--auth", "alice:wonderland", "--auth", "bob:builder")
    try:
        ctx_a, alice = login(browser, app.url, "alice", "wonderland")
        ctx_b, bob = login(browser, app.url, "bob", "builder")

        # Alice's reply streams; Bob's request waits behind it on the one inference thread.
        send_message(alice, "Alice asks: " + LONG)
        wait_for(
            lambda: len(bot_texts(alice)) >= 2 and bot_texts(alice)[-1].strip() != "", timeout=90, what="alice's reply"
        )
        send_message(bob, "Bob asks: " + LONG)
        wait_for(lambda: any(t.startswith("Bob asks") for t in user_texts(bob)), what="bob's message shown")

        alice.click("#stop")
        # her turn ends: the bubble is hidden and the chat shows the stored reply, which then stays put
        wait_for(lambda: reply_finished(alice) and len(bot_texts(alice)) >= 2, timeout=90, what="alice's reply to stop")
        a_stopped = wait_until_stable(lambda: bot_texts(alice)[-1])
        # Alice's Stop ends only her reply: Bob's still streams (it starts once hers has stopped).
        wait_for(lambda: len(bot_texts(bob)) >= 2 and len(bot_texts(bob)[-1].strip()) > 20, timeout=90,
                 what="bob's reply to stream after alice's Stop")
        assert bot_texts(alice)[-1] == a_stopped
        bob.click("#stop")

        # Each sees only their own chat, also after a reload.
        for page in (alice, bob):
            page.reload()
            page.wait_for_selector("#chat-input textarea")
        wait_for(lambda: any(t.startswith("Alice asks") for t in chat_titles(alice)), what="alice's chat listed")
        wait_for(lambda: any(t.startswith("Bob asks") for t in chat_titles(bob)), what="bob's chat listed")
        assert not any(t.startswith("Bob asks") for t in chat_titles(alice))
        assert not any(t.startswith("Alice asks") for t in chat_titles(bob))
        assert not any("Bob asks" in t for t in user_texts(alice))
        assert not any("Alice asks" in t for t in user_texts(bob))
        ctx_a.close()
        ctx_b.close()
    finally:
        app.stop()
