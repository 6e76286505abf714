"""The Model tab's Adapters (LoRA) section in a real browser: list, export, apply with a weight, remove."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_lora_api import write_adapter
from tests.support.browser_utils import wait_for
from tests.support.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_apply_export_and_remove_an_adapter(tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    write_adapter(data, "alpha", seed=0)
    (data / "loras" / "broken").mkdir()
    app = start_app(data)
    try:
        page = browser.new_page()
        page.goto(app.url)
        page.get_by_role("tab", name="Model").click()
        page.get_by_text("Adapters (LoRA)").click()
        wait_for(lambda: "alpha" in page.inner_text("#lora-table"), what="the adapter list")
        table = page.inner_text("#lora-table")
        assert "SmolLM2-135M-Instruct" in table and "broken" in table and "adapter_config.json" in table
        assert "No adapters applied" in page.inner_text("#lora-status")

        page.click("#lora-names input")
        page.get_by_role("option", name="alpha").click()
        page.keyboard.press("Escape")
        page.click("#lora-export")
        wait_for(lambda: "adapter.gguf" in page.inner_text("#lora-status"), timeout=120, what="the export")
        assert (data / "loras" / "alpha" / "adapter.gguf").is_file()

        page.fill("#lora-weights textarea", "0.5")
        page.click("#lora-apply")
        wait_for(lambda: "alpha (0.5)" in page.inner_text("#lora-status"), timeout=120, what="the adapter applied")
        page.click("#lora-remove")
        wait_for(lambda: "No adapters applied" in page.inner_text("#lora-status"), timeout=60, what="the removal")
        assert "Traceback" not in page.inner_text("body")
    finally:
        app.stop()
