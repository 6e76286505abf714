"""The Parameters, Extensions and Model tabs' handlers, called directly: presets, extension toggles
and settings, model load/unload, and the message a user gets when they refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from tests.support import fakes
from tests.support.ui_context import param_values, ui_context
from webui.context import AppContext
from webui.engine.model_settings import ModelSettingsStore
from webui.engine.options import OPTIONS
from webui.ui import extensions_tab as ext
from webui.ui import model_tab
from webui.ui import parameters_tab as params
from webui.ui.parameters_tab import FIELD_NAMES


@pytest.fixture
def ui_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    with ui_context(tmp_path / "data") as ctx:
        yield ctx


def test_presets(ui_ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    values = param_values(temperature=0.25, stop=["END"])
    saved = params.save(ui_ctx, " Mine ", *values)
    assert saved["value"] == "Mine" and "Mine" in saved["choices"] and "Saved preset Mine." in capsys.readouterr().out
    loaded = dict(zip(FIELD_NAMES, params.load(ui_ctx, "Mine")))
    assert loaded["temperature"] == 0.25 and loaded["stop"] == "END"
    assert params.delete(ui_ctx, "Mine") == gr.update(choices=ui_ctx.presets.names(), value=None)  # type: ignore[union-attr]
    assert "Mine" not in ui_ctx.presets.names()  # type: ignore[union-attr]


def test_preset_errors_reach_the_user(ui_ctx: AppContext) -> None:
    with pytest.raises(gr.Error, match="Choose a preset to load"):
        params.load(ui_ctx, None)
    with pytest.raises(gr.Error, match="Choose a preset to delete"):
        params.delete(ui_ctx, "")
    with pytest.raises(gr.Error):
        params.load(ui_ctx, "No such preset")
    bad = list(param_values())
    bad[FIELD_NAMES.index("top_p")] = 7.0
    with pytest.raises(gr.Error, match="top_p"):  # to_params refuses: nothing saved
        params.save(ui_ctx, "Broken", *bad)
    assert "Broken" not in ui_ctx.presets.names()  # type: ignore[union-attr]


def test_support_line(ui_ctx: AppContext) -> None:
    assert "fake" in params.support_markdown(ui_ctx)
    ui_ctx.engine.unload()
    assert params.support_markdown(ui_ctx) == "No model is loaded."


@pytest.fixture
def ext_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    with ui_context(tmp_path / "data", extensions=["example"]) as ctx:
        yield ctx


def view(ctx: AppContext) -> ext.ExtensionsView:
    names = tuple(info.name for info in ctx.extensions.available())
    return ext.ExtensionsView(names, ("example",))


def test_extension_toggles_and_order(ext_ctx: AppContext) -> None:
    v = view(ext_ctx)
    shown = ext.toggle(ext_ctx, v, "character_bias", True)
    assert ext_ctx.extensions.enabled() == ["example", "character_bias"]
    n = len(v.names)
    assert len(shown) == 2 + 2 * n + 1 and "`example` → `character_bias`" in shown[0]
    assert shown[2 + n + v.names.index("character_bias")] == gr.update(value=True)  # its checkbox
    assert shown[-1] == gr.update(visible=True)  # example's ui() area

    ext.move(ext_ctx, v, "character_bias", -1)
    assert ext_ctx.extensions.enabled() == ["character_bias", "example"]
    ext.move(ext_ctx, v, "character_bias", -1)  # already first
    assert ext_ctx.extensions.enabled() == ["character_bias", "example"]

    shown = ext.toggle(ext_ctx, v, "example", False)
    assert ext_ctx.extensions.enabled() == ["character_bias"] and shown[-1] == gr.update(visible=False)
    assert ext.snapshot(ext_ctx, v) == shown


def test_an_extension_that_cannot_be_enabled_gets_a_warning(ext_ctx: AppContext) -> None:
    with pytest.warns(UserWarning, match="unknown extension 'nope'"):
        shown = ext.toggle(ext_ctx, view(ext_ctx), "nope", True)
    assert ext_ctx.extensions.enabled() == ["example"] and "`example`" in shown[0]


def test_extension_settings(ext_ctx: AppContext) -> None:
    assert ext.change(ext_ctx, "example", "prefix", ">> ") == gr.update()
    assert ext_ctx.extensions.get_params("example")["prefix"] == ">> "
    with pytest.warns(UserWarning):  # not one of the choices: refused, the stored value shown again
        assert ext.change(ext_ctx, "example", "mode", "shout") == gr.update(value="off")
    assert ext.reset(ext_ctx, "example", ("prefix", "mode")) == ["", "off"]
    assert ext_ctx.extensions.get_params("example")["prefix"] == ""


def option_values(**changes: Any) -> list[Any]:
    return [changes.get(o.name, o.default) for o in OPTIONS]


def test_model_load_and_unload(ui_ctx: AppContext) -> None:
    store = ModelSettingsStore.in_data_dir(ui_ctx.settings.data_dir)
    with pytest.raises(gr.Error, match="Choose a model first"):
        model_tab.load_model(ui_ctx, store, True, "  ", "llama.cpp", "", *option_values())
    with pytest.raises(gr.Error, match="Enter the server URL first"):
        model_tab.load_model(ui_ctx, store, True, "/some/model", "remote", "", *option_values())

    status, line = model_tab.load_model(ui_ctx, store, True, "other-fake", "fake", "", *option_values())
    assert "**other-fake** loaded with **fake**" in status and line == "**Model:** other-fake · fake"
    assert model_tab.on_select(ui_ctx, store, "other-fake")[0] == gr.update(value="fake")  # remembered
    assert model_tab.unload_model(ui_ctx, False) == ["No model loaded."]  # no chat line among the outputs


def test_a_failed_load_is_one_line(ui_ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, spec: Any) -> Any:
        raise RuntimeError("out of cheese\n  at line 3")

    monkeypatch.setattr(fakes.FakeBackend, "load", broken)
    store = ModelSettingsStore.in_data_dir(ui_ctx.settings.data_dir)
    with pytest.raises(gr.Error) as failed:
        model_tab.load_model(ui_ctx, store, True, "fake", "fake", "", *option_values())
    assert failed.value.message == "Loading failed: RuntimeError: out of cheese"  # the first line, no traceback


def test_loader_choice_shows_its_options() -> None:
    remote = model_tab.on_loader("remote", "none")
    assert remote[0] == gr.update(visible=True)
    local = model_tab.on_loader("llama.cpp", "none")
    assert local[0] == gr.update(visible=False)
    shown = {o.name for o, u in zip(OPTIONS, local[1:]) if u["visible"]}
    assert "n_ctx" in shown and "dtype" not in shown
