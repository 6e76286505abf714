"""The Notebook tab in Chromium against ``python app.py`` and the embedded model: a saved prompt,
Generate streaming into the box, Stop, Undo, the Tokens and Logits views, and the saved prompt
reopened after a reload."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.browser_utils import open_app_page, wait_for, wait_until_stable
from tests.support.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STORY = "Once upon a time, in a small village by the sea, there lived"
FRANCE = "The capital of France is"
TEXT = "#notebook-text textarea"


def open_notebook(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Notebook").click()
    page.wait_for_selector(TEXT)


def view(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("#notebook-views").get_by_role("tab", name=name).click()


def test_notebook_generate_stop_views_and_saved_prompt(tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    app = start_app(tmp_path / "data")
    try:
        page = open_app_page(browser, app.url)
        page.get_by_role("tab", name="Parameters").click()
        page.get_by_label("ban_eos_token").check()  # the text only ends at max_new_tokens (512) or Stop
        open_notebook(page)

        page.fill("#notebook-name textarea", "My story")
        page.fill(TEXT, STORY)
        page.click("#notebook-save")
        wait_for(lambda: "My story" in page.inner_text("#notebook-list"), what="the saved prompt listed")

        # Generate streams into the box: it grows through several lengths, then Stop ends it.
        page.click("#notebook-generate")
        lengths: list[int] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(set(lengths)) < 4:
            value = page.input_value(TEXT)
            if len(value) > len(STORY):
                lengths.append(len(value))
            time.sleep(0.05)
        assert len(set(lengths)) >= 4 and lengths == sorted(lengths), lengths
        page.click("#notebook-stop")
        # (quiet for 3 s: on a busy machine the generator's last update may come a while after Stop)
        stopped = wait_until_stable(lambda: page.input_value(TEXT), quiet=3)
        assert stopped.startswith(STORY) and len(stopped) > len(STORY)

        # Tokens: ids and pieces of the text in the box; fewer than the prompt's plus max_new_tokens
        view(page, "Tokens")
        wait_for(lambda: "tokens" in page.inner_text("#notebook-tokens-info"), what="the token count")
        count = int(page.inner_text("#notebook-tokens-info").split()[0])
        assert 15 < count < 14 + 512, count  # it really stopped before max_new_tokens

        # Undo puts back the text as it was before Generate; the saved prompt kept the generated text
        page.locator("#notebook-views").get_by_role("tab", name="Raw").click()
        page.click("#notebook-undo")
        wait_for(lambda: page.input_value(TEXT) == STORY, what="the text before Generate")

        page.fill(TEXT, FRANCE)
        view(page, "Tokens")
        wait_for(lambda: "5 tokens" in page.inner_text("#notebook-tokens-info"), what="five tokens")
        table = page.inner_text("#notebook-tokens")
        assert "capital" in table and "France" in table

        # Logits: the next token's candidates, raw and after the samplers (temperature 0.7 by default)
        view(page, "Logits")
        page.click("#notebook-logits-refresh")
        wait_for(lambda: "raw softmax" in page.inner_text("#notebook-logits-info"), what="the raw candidates")
        raw = page.inner_text("#notebook-logits")
        assert "Paris" in raw
        page.get_by_label("Use samplers").check()
        page.click("#notebook-logits-refresh")
        wait_for(lambda: "after the samplers" in page.inner_text("#notebook-logits-info"), what="sampled ones")
        sampled = page.inner_text("#notebook-logits")
        assert page.input_value(TEXT) == FRANCE  # (the views read the box: it still holds the question)
        assert "Paris" in sampled and sampled != raw

        page.locator("#notebook-views").get_by_role("tab", name="Raw").click()
        page.fill(TEXT, FRANCE + " Paris.")
        page.click("#notebook-save")
        wait_for(lambda: "Saved" in page.inner_text("body"), what="the saved notice")

        page.reload()
        page.wait_for_selector("#chat-input textarea")
        open_notebook(page)
        wait_for(lambda: "My story" in page.inner_text("#notebook-list"), what="the prompt listed after reload")
        page.get_by_label("My story").check()
        wait_for(lambda: page.input_value(TEXT) == FRANCE + " Paris.", what="the saved text reopened")
    finally:
        app.stop()
