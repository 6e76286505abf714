"""Browser tests (real app, real Chromium) of how the page looks and moves: the character gallery
starts a chat, the dark mode switch survives a reload, a phone-sized window never scrolls sideways
and keeps the message box and Send/Stop in reach, and no button is labelled with an emoji."""

from __future__ import annotations

import pytest

from tests.support.browser_utils import open_app_page, wait_for
from tests.support.chat_ui import T, open_tab, wait_settled
from tests.support.server_utils import served_app

pytestmark = pytest.mark.browser

TABS = ("Chat", "Characters", "Parameters", "Model", "Extensions")  # (and others' tabs, where there)
# Emoji code points: the pictographs (what an emoji font draws), the presentation selector, the keycap
EMOJI_JS = r"/[\p{Extended_Pictographic}\u{FE0F}\u{20E3}]/u"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from served_app(tmp_path_factory, "browser-look")


def test_gallery_starts_a_chat_and_edits(app, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_app_page(browser, app.url, T)
    try:
        page.get_by_role("tab", name="Characters").click()
        # the form shows a character from the start: never an empty Character box
        wait_for(lambda: page.input_value("#char-name textarea, #char-name input") == "Assistant", timeout=T,
                 what="the first character in the form")
        page.fill("#char-name textarea, #char-name input", "Nimue")
        page.fill("#char-first-mes textarea", "Greetings from the lake.")
        page.click("#save-character")
        card = page.locator("#character-gallery .char-card[data-name='Nimue']")
        card.wait_for(state="visible", timeout=T * 1000)
        assert page.locator("#character-gallery .char-card").count() == 2

        search = page.locator("#character-search textarea, #character-search input").first
        search.press_sequentially("nim", delay=50)
        wait_for(lambda: page.locator("#character-gallery .char-card").count() == 1, timeout=T, what="the search")
        search.press("Control+a")
        search.press("Backspace")
        wait_for(lambda: page.locator("#character-gallery .char-card").count() == 2, timeout=T, what="all again")

        page.locator("#character-gallery .char-card[data-name='Assistant'] [data-act='edit']").click()
        wait_for(lambda: page.input_value("#char-name textarea, #char-name input") == "Assistant", timeout=T,
                 what="Assistant in the form")

        card.locator("[data-act='chat']").click()
        wait_for(lambda: page.locator("#chat-input textarea").is_visible(), timeout=T, what="the Chat tab")
        wait_for(lambda: page.input_value("#chat-character input") == "Nimue", timeout=T, what="a chat with Nimue")
        wait_settled(page, 1)
        wait_for(lambda: "Greetings from the lake." in (page.text_content("#chatbot") or ""), timeout=T,
                 what="Nimue's greeting")
    finally:
        page.close()


def test_dark_mode_switch_is_remembered(app, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(color_scheme="light")
    page = context.new_page()
    try:
        page.goto(app.url)
        page.wait_for_selector("#chat-tools .theme-toggle")
        dark = "() => document.body.classList.contains('dark')"
        assert page.evaluate(dark) is False  # follows the system: light here
        page.click("#chat-tools .theme-toggle")
        assert page.evaluate(dark) is True
        page.reload()
        page.wait_for_selector("#chat-tools .theme-toggle")
        wait_for(lambda: page.evaluate(dark) is True, timeout=T, what="dark after a reload")
        page.click("#chat-tools .theme-toggle")
        page.reload()
        page.wait_for_selector("#chat-tools .theme-toggle")
        page.wait_for_timeout(1000)
        assert page.evaluate(dark) is False
    finally:
        context.close()


def test_phone_layout_never_scrolls_sideways(app, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(app.url)
        page.wait_for_selector("#chat-input textarea")
        wait_for(lambda: "SmolLM2" in page.inner_text("#model-info"), timeout=T, what="the page-load event")
        # the sidebar is folded behind its button
        wait_for(lambda: page.locator("#chat-sidebar.open").count() == 0, timeout=10, what="the sidebar folded")
        assert page.locator("#chat-sidebar .toggle-button").is_visible()
        for selector in ("#chat-input textarea", "#send", "#stop"):
            box = page.locator(selector)
            box.scroll_into_view_if_needed()
            rect = box.bounding_box()
            assert rect is not None and rect["x"] >= 0 and rect["x"] + rect["width"] <= 390, (selector, rect)
        for tab in TABS:
            open_tab(page, tab)
            page.wait_for_timeout(500)
            width = page.evaluate("() => [document.documentElement.scrollWidth, document.body.scrollWidth]")
            assert max(width) <= 390, (tab, width)
    finally:
        context.close()


def test_no_button_label_is_an_emoji(app, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_app_page(browser, app.url, T)
    try:
        for tab in TABS:  # each tab's controls are drawn on its first visit
            open_tab(page, tab)
            page.wait_for_timeout(300)
        labels = page.evaluate(
            f"() => [...document.querySelectorAll('button, [role=button], [role=tab]')]"
            f".map(b => (b.innerText || '') + ' ' + (b.getAttribute('aria-label') || '') + ' '"
            f" + (b.title || '')).filter(t => {EMOJI_JS}.test(t))"
        )
        assert labels == []
        assert page.evaluate(f"() => {EMOJI_JS}.test('\\u2795 New chat')")  # the check finds one
    finally:
        page.close()


def test_the_chat_list_takes_no_room_on_the_other_tabs(app, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(app.url)
        page.wait_for_selector("#chat-input textarea")
        room = lambda: page.evaluate(  # noqa: E731
            "() => parseFloat(getComputedStyle(document.querySelector('.sidebar-parent')).paddingLeft)")
        assert page.locator("#chat-sidebar").is_visible() and room() > 100
        page.get_by_role("tab", name="Model").click()
        wait_for(lambda: page.locator("#model-status, #model-info").count() > 0 and room() == 0, timeout=10,
                 what="the sidebar's room gone on the Model tab")
        page.get_by_role("tab", name="Chat").click()
        wait_for(lambda: page.locator("#chat-sidebar").is_visible() and room() > 100, timeout=10,
                 what="the chat list back on the Chat tab")
    finally:
        context.close()
