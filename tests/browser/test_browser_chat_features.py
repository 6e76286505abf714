"""Browser tests (real app, real model, real Chromium): regenerate -> switch version, edit in place, branch
(the buttons on the messages),
card upload, persona switch, and that HTML from model/card/user text never executes."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.browser_utils import new_chat, open_app_page, wait_for
from tests.support.chat_ui import edit_in_place, gradio_button, last_bot_text, send, tool, versions, wait_settled
from tests.support.server_utils import served_app
from tests.support.shared_fixtures import seraphina_card

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1;alert(1)"> <script>window.__xss=2;alert(2)</script> **bold**'
T = 60_000  # ms; generous for a loaded 2-core machine


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    yield from served_app(tmp_path_factory, "browser-chat")


@pytest.fixture
def page(app, browser):  # type: ignore[no-untyped-def]
    pg = open_app_page(browser, app.url, T / 1000)
    yield pg
    pg.close()


def pick(page, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=option).first.click()


def test_regenerate_switch_version_edit_branch_and_no_html_execution(app, page) -> None:
    new_chat(page)
    wait_settled(page, 1)
    send(page, "Say hello in five words.", 3)
    first = last_bot_text(page)
    assert first

    # the buttons on the last reply: Regenerate (Gradio's retry) adds a version, < and > switch
    gradio_button(page, 2, "Retry").click()
    wait_for(lambda: versions(page)[-1:] == ["2/2/a"], timeout=T / 1000, what="version 2/2")
    wait_settled(page, 3)
    tool(page, 2, "prev").click()
    wait_for(lambda: versions(page)[-1:] == ["1/2/a"], timeout=T / 1000, what="version 1/2")
    wait_for(lambda: last_bot_text(page) == first, timeout=T / 1000, what="the first version shown")
    tool(page, 2, "next").click()
    wait_for(lambda: versions(page)[-1:] == ["2/2/a"], timeout=T / 1000, what="version 2/2 again")

    # edit the reply in place: Markdown renders, raw HTML does not run
    edit_in_place(page, 2, XSS)
    page.wait_for_selector("#chatbot strong:has-text('bold')", timeout=T)
    send(page, XSS, 5)  # the user's own text too
    # (the chat is re-rendered from the database; a message's text can be drawn a moment later)
    wait_for(
        lambda: '<img src=x onerror=' in page.inner_text("#chatbot"), timeout=T / 1000, what="the user's text shown"
    )
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator("#chatbot img[src='x']").count() == 0
    assert page.locator("#chatbot script").count() == 0
    assert '<img src=x onerror=' in page.inner_text("#chatbot")  # shown as text, not dropped
    assert page.evaluate("window.__xss") is None  # (looked at again once the text is drawn)

    # branch from the first user message: a new chat with the greeting and that message
    tool(page, 1, "branch").click()
    page.wait_for_function("() => /\\(branch\\)/.test(document.querySelector('#chat-list').innerText)", timeout=T)
    wait_settled(page, 2)
    assert versions(page) == ["1/1/a", "1/1/u"]

    # everything is in the database and survives a reload
    page.reload()
    page.wait_for_function(
        "() => /\\(branch\\)/.test((document.querySelector('#chat-list') || {}).innerText || '')", timeout=T
    )
    wait_for(lambda: "Say hello in five words." in (page.text_content("#chatbot") or ""), timeout=T / 1000,
             what="the branch reopened")


def test_card_upload_then_persona_switch(app, page) -> None:
    page.get_by_role("tab", name="Characters").click()
    page.set_input_files("#character-upload input[type=file]", str(seraphina_card()))
    page.wait_for_function(
        "() => document.querySelector('#char-name textarea, #char-name input').value === 'Seraphina'", timeout=T
    )
    assert "4 entries" in page.inner_text("#char-lore")
    assert (app.data_dir / "characters" / "Seraphina.yaml").is_file()

    page.fill("#persona-name input, #persona-name textarea", "Alice")
    page.fill("#persona-description textarea", "A botanist who loves ferns.")
    page.click("#save-persona")
    page.get_by_text("Saved persona Alice.").first.wait_for(state="visible", timeout=T)

    page.get_by_role("tab", name="Chat").click()
    pick(page, "#chat-character", "Seraphina")
    new_chat(page)
    page.wait_for_function("() => /Seraphina/.test(document.querySelector('#chatbot').innerText)", timeout=T)
    assert "Creator's notes" in page.inner_text("#creator-notes")
    assert page.locator("#chatbot [class*=avatar] img").count() >= 1  # the card's picture is the avatar

    pick(page, "#chat-persona", "Alice")
    page.get_by_text("Prompt", exact=True).click()

    def prompt_names_alice() -> bool:  # Show prompt reads the chat's persona, stored by the pick's own event
        page.click("#show-prompt")
        page.wait_for_timeout(300)
        return "Alice's persona" in page.input_value("#prompt-view textarea")

    wait_for(prompt_names_alice, timeout=T / 1000, what="the prompt to use the persona Alice")
    prompt = page.input_value("#prompt-view textarea")
    assert "A botanist who loves ferns." in prompt and "OtisAlejandro" not in prompt  # creator notes never in a prompt

    # the same prompt comes from the API (same code path)
    body = {
        "messages": [{"role": "user", "content": "Where is the glade?"}], "character": "Seraphina", "persona": "Alice"
    }
    api = httpx.post(f"{app.url}/v1/internal/chat-prompt", json=body, timeout=60).json()["prompt"]
    assert "Alice's persona: A botanist who loves ferns." in api and re.search(r"Seraphina", api)
