"""Browser tests (real app, real model, real Chromium) of the keyboard shortcuts: Esc stops, Ctrl+Enter
regenerates, Alt+Enter continues, Ctrl+Shift+Backspace removes the last reply, Ctrl+Shift+M
impersonates, Left/Right switch versions of the last reply, ? shows the help; none fires where its
key means something else (the arrows in the message box, any of them in another text field)."""

from __future__ import annotations

import re
import time

import pytest

from tests.support.browser_utils import new_chat, open_app_page, wait_for
from tests.support.chat_ui import T, send, versions, wait_settled
from tests.support.server_utils import served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from served_app(tmp_path_factory, "browser-shortcuts")


@pytest.fixture
def page(app, browser):  # type: ignore[no-untyped-def]
    pg = open_app_page(browser, app.url, T)
    yield pg
    pg.close()


def max_tokens(page, n: int) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Parameters").click()
    box = page.locator("#param-max_new_tokens input[type=number]")
    box.fill(str(n))
    box.press("Enter")
    page.get_by_role("tab", name="Chat").click()


def outside_fields(page) -> None:  # type: ignore[no-untyped-def]
    """Focus nothing that takes typing (as after clicking the page's background)."""
    page.evaluate("document.activeElement && document.activeElement.blur()")


def unchanged_for(page, read, seconds: float = 2.0) -> bool:  # type: ignore[no-untyped-def]
    before = read()
    time.sleep(seconds)
    return read() == before


def generated_tokens(page) -> int:  # type: ignore[no-untyped-def]
    found = re.search(r"(\d+) tokens ·", page.inner_text("#reply-stats"))
    return int(found.group(1)) if found else -1


def test_shortcuts_act_on_the_last_reply(app, page) -> None:  # type: ignore[no-untyped-def]
    max_tokens(page, 10)
    new_chat(page)
    wait_settled(page, 1)
    send(page, "Tell me about the sea.", 3)

    # Ctrl+Enter from the message box regenerates (and does not send what is typed)
    page.fill("#chat-input textarea", "not sent")
    page.locator("#chat-input textarea").press("Control+Enter")
    wait_for(lambda: versions(page)[-1:] == ["2/2/a"], timeout=T, what="a second version")
    wait_settled(page, 3)
    assert page.input_value("#chat-input textarea") == "not sent"

    # the arrows in the message box move the caret, not the versions
    page.locator("#chat-input textarea").press("ArrowLeft")
    assert unchanged_for(page, lambda: versions(page))
    # elsewhere they switch the last reply's versions
    outside_fields(page)
    page.keyboard.press("ArrowLeft")
    wait_for(lambda: versions(page)[-1:] == ["1/2/a"], timeout=T, what="version 1")
    page.keyboard.press("ArrowRight")
    wait_for(lambda: versions(page)[-1:] == ["2/2/a"], timeout=T, what="version 2")

    # Alt+Enter continues the last reply (a new speed line, the same version)
    before = page.inner_text("#reply-stats")
    page.keyboard.press("Alt+Enter")
    wait_for(lambda: page.inner_text("#reply-stats") != before, timeout=T, what="the continued reply")
    wait_settled(page, 3)
    assert versions(page)[-1] == "2/2/a"

    # in another text field, none of them fires
    page.locator("#chat-search textarea, #chat-search input").first.focus()
    page.keyboard.press("Control+Enter")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Control+Shift+Backspace")
    assert unchanged_for(page, lambda: versions(page))

    # Ctrl+Shift+Backspace removes the last reply
    outside_fields(page)
    page.keyboard.press("Control+Shift+Backspace")
    wait_settled(page, 2)
    assert versions(page)[-1].endswith("/u")

    # Ctrl+Shift+M: the model writes the user's next message into the box
    page.fill("#chat-input textarea", "")
    page.locator("#chat-input textarea").press("Control+Shift+M")
    wait_for(lambda: page.input_value("#chat-input textarea").strip() != "", timeout=T, what="an impersonation")


def test_escape_stops_and_question_mark_shows_the_help(app, page) -> None:  # type: ignore[no-untyped-def]
    max_tokens(page, 400)
    new_chat(page)
    wait_settled(page, 1)
    page.fill("#chat-input textarea", "Write a very long story about a lighthouse keeper.")
    page.click("#send")
    wait_for(lambda: len(page.inner_text("#live-reply").split()) >= 3, timeout=T, what="the reply streaming")
    page.keyboard.press("Escape")
    wait_settled(page, 3, timeout=60)
    assert 0 < generated_tokens(page) < 400  # it stopped early

    outside_fields(page)
    help_box = page.locator("#chat-tools .shortcut-help")
    assert help_box.is_hidden()
    page.keyboard.press("?")
    help_box.wait_for(state="visible", timeout=10_000)
    assert "Ctrl+Shift+Backspace" in help_box.inner_text() and "Alt+Enter" in help_box.inner_text()
    page.keyboard.press("Escape")
    help_box.wait_for(state="hidden", timeout=10_000)
    # typed in the message box, "?" is just a character
    page.locator("#chat-input textarea").press_sequentially("why?")
    assert help_box.is_hidden() and page.input_value("#chat-input textarea").endswith("why?")
