"""The Model tab's Adapters (LoRA) section, its handlers called directly on the fake engine (an
@action shows a UserFacingError as gr.Error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest

from tests.support.ui_context import ui_context
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.ui import lora_panel


@pytest.fixture
def ui_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    with ui_context(tmp_path / "data") as ctx:
        folder = ctx.settings.data_dir / "loras" / "style"
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}), encoding="utf-8")
        (folder / "adapter_model.safetensors").write_bytes(b"\0" * 8)
        (ctx.settings.data_dir / "loras" / "empty").mkdir()
        yield ctx


def test_parse_weights() -> None:
    assert lora_panel.parse_weights("", 2) is None
    assert lora_panel.parse_weights("0.5, 1", 2) == [0.5, 1.0]
    assert lora_panel.parse_weights("0.5", 3) == [0.5, 0.5, 0.5]
    for bad in ("a", "1, 2, 3", "nan"):
        with pytest.raises(UserFacingError):
            lora_panel.parse_weights(bad, 2)


def test_refresh_lists_usable_adapters_and_problems(ui_ctx: AppContext) -> None:
    rows, names, status = lora_panel.refresh(ui_ctx, ["style", "gone"])
    assert [r[0] for r in rows] == ["empty", "style"]
    assert "adapter_config.json" in rows[0][-1] and rows[1][-1] == ""
    assert names["choices"] == ["style"] and names["value"] == ["style"]
    assert "fake loader cannot apply adapters" in status


def test_actions_say_what_is_wrong(ui_ctx: AppContext) -> None:
    with pytest.raises(gr.Error, match="Choose the adapters"):
        lora_panel.apply(ui_ctx, [], "")
    with pytest.raises(gr.Error, match="cannot apply LoRA adapters"):
        lora_panel.apply(ui_ctx, ["style"], "1")
    with pytest.raises(gr.Error, match="folder name"):
        lora_panel.merge(ui_ctx, ["style"], "", "../up")
    with pytest.raises(gr.Error, match="GGUF base model"):
        lora_panel.export(ui_ctx, ["style"])  # the fake model is no .gguf
    assert "cannot apply" in lora_panel.remove(ui_ctx)
    ui_ctx.engine.unload()
    assert lora_panel.status_line(ui_ctx).startswith("No model loaded")
    with pytest.raises(gr.Error, match="Load the base model first"):
        lora_panel.merge(ui_ctx, ["style"], "", "merged")
