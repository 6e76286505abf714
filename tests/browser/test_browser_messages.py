"""Browser test (real app, real Chromium): what an action has to say reaches the page. Gradio 6 drops
gr.Error / gr.Warning / gr.Info from events that skip its queue, so each kind of action is tried once
and its message looked for on screen (see webui/ui/events.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser_utils import open_app_page
from tests.support.chat_ui import open_import_export
from tests.support.server_utils import served_app

pytestmark = pytest.mark.browser
T = 60_000  # ms


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from served_app(tmp_path_factory, "browser-messages")


def shown(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_text(text).first.wait_for(state="visible", timeout=T)


def test_errors_and_confirmations_of_actions_are_shown(app, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = open_app_page(browser, app.url)
    try:
        # Chat: a file that is not a chat
        not_a_chat = tmp_path / "notes.json"
        not_a_chat.write_text('{"hello": "world"}', encoding="utf-8")
        open_import_export(page)
        page.set_input_files("#import-chat input[type=file]", str(not_a_chat))
        shown(page, "The file is neither a chat exported from this app nor an Oobabooga history")

        # Characters: a broken card is refused with the reason; a save is confirmed
        page.get_by_role("tab", name="Characters").click()
        broken = tmp_path / "broken.png"
        broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really a picture")
        page.set_input_files("#character-upload input[type=file]", str(broken))
        shown(page, "Could not import broken.png")
        page.fill("#char-name textarea, #char-name input", "Quillon")
        page.click("#save-character")
        shown(page, "Saved Quillon to")
        assert (app.data_dir / "characters" / "Quillon.yaml").is_file()

        # Parameters: a preset action without a preset chosen; a saved preset
        page.get_by_role("tab", name="Parameters").click()
        page.click("#load-preset")
        shown(page, "Choose a preset to load.")
        page.fill("#preset-name textarea, #preset-name input", "Mine")
        page.click("#save-preset")
        shown(page, "Saved preset Mine.")
        assert page.dialogs == []  # type: ignore[attr-defined]
    finally:
        page.close()
