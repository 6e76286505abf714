"""Extensions in a real browser against the real app (embedded GGUF on llama.cpp)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.browser_utils import (
    bot_texts,
    new_chat,
    open_app_page,
    reply_finished,
    send_message,
    wait_for,
    wait_until_stable,
)
from tests.support.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_enable_extension_change_param_and_see_it_in_the_reply(tmp_path: Path, browser) -> None:
    data = tmp_path / "data"
    app = start_app(data)
    try:
        page = open_app_page(browser, app.url)
        page.get_by_role("tab", name="Extensions").click()
        page.locator("#ext-enabled-example input").check()
        wait_for(lambda: "example" in page.locator("#ext-order").inner_text(), what="example enabled")
        if not page.locator("#ext-example-uppercase input").is_visible():
            page.locator("#ext-settings-example button").first.click()  # open the settings accordion
        page.locator("#ext-example-uppercase input").check()
        saved = data / "extensions.json"
        wait_for(lambda: saved.exists() and json.loads(saved.read_text()).get("example", {}).get("uppercase") is True,
                 what="uppercase setting saved")
        assert json.loads(saved.read_text())["@enabled"]["order"] == ["example"]

        page.get_by_role("tab", name="Chat").click()
        send_message(page, "Say hello to me in one short sentence.")
        wait_for(lambda: len(bot_texts(page)) >= 2 and bot_texts(page)[-1].strip() != "", timeout=60, what="a reply")
        reply = wait_until_stable(lambda: bot_texts(page)[-1])
        wait_for(lambda: reply_finished(page) and bot_texts(page)[-1].strip() != "", what="the first reply to finish")
        reply = bot_texts(page)[-1]
        assert any(ch.isalpha() for ch in reply)
        assert reply == reply.upper(), reply  # the example extension's output_modifier, as set in the UI

        # Turn the setting off again: the next reply is the model's own casing.
        page.get_by_role("tab", name="Extensions").click()
        page.locator("#ext-example-uppercase input").uncheck()
        wait_for(lambda: json.loads(saved.read_text()).get("example", {}).get("uppercase") is not True,
                 what="uppercase setting cleared")
        page.get_by_role("tab", name="Chat").click()
        # A new chat: the first reply was stored upper-cased (output_modifier's text is what is kept),
        # and a small model shown an all-caps history tends to answer in capitals by itself.
        new_chat(page)
        wait_for(lambda: len(bot_texts(page)) == 1 and bot_texts(page)[0] != bot_texts(page)[0].upper(),
                 what="a new chat with only the greeting")
        send_message(page, "Say hello to me in one short sentence.")
        wait_for(lambda: len(bot_texts(page)) >= 2 and bot_texts(page)[-1].strip() != "", timeout=60, what="2nd reply")
        wait_until_stable(lambda: bot_texts(page)[-1])
        wait_for(lambda: reply_finished(page) and len(bot_texts(page)) >= 2 and bot_texts(page)[-1].strip() != "",
                 what="the second reply to finish")
        second = bot_texts(page)[-1]
        assert second != second.upper(), second
    finally:
        app.stop()
