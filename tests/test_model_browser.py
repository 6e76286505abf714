"""What a person does in the Model tab, in a real browser: pick a model and a quantization, load, chat."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.browser_utils import bot_texts, send_message, wait_for
from tests.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_pick_quantize_load_and_chat(tmp_path: Path, tiny_llama_dir: Path, browser) -> None:  # type: ignore[no-untyped-def]
    models = tmp_path / "models"
    shutil.copytree(tiny_llama_dir, models / "tiny-llama")
    data = tmp_path / "data"
    app = start_app(data, "--models-dir", str(models))
    try:
        page = browser.new_page()
        page.goto(app.url)
        page.wait_for_selector("#chat-input textarea")
        assert "SmolLM2-135M-Instruct" in page.inner_text("#model-info")

        page.get_by_role("tab", name="Model").click()
        page.click("#model-select input")
        page.get_by_role("option", name="tiny-llama").click()
        # Choosing a model folder switches to the transformers loader and its options.
        wait_for(lambda: page.locator("#opt-quantization").is_visible(), what="the transformers options")
        assert not page.locator("#opt-n_ctx").is_visible()  # a llama.cpp option
        assert not page.locator("#opt-quant_type").is_visible()  # only for bitsandbytes 4-bit
        page.click("#opt-quantization input")
        page.get_by_role("option", name="bnb-4bit").click()
        wait_for(lambda: page.locator("#opt-quant_type").is_visible(), what="the 4-bit options")
        assert page.locator("#opt-use_double_quant").is_visible()
        page.click("#opt-use_double_quant input")

        page.click("#model-load")
        wait_for(lambda: "tiny-llama" in page.inner_text("#model-status"), timeout=120, what="the model to load")
        status = page.inner_text("#model-status")
        assert "transformers" in status and " s " in status and "MiB" in status, status

        page.get_by_role("tab", name="Chat").click()
        wait_for(lambda: "tiny-llama" in page.inner_text("#model-info"), what="the chat tab's model name")
        send_message(page, "Hello there")
        wait_for(lambda: len(bot_texts(page)) >= 1 and bot_texts(page)[-1].strip() != "", timeout=90, what="a reply")

        saved = json.loads((data / "model-settings.json").read_text())
        entry = saved[str((models / "tiny-llama").resolve())]
        assert entry["loader"] == "transformers"
        assert entry["options"]["quantization"] == "bnb-4bit" and entry["options"]["use_double_quant"] is True
    finally:
        app.stop()


def test_cuda_only_option_is_refused_with_a_message(tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    app = start_app(tmp_path / "data")
    try:
        page = browser.new_page()
        page.goto(app.url)
        page.get_by_role("tab", name="Model").click()
        wait_for(lambda: page.locator("#opt-n_gpu_layers").is_visible(), what="the llama.cpp options")
        page.fill("#opt-n_gpu_layers input", "10")
        page.click("#model-load")
        wait_for(lambda: "GPU build" in page.inner_text("body"), timeout=30, what="the refusal message")
        assert "Traceback" not in page.inner_text("body")
        # The embedded model is still loaded and the status says so.
        assert "SmolLM2" in page.inner_text("#model-status")
    finally:
        app.stop()
