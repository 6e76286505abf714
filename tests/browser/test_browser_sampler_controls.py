"""The Parameters tab's sampler controls in a real browser, on the real app and the embedded model
(llama.cpp): values set there reach generation (a banned string leaves a greedy reply, and the chat stores
the parameters its reply used), a preset keeps them, and a control the backend ignores says so."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.browser_utils import LIVE, USER, new_chat, open_app_page, send_message, wait_for
from tests.support.server_utils import served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

T = 90  # seconds; generous for a loaded 2-core machine
PROMPT = "Write one sentence about the sea."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from served_app(tmp_path_factory, "browser-samplers")


def parameters(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Parameters").click()
    page.wait_for_selector("#param-temperature input[type=number]")


def unfold(page, group: str) -> None:  # type: ignore[no-untyped-def]
    """Open a folded group (its controls are rendered on the first opening)."""
    page.click(f"#param-group-{group} > button")
    page.wait_for_selector(f"#param-group-{group} .form, #param-group-{group} input", state="visible")


def set_number(page, name: str, value: float) -> None:  # type: ignore[no-untyped-def]
    box = page.locator(f"#param-{name} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    wait_for(lambda: float(box.input_value()) == value, what=f"{name} = {value}")


def reply(page) -> str:  # type: ignore[no-untyped-def]
    """Send PROMPT and return the reply once it is stored: the live bubble gone, the chat's last message a
    bot's, after one more user message (a greeting may render late, so bot messages are not counted)."""
    before = page.locator(USER).count()
    send_message(page, PROMPT)

    def stored() -> str | None:
        return page.evaluate(
            """([user, live, before]) => {
                const bubble = document.querySelector(live);
                if (bubble && bubble.offsetParent !== null) return null;
                if (document.querySelectorAll(user).length !== before + 1) return null;
                const rows = document.querySelectorAll('#chatbot .message-row');
                const last = rows[rows.length - 1];
                if (!last || !last.classList.contains('bot-row')) return null;
                return last.querySelector('.message-content').innerText.trim() || null;
            }""",
            [USER, LIVE, before],
        )

    wait_for(lambda: stored() is not None, timeout=T, what="the reply")
    return stored() or ""


def last_chat_params(data_dir: Path) -> dict[str, Any]:
    """The generation parameters the newest chat stored with its last reply."""
    db = sqlite3.connect(data_dir / "webui.db")
    try:
        (settings,) = db.execute("select settings_json from conversations order by id desc limit 1").fetchone()
    finally:
        db.close()
    return json.loads(settings)["params"]


def test_sampler_controls_reach_generation_and_presets(app, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_app_page(browser, app.url, timeout=T)
    try:
        parameters(page)
        assert not page.locator("#param-dry_multiplier").is_visible()  # the less common groups start folded
        unfold(page, "guidance")
        assert "Ignored by llama.cpp" in page.inner_text("#param-guidance_scale")  # ignored: a note on it
        assert "Ignored" not in page.inner_text("#param-temperature")
        set_number(page, "temperature", 0)  # greedy: the same prompt gives the same reply
        set_number(page, "max_new_tokens", 16)
        page.get_by_role("tab", name="Chat").click()
        first = reply(page)
        word = max(first.split(), key=len).strip(".,;:!?\"'()")
        assert len(word) >= 3, first

        parameters(page)
        unfold(page, "bans")
        page.fill("#param-banned_strings textarea", word)
        unfold(page, "dry")
        set_number(page, "dry_multiplier", 0.8)
        unfold(page, "xtc")
        set_number(page, "xtc_probability", 0.5)
        page.get_by_role("tab", name="Chat").click()
        new_chat(page, timeout=T)
        second = reply(page)
        assert word not in second and second != first, (word, first, second)
        used = last_chat_params(app.data_dir)  # what the reply was generated with
        assert used["banned_strings"] == [word] and used["temperature"] == 0
        assert (used["dry_multiplier"], used["xtc_probability"], used["max_new_tokens"]) == (0.8, 0.5, 16)

        parameters(page)
        page.fill("#preset-name textarea, #preset-name input", "Samplers")
        page.click("#save-preset")
        preset = app.data_dir / "presets" / "Samplers.yaml"
        wait_for(preset.is_file, what="the saved preset")
        stored = yaml.safe_load(preset.read_text(encoding="utf-8"))
        assert (stored["dry_multiplier"], stored["xtc_probability"], stored["banned_strings"]) == (0.8, 0.5, [word])

        set_number(page, "dry_multiplier", 0)  # changed, then the preset (still selected) brings it back
        page.fill("#param-banned_strings textarea", "")
        page.click("#load-preset")
        wait_for(lambda: page.locator("#param-dry_multiplier input[type=number]").input_value() == "0.8",
                 timeout=T, what="the preset's dry_multiplier")
        assert page.input_value("#param-banned_strings textarea") == word
        assert page.locator("#param-xtc_probability input[type=number]").input_value() == "0.5"
    finally:
        page.close()
