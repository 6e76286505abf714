"""Browser tests (real app, real model, real Chromium) of the live bubble the reply streams into:
Markdown renders in it, raw HTML never becomes an element, and closing the tab stops the model."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.support.browser_utils import (
    LIVE,
    new_chat,
    open_app_page,
    reply_finished,
    send_message,
    user_texts,
    wait_for,
)
from tests.support.chat_ui import edit_in_place, tool, wait_settled
from tests.support.server_utils import served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

T = 60  # seconds; generous for a loaded 2-core machine
XSS = 'Start: <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> **bold**'
# Records, from before the click, everything the live bubble ever held: its longest text and whether
# an <img>, <script> or <strong> element was ever put in it.
WATCH_JS = """
() => {
  window.__live = {text: '', img: false, script: false, strong: false};
  new MutationObserver(() => {
    const box = document.querySelector('#live-reply');
    if (!box || box.hidden) return;
    const w = window.__live;
    if (box.textContent.length > w.text.length) w.text = box.textContent;
    w.img ||= !!box.querySelector('img'); w.script ||= !!box.querySelector('script');
    w.strong ||= !!box.querySelector('strong');
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    yield from served_app(tmp_path_factory, "browser-live")


@pytest.fixture
def page(app, browser):  # type: ignore[no-untyped-def]
    pg = open_app_page(browser, app.url, T)
    yield pg
    pg.close()


def last_reply(data_dir: Path) -> tuple[int, str, int]:
    """(version id, text, complete) of the newest reply version in the database."""
    db = sqlite3.connect(data_dir / "webui.db")
    try:
        return db.execute("select id, content, complete from message_versions order by id desc limit 1").fetchone()
    finally:
        db.close()


def set_reply_length(page, max_new_tokens: int, ban_eos: bool) -> None:  # type: ignore[no-untyped-def]
    """Set max_new_tokens and ban_eos_token in the Parameters tab (the page opened the newest chat,
    whose stored parameters another test may have set)."""
    page.get_by_role("tab", name="Parameters").click()
    box = page.locator("#param-max_new_tokens input[type=number]")
    box.fill(str(max_new_tokens))
    box.press("Enter")
    page.locator("#param-ban_eos_token input").set_checked(ban_eos)
    page.get_by_role("tab", name="Chat").click()


def finish_turn(page, text: str) -> None:  # type: ignore[no-untyped-def]
    send_message(page, text)
    wait_for(lambda: user_texts(page)[-1:] == [text], timeout=T, what="the user's message")
    # (the message line of a new chat already names the greeting "· assistant ·": wait for the reply's own)
    wait_settled(page, 3, timeout=T)  # the reply stored and shown


def test_continue_shows_the_reply_in_the_bubble_with_markdown_and_no_html(app, page) -> None:
    new_chat(page)
    set_reply_length(page, 60, ban_eos=False)
    finish_turn(page, "Say hello.")
    # The reply becomes the payload (as a model could write it), then Continue streams it on in the bubble.
    edit_in_place(page, 2, XSS)  # Gradio's edit on the reply
    page.wait_for_selector("#chatbot strong:has-text('bold')", timeout=T * 1000)
    page.evaluate(WATCH_JS)
    tool(page, 2, "continue").click()  # the button on the last reply
    wait_for(lambda: page.evaluate("() => window.__live.text.length") > 0, timeout=T, what="the live bubble")
    wait_for(lambda: reply_finished(page), timeout=T, what="the continued reply")
    seen = page.evaluate("() => window.__live")
    assert '<img src=x onerror="window.__xss=1">' in seen["text"] and "<script>" in seen["text"]  # shown as text
    assert seen["strong"]  # Markdown renders while the reply streams
    assert not seen["img"] and not seen["script"]
    time.sleep(0.5)
    assert page.evaluate("window.__xss") is None and page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator(f"{LIVE} img, #chatbot img[src='x']").count() == 0


def test_closing_the_tab_while_a_reply_streams_stops_the_model(app, browser) -> None:
    pg = open_app_page(browser, app.url, T)
    new_chat(pg)
    set_reply_length(pg, 3000, ban_eos=True)
    send_message(pg, "Count from one to a thousand, one number per line.")
    wait_for(lambda: len(pg.evaluate(f"() => document.querySelector('{LIVE}').textContent.trim()")) > 20,
             timeout=T, what="the reply streaming")
    pg.close()
    wait_for(lambda: "abandoned by its reader" in app.log(), timeout=30, what="the server noticing the closed tab")
    # the log line comes first; the reply's last text is written (and marked complete) just after it
    wait_for(lambda: last_reply(app.data_dir)[2] == 1, timeout=30, what="the cut-off reply stored as complete")
    version, text, _ = last_reply(app.data_dir)
    time.sleep(2)
    assert last_reply(app.data_dir) == (version, text, 1)  # nothing is written any more: the model stopped
    assert text.strip() and len(text.split()) < 2000


def test_sending_again_while_a_reply_streams_moves_the_bubble_to_the_new_reply(app, page) -> None:
    new_chat(page)
    set_reply_length(page, 200, ban_eos=False)
    send_message(page, "Write a long story about a castle.")
    live_text = f"() => document.querySelector('{LIVE}').textContent.trim()"
    wait_for(lambda: len(page.evaluate(live_text)) > 20, timeout=T, what="the first reply streaming")
    send_message(page, "Now just say hi.")
    wait_settled(page, 5, timeout=T)  # the second reply stored and shown
    # (waited for: the chat is re-rendered from the database, and a message's text can lag a moment)
    wait_for(lambda: user_texts(page)[-2:] == ["Write a long story about a castle.", "Now just say hi."],
             timeout=T, what="both user messages shown")
    db = sqlite3.connect(app.data_dir / "webui.db")
    try:
        rows = db.execute("select m.role, v.content from messages m join message_versions v on v.message_id = m.id "
                          "and v.idx = m.active_version where m.conversation_id = "
                          "(select max(id) from conversations) order by m.position").fetchall()
    finally:
        db.close()
    # The first reply was cut off by the second send and kept as far as it got; both are complete.
    assert [r[0] for r in rows] == ["assistant", "user", "assistant", "user", "assistant"]
    assert rows[2][1].strip() and rows[4][1].strip()
