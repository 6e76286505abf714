"""Playwright helpers for the buttons on the chat's messages (webui/ui/static/chat.js) and the lines
under the chat: what a test does the way a user does it (hover, click, type, press keys)."""

from __future__ import annotations

from tests.support.browser_utils import reply_finished, wait_for

T = 120  # seconds; a loaded 2-core machine with a real model


def versions(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Each message's "active/count/role", as the page script reads them (the tools' value)."""
    raw = page.get_attribute("#chat-tools .tool-row", "data-versions") or ""
    return [v for v in raw.split(",") if v]


def message_count(page) -> int:  # type: ignore[no-untyped-def]
    return page.locator("#chatbot .message-row").count()


def settled(page, n: int | None = None) -> bool:  # type: ignore[no-untyped-def]
    """No reply streaming, the chat drawn and its versions known (n: that many messages)."""
    count = message_count(page)
    return reply_finished(page) and len(versions(page)) == count and (n is None or count == n)


def wait_settled(page, n: int | None = None, timeout: float = T) -> None:  # type: ignore[no-untyped-def]
    try:
        wait_for(lambda: settled(page, n), timeout=timeout, what=f"the chat settled ({n} messages)")
    except AssertionError as exc:
        state = f"versions {versions(page)}, {message_count(page)} rows, streaming: {not reply_finished(page)}"
        raise AssertionError(f"{exc}; {state}") from None


def tool(page, index: int, act: str):  # type: ignore[no-untyped-def]
    """The page script's button ``act`` (prev, next, continue, branch, delete) on message ``index``."""
    row = page.locator("#chatbot .message-row").nth(index)
    row.hover()  # the buttons show on hover
    return page.locator(f"#chatbot .msg-tools[data-index='{index}'] [data-act='{act}']")


def gradio_button(page, index: int, label: str):  # type: ignore[no-untyped-def]
    """Gradio's own button (Copy message, Edit, Retry) under message ``index``."""
    page.locator("#chatbot .message-row").nth(index).hover()
    return page.locator(f"#chatbot .msg-tools[data-index='{index}']").locator("xpath=..").locator(
        f"button[aria-label='{label}']")


def send(page, text: str, n_after: int, timeout: float = T) -> None:  # type: ignore[no-untyped-def]
    """Send ``text`` and wait until the stored reply is shown (``n_after`` messages in all)."""
    page.fill("#chat-input textarea", text)
    page.click("#send")
    wait_settled(page, n_after, timeout)


def edit_in_place(page, index: int, text: str) -> None:  # type: ignore[no-untyped-def]
    """Gradio's edit: the pencil under the message, type, Submit."""
    gradio_button(page, index, "Edit").click()
    box = page.locator("#chatbot textarea.edit-textarea")
    box.fill(text)
    page.locator("#chatbot button[aria-label='Submit'], #chatbot button:has-text('Submit')").first.click()


def last_bot_text(page) -> str:  # type: ignore[no-untyped-def]
    texts = page.locator("#chatbot .message-row.bot-row .message-content").all_inner_texts()
    return texts[-1].strip() if texts else ""


def open_tab(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Show the tab ``name``, from Gradio's "More tabs" menu when it does not fit (a phone)."""
    tabs = page.locator(".tab-wrapper").first  # the app's own tabs (a tab may hold tabs of its own)
    tab = tabs.locator(f"[role=tablist] button[role=tab]:text-is('{name}')")
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    tabs.locator(".overflow-menu button[aria-label='More tabs']").click()
    tabs.locator(f".overflow-dropdown button:text-is('{name}')").click()


def open_import_export(page) -> None:  # type: ignore[no-untyped-def]
    """Unfold the sidebar's "Import / export" (the chat export and import, the backup) if folded."""
    label = page.locator("#import-export > button.label-wrap")
    if "open" not in (label.get_attribute("class") or ""):
        label.click()
    page.locator("#export-chat").wait_for(state="visible")
