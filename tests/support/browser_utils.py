"""Playwright helpers for driving the real UI in Debian's chromium (never `playwright install`)."""

from __future__ import annotations

import time
from collections.abc import Callable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BOT = "#chatbot .message-row.bot-row .message-content"
USER = "#chatbot .message-row.user-row .message-content"


LIVE = "#live-reply"


def bot_texts(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The bot's messages as shown: the chat's, then the reply streaming in the live bubble (if any).

    Read in one script run, so the bubble cannot vanish between finding and reading it.
    """
    return page.evaluate(
        """([bot, live]) => {
            const texts = [...document.querySelectorAll(bot)].map(e => e.innerText);
            const bubble = document.querySelector(live);
            if (bubble && bubble.offsetParent !== null) texts.push(bubble.innerText);
            return texts;
        }""",
        [BOT, LIVE],
    )


def reply_finished(page) -> bool:  # type: ignore[no-untyped-def]
    """True once no reply is streaming: the live bubble is gone and the chat shows the stored reply."""
    return bool(page.evaluate(
        "(live) => { const b = document.querySelector(live); return !b || b.offsetParent === null; }", LIVE
    ))


def user_texts(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator(USER).all_inner_texts()


def send_message(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#chat-input textarea", text)
    page.click("#send")


def new_chat(page, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Click New chat and wait for its own outputs: another chat is checked in the list, named "New chat"."""
    checked = "() => (document.querySelector('#chat-list input:checked') || {}).value || null"
    before = page.evaluate(checked)
    page.click("#new-chat")
    wait_for(lambda: page.evaluate(checked) != before and page.input_value("#rename-box textarea") == "New chat",
             timeout=timeout, what="a new chat")


def wait_for(
    predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.1, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_until_stable(read: Callable[[], str], quiet: float = 1.5, timeout: float = 60) -> str:
    """Wait until ``read()`` stops changing for ``quiet`` seconds; return its value."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError("value kept changing")


def open_app_page(browser, url: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    """A new tab on the app, once the page-load event has run (it shows the model's name), with
    every dialog recorded in ``page.dialogs``; a dialog is accepted if the next of ``page.answers``
    (append True to accept, False to dismiss) says so, else dismissed."""
    page = browser.new_page()
    page.dialogs = []
    page.answers = []

    def on_dialog(dialog) -> None:  # type: ignore[no-untyped-def]
        page.dialogs.append(dialog.message)
        dialog.accept() if page.answers and page.answers.pop(0) else dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    page.wait_for_selector("#chat-input textarea")
    wait_for(lambda: "SmolLM2" in page.inner_text("#model-info"), timeout=timeout, what="the page-load event")
    return page
