"""Browser tests (real app, real model, real Chromium): regenerate -> switch version, edit, branch,
card upload, persona switch, and that HTML from model/card/user text never executes."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.browser_utils import new_chat, open_app_page, wait_for
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


def info(page) -> str:
    return page.inner_text("#message-info")


def wait_info(page, pattern: str) -> None:
    page.wait_for_function(
        "p => new RegExp(p).test(document.querySelector('#message-info').innerText)", arg=pattern, timeout=T
    )


def send(page, text: str) -> None:
    before = info(page)
    page.fill("#chat-input textarea", text)
    page.click("#send")
    page.wait_for_function(
        "b => { const t = document.querySelector('#message-info').innerText; "
        "return t !== b && / assistant · /.test(t); }",
        arg=before, timeout=T,
    )


def pick(page, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=option).first.click()


def test_regenerate_switch_version_edit_branch_and_no_html_execution(app, page) -> None:
    new_chat(page)
    send(page, "Say hello in five words.")
    wait_info(page, r"Message 3 of 3 · assistant · version 1/1")
    first = page.input_value("#edit-box textarea")
    assert first.strip()

    page.click("#regenerate")
    wait_info(page, r"version 2/2")
    page.click("#prev-version")
    wait_info(page, r"version 1/2")
    assert page.input_value("#edit-box textarea") == first
    page.click("#next-version")
    wait_info(page, r"version 2/2")

    # edit the reply: Markdown renders, raw HTML does not run
    page.fill("#edit-box textarea", XSS)
    page.click("#save-edit")
    page.wait_for_selector("#chatbot strong:has-text('bold')", timeout=T)
    send(page, XSS)  # the user's own text too
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
    page.locator("#chatbot [data-testid='user']").first.click()
    wait_info(page, r"Message 2 of \d+ · user")
    page.click("#branch")
    page.wait_for_function("() => /\\(branch\\)/.test(document.querySelector('#chat-list').innerText)", timeout=T)
    wait_info(page, r"Message 2 of 2 · user")

    # everything is in the database and survives a reload
    page.reload()
    page.wait_for_function(
        "() => /\\(branch\\)/.test((document.querySelector('#chat-list') || {}).innerText || '')", timeout=T
    )
    wait_for(
        lambda: "Say hello in five words." in page.inner_text("#chatbot"), timeout=T / 1000, what="the branch reopened"
    )


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
