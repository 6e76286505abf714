"""What a person does in the chat tab, in a real browser against the real app and model."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest

from tests.support.browser_utils import (
    bot_texts,
    new_chat,
    open_app_page,
    reply_finished,
    send_message,
    user_texts,
    wait_for,
    wait_until_stable,
)
from tests.support.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LONG_PROMPT = "Write a very long story about a dragon who learns to bake bread. Use many paragraphs."


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", text)


def stored_replies(data_dir: Path) -> list[tuple[str, int]]:
    db = sqlite3.connect(data_dir / "webui.db")
    try:
        return db.execute(
            "select v.content, v.complete from messages m join message_versions v on v.message_id = m.id "
            "where m.role = 'assistant' order by m.id"
        ).fetchall()
    finally:
        db.close()


def test_chat_streams_stops_and_survives_reload_and_restart(tmp_path: Path, browser) -> None:
    data = tmp_path / "data"
    app = start_app(data)
    try:
        page = open_app_page(browser, app.url)  # (it waits for the page-load event: the model's name)

        send_message(page, LONG_PROMPT)
        wait_for(lambda: LONG_PROMPT in user_texts(page), what="the user's message")
        # The reply streams: we see it at several growing lengths before it ends.
        lengths: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(set(lengths)) < 4:
            texts = bot_texts(page)
            if len(texts) >= 2 and texts[-1].strip():
                lengths.append(len(texts[-1]))
            time.sleep(0.05)
        assert len(set(lengths)) >= 4 and lengths == sorted(lengths), lengths

        page.click("#stop")
        stopped = wait_until_stable(lambda: bot_texts(page)[-1])
        assert stopped.strip()
        wait_for(lambda: stored_replies(data)[-1][1] == 1, what="the stopped reply marked complete")
        content, _ = stored_replies(data)[-1]
        assert content.strip() and content.split()[0] in stopped
        assert len(content.split()) < 500  # it really stopped (max_new_tokens is 512)

        # Reload: the chat is listed and reopened with the same messages.
        page.reload()
        page.wait_for_selector("#chat-input textarea")
        wait_for(lambda: LONG_PROMPT[:20] in page.inner_text("#chat-list"), what="chat in the sidebar")
        wait_for(lambda: LONG_PROMPT in user_texts(page), what="the chat reopened after reload")
        wait_for(lambda: bot_texts(page)[-1].strip()[:30] == stopped.strip()[:30], what="the stopped reply shown")
    finally:
        app.stop()

    # Restart the server on the same data dir: everything is still there.
    app = start_app(data)
    try:
        page = open_app_page(browser, app.url)
        wait_for(lambda: LONG_PROMPT in user_texts(page), what="the chat after a restart")
        assert LONG_PROMPT[:20] in page.inner_text("#chat-list")

        # A second turn in the same chat works after the restart.
        send_message(page, "Thank you!")
        wait_for(lambda: user_texts(page)[-1:] == ["Thank you!"], what="second message")
        wait_for(
            lambda: len(stored_replies(data)) == 3 and stored_replies(data)[-1][1] == 1, timeout=90, what="second reply"
        )
        wait_for(lambda: reply_finished(page), what="the live bubble hidden")
        # The chat shows the stored reply (compared by its words: the chat renders Markdown, so list
        # markers and emphasis are not in the text shown).
        stored = words(stored_replies(data)[-1][0])
        wait_for(lambda: words(bot_texts(page)[-1]) == stored, what=f"reply shown: {stored[:12]}…")
    finally:
        app.stop()


def test_sidebar_new_rename_delete(tmp_path: Path, browser) -> None:
    app = start_app(tmp_path / "data")
    try:
        page = open_app_page(browser, app.url)
        new_chat(page)
        wait_for(lambda: "Hello! How can I help you today?" in " ".join(bot_texts(page)), what="greeting")
        wait_for(lambda: "New chat" in page.inner_text("#chat-list"), what="new chat listed")

        page.fill("#rename-box textarea", "Dragon plans")
        page.click("#rename-chat")
        wait_for(lambda: "Dragon plans" in page.inner_text("#chat-list"), what="renamed chat")

        new_chat(page)
        wait_for(lambda: page.inner_text("#chat-list").count("New chat") == 1, what="second chat")
        # Open the first one again from the list.
        page.get_by_label("Dragon plans").check()
        wait_for(lambda: page.input_value("#rename-box textarea") == "Dragon plans", what="opened chat")

        # Delete asks for confirmation: dismissing keeps the chat, accepting removes it.
        page.answers.append(False)
        page.click("#delete-chat")
        wait_for(lambda: len(page.dialogs) == 1, what="the confirm dialog")
        time.sleep(1)
        assert "Dragon plans" in page.inner_text("#chat-list")
        page.answers.append(True)
        page.click("#delete-chat")
        wait_for(lambda: len(page.dialogs) == 2, what="the second confirm dialog")
        wait_for(lambda: "Dragon plans" not in page.inner_text("#chat-list"), what="chat deleted")
        page.reload()
        page.wait_for_selector("#chat-input textarea")
        wait_for(lambda: "New chat" in page.inner_text("#chat-list"), what="the chat list after reload")
        assert "Dragon plans" not in page.inner_text("#chat-list")
    finally:
        app.stop()
