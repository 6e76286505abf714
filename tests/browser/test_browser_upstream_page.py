"""Extensions written for text-generation-webui in a real browser (the embedded GGUF on llama.cpp):

* ``tgw_colors`` (an output_modifier wrapping each word in a coloured ``<span>``, as upstream's
  perplexity_colors wraps each token): the chat draws coloured words, never the HTML as text, both
  once the reply is stored and after a reload;
* ``tgw_gallery``'s script.js reads upstream's page as its gallery does (``#extensions``,
  ``.header_bar``, ``#chat-mode``) and runs before its filter: the filter box filters the cards, and
  switching tabs and back leaves the cards shown.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.browser_utils import BOT, bot_texts, open_app_page, reply_finished, send_message, wait_for
from tests.support.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "upstream_style_extensions"
COLOURS = ["rgb(204, 0, 0)", "rgb(0, 136, 0)"]  # tgw_colors' #cc0000 and #008800

LAST_REPLY_COLOURS = """(bot) => {
  const last = [...document.querySelectorAll(bot)].at(-1);
  return last ? [...last.querySelectorAll('span[style]')].map((s) => getComputedStyle(s).color) : [];
}"""


def coloured(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.evaluate(LAST_REPLY_COLOURS, BOT)


def test_coloured_words_are_drawn_and_the_gallery_script_finds_its_page(tmp_path: Path, browser) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data / "extensions")
    (data / "characters").mkdir()
    for name, does in (("Gardener", "tends roses"), ("Baker", "bakes bread")):
        (data / "characters" / f"{name}.yaml").write_text(f"name: {name}\ncontext: {name} {does}.\n")
    app = start_app(data, "--extensions", "tgw_colors", "tgw_gallery")
    try:
        page = open_app_page(browser, app.url)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        send_message(page, "Name three fruits.")
        wait_for(lambda: reply_finished(page) and len(bot_texts(page)) >= 2 and bot_texts(page)[-1].strip() != "",
                 timeout=120, what="the reply")
        wait_for(lambda: bool(coloured(page)), what="coloured words in the stored reply")
        assert set(coloured(page)) == set(COLOURS)
        assert "<span" not in bot_texts(page)[-1]

        page.reload()
        page.wait_for_selector("#chat-input textarea")
        wait_for(lambda: bool(coloured(page)), what="coloured words after a reload")

        cards = page.locator("#tgw-gallery-cards")
        box = page.locator("#tgw-gallery-filter textarea, #tgw-gallery-filter input").first
        if not box.is_visible():
            page.locator("#tgw-gallery button").first.click()  # open the accordion
        wait_for(lambda: "Gardener" in cards.inner_text() and "Baker" in cards.inner_text(), what="all cards")
        box.fill("gard")
        wait_for(lambda: "Gardener" in cards.inner_text() and "Baker" not in cards.inner_text(),
                 what="the filter to leave only Gardener")
        page.get_by_role("tab", name="Notebook").click()
        page.get_by_role("tab", name="Chat").click()
        wait_for(lambda: page.locator("#tgw-gallery").is_visible(), what="the cards shown again in the Chat tab")
        assert not errors, errors
    finally:
        app.stop()
