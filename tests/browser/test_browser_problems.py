"""The Problems notice in a real browser: the files that could not be loaded, listed at the top of
the page with their file and reason; Refresh follows the files, and the notice goes when none is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser_utils import open_app_page, wait_for
from tests.support.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_problems_notice_lists_the_bad_files_and_follows_a_refresh(tmp_path: Path, browser) -> None:
    data = tmp_path / "data"
    (data / "characters").mkdir(parents=True)
    card = data / "characters" / "list-spec.json"
    card.write_text('{"spec": ["chara_card_v2"], "data": {"name": "Listy"}}', encoding="utf-8")
    script = data / "extensions" / "boom" / "script.py"
    script.parent.mkdir(parents=True)
    script.write_text("raise RuntimeError('boom at import')\n", encoding="utf-8")
    app = start_app(data, "--extensions", "boom")  # only an enabled extension is imported (and can fail so)
    try:
        page = open_app_page(browser, app.url)
        notice = page.locator("#problems")
        wait_for(lambda: notice.is_visible() and "2 files could not be loaded" in notice.inner_text(),
                 what="the notice")
        assert not page.locator("#problems-list").is_visible()  # closed until asked for
        notice.get_by_text("could not be loaded").click()
        wait_for(lambda: page.locator("#problems-list").is_visible(), what="the list")
        rows = page.locator("#problems-list tbody tr")
        assert rows.count() == 2
        text = page.inner_text("#problems-list")
        assert str(card) in text and "unsupported card spec" in text
        assert str(script) in text and "boom at import" in text

        card.unlink()  # one fixed: Refresh re-reads the files
        page.click("#problems-refresh")
        wait_for(lambda: "1 file could not be loaded" in notice.inner_text(), what="one left")
        assert str(card) not in page.inner_text("#problems-list")

        script.write_text("x = 1\n", encoding="utf-8")  # the other fixed: the notice goes
        page.click("#problems-refresh")
        wait_for(lambda: not notice.is_visible(), what="the notice to go")
    finally:
        app.stop()
