"""Browser test (real app, real Chromium): a reply generated from a shifted KV cache (issue 12) shows a
small marker with its explanation next to its version counter; a version read exactly does not.
The stored flag comes from a real generation in tests/integration/test_context_shift_marker.py; here
the chat is seeded with it, so the page's part is checked without a long generation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser_utils import open_app_page, wait_for
from tests.support.chat_ui import tool, versions
from tests.support.server_utils import RunningApp, start_app
from webui.storage.db import open_database, sqlite_url
from webui.storage.repository import ChatRepository

pytestmark = pytest.mark.browser
T = 60  # seconds
TITLE = "Harbour talk"
TOOLTIP = ("Context shifted: the oldest turns were dropped from the cache without re-reading; "
           "the reply may differ slightly from a fresh read")


def seed(data_dir: Path) -> None:
    """A chat whose first reply has two versions: the first generated from a shifted cache, the
    second (shown) read exactly; then a shifted last reply."""
    db = open_database(sqlite_url(data_dir))
    repo = ChatRepository(db)
    conv = repo.create_conversation(TITLE, "Assistant", settings={"mode": "chat"})
    turn = repo.start_turn(conv.id, "Which harbour is the oldest?")
    repo.update_version(turn.reply_version_id, "Harbour 3, by far.", complete=True, context_shifted=True)
    repo.update_version(repo.add_version(turn.reply_message_id), "Harbour 5, I think.", complete=True)
    turn = repo.start_turn(conv.id, "Why?")
    repo.update_version(turn.reply_version_id, "Its pier is the oldest stone.", complete=True, context_shifted=True)
    db.dispose()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("shift-marker") / "data"
    data.mkdir()
    seed(data)
    running = start_app(data)
    yield running
    running.stop()


def marker(page, index: int):  # type: ignore[no-untyped-def]
    return page.locator(f"#chatbot .msg-tools[data-index='{index}'] .msg-shifted")


def opacity(page, index: int) -> str:  # type: ignore[no-untyped-def]
    """The opacity of message ``index``'s tools (the marker's row), as drawn (0 until shown)."""
    return page.evaluate("(i) => { const m = document.querySelector(`#chatbot .msg-tools[data-index='${i}']`);"
                         " return m ? getComputedStyle(m.closest('.message-buttons')).opacity : ''; }", index)


def test_a_shifted_reply_shows_the_marker_and_an_exact_one_does_not(app: RunningApp, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_app_page(browser, app.url)
    try:
        page.locator("#chat-list label", has_text=TITLE).click()
        wait_for(lambda: versions(page) == ["1/1/u", "2/2/a", "1/1/u", "1/1/a/s"], timeout=T, what="the chat opened")
        last = marker(page, 3)
        last.wait_for(state="visible", timeout=T * 1000)
        wait_for(lambda: opacity(page, 3) == "1", timeout=T, what="the last reply's tools shown without hovering")
        assert last.get_attribute("title") == TOOLTIP and last.get_attribute("aria-label") == TOOLTIP
        assert marker(page, 1).count() == 0 and marker(page, 0).count() == 0 and marker(page, 2).count() == 0

        tool(page, 1, "prev").click()  # the first version, generated from a shifted cache
        wait_for(lambda: versions(page)[1] == "1/2/a/s", timeout=T, what="version 1 shown")
        page.locator("#chatbot .message-row").nth(1).hover()
        marker(page, 1).wait_for(state="visible", timeout=T * 1000)
        wait_for(lambda: opacity(page, 1) == "1", timeout=T, what="an older reply's tools shown on hover")
        assert marker(page, 1).get_attribute("title") == TOOLTIP

        tool(page, 1, "next").click()  # back to the exact one: no marker
        wait_for(lambda: versions(page)[1] == "2/2/a", timeout=T, what="version 2 shown")
        wait_for(lambda: marker(page, 1).count() == 0, timeout=T, what="the marker gone")
    finally:
        page.close()
