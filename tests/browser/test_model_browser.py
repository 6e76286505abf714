"""What a person does in the Model tab, in a real browser: pick a model and a quantization, load, chat."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from tests.integration.test_model_remote import WORDS, ServerState, make_server
from tests.support.browser_utils import bot_texts, send_message, wait_for
from tests.support.server_utils import free_port, start_app

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
        # the page-load event fills it (a pending event shows Gradio's timer there meanwhile)
        wait_for(lambda: "SmolLM2-135M-Instruct" in page.inner_text("#model-info"), what="the model name")

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


def test_remote_engine_from_the_model_tab(tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    """Loader remote + a local OpenAI-compatible server: load from the tab, chat, the reply streams from it."""
    state = ServerState(delay=0.05)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_server(state, key="sk-ui"), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    app = start_app(tmp_path / "data")
    try:
        page = browser.new_page()
        page.goto(app.url)
        page.get_by_role("tab", name="Model").click()
        page.locator("#model-loader label", has_text="remote").click()
        wait_for(lambda: page.locator("#remote-url").is_visible(), what="the server URL box")
        assert page.locator("#opt-remote_api_key").is_visible() and not page.locator("#opt-quantization").is_visible()
        page.fill("#remote-url textarea, #remote-url input", f"http://127.0.0.1:{port}")
        page.fill("#opt-remote_api_key input", "sk-ui")
        page.click("#model-load")
        wait_for(lambda: "remote" in page.inner_text("#model-status"), timeout=60, what="the remote model to load")
        assert "tiny-remote" in page.inner_text("#model-status")

        page.get_by_role("tab", name="Chat").click()
        wait_for(lambda: "tiny-remote" in page.inner_text("#model-info"), what="the chat tab's model name")
        send_message(page, "Hello remote")
        seen: list[str] = []

        def reply_done() -> bool:
            text = bot_texts(page)[-1].strip() if bot_texts(page) else ""
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            return text == "".join(WORDS)

        wait_for(reply_done, timeout=60, what="the whole remote reply")
        assert len(seen) > 1  # it streamed: partial replies were on screen first
        assert state.requests[-1]["messages"][-1]["content"] == "Hello remote"
        saved = json.loads((tmp_path / "data" / "model-settings.json").read_text())[f"http://127.0.0.1:{port}"]
        assert saved["loader"] == "remote" and "sk-ui" not in json.dumps(saved)
    finally:
        app.stop()
        server.should_exit = True
        thread.join(timeout=10)
