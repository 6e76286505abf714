"""The Notebook tab's handlers, called directly with the fake engine and a real database: Generate,
Regenerate, Undo and Stop, the extension hooks of /v1/completions, the saved prompts per user."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from tests.support.extensions import manager_for, write_ext
from tests.support.ui_context import param_values, ui_context, user
from webui.chat.hooks import TurnHooks
from webui.context import AppContext
from webui.ui import notebook_prompts as prompts
from webui.ui import notebook_tab as tab
from webui.ui import notebook_views as views

PARAMS = param_values(max_new_tokens=16)


@pytest.fixture
def ui_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    with ui_context(tmp_path / "data", tokens=["Hello", " there", "!"]) as ctx:
        yield ctx


def generate(ctx: AppContext, text: str, request: Any = None) -> list[tuple[str, str]]:
    return list(tab.notebook_generate(ctx, text, request, *PARAMS))


def test_generate_streams_the_continuation_into_the_box(ui_ctx: AppContext) -> None:
    updates = generate(ui_ctx, "Once upon a time:")
    assert updates[-1] == ("Once upon a time:Hello there!", "Once upon a time:")  # (box, text to undo to)
    assert all(box.startswith("Once upon a time:") for box, _ in updates)
    assert ui_ctx.engine.model.prompts[-1] == "Once upon a time:"  # no chat template: the text as it is


def test_regenerate_and_undo(ui_ctx: AppContext) -> None:
    with pytest.raises(gr.Error, match="press Generate first"):
        list(tab.notebook_regenerate(ui_ctx, None, None, *PARAMS))
    box, before = generate(ui_ctx, "Start.")[-1]
    assert list(tab.notebook_regenerate(ui_ctx, before, None, *PARAMS))[-1] == (box, "Start.")
    assert ui_ctx.engine.model.prompts[-1] == "Start."  # from the text before the last continuation
    assert tab.notebook_undo(before, box) == ("Start.", None)
    assert tab.notebook_undo(None, "kept") == ("kept", None)  # nothing to undo: the text stays
    with pytest.raises(gr.Error, match="Write the beginning"):
        generate(ui_ctx, "   ")


def test_generation_runs_the_completion_hooks(ui_ctx: AppContext, tmp_path: Path) -> None:
    """The same hooks as /v1/completions (ChatService.complete): input_modifier, output_modifier."""
    write_ext(tmp_path / "ext", "shout", """
    def input_modifier(string, state, is_chat=False):
        return string + " [in:" + str(is_chat) + "]"

    def output_modifier(string, state, is_chat=False):
        return string.upper()
    """)
    mgr = manager_for(tmp_path / "ext")
    assert mgr.set_enabled(["shout"]) == {}
    ui_ctx.chat.hooks = TurnHooks(mgr)
    box, _ = generate(ui_ctx, "Text")[-1]
    assert ui_ctx.engine.model.prompts[-1] == "Text [in:False]"
    assert box == "TextHELLO THERE!"


def test_stop_ends_only_this_tabs_generation(tmp_path: Path, fake_backend: None) -> None:
    with ui_context(tmp_path / "data", tokens=[" tok"] * 200) as ctx:
        ctx.engine.model.delay = 0.02
        me, other = user("me"), user("other")
        results: dict[str, str] = {}

        def run(name: str, request: Any, limit: int) -> None:
            results[name] = list(tab.notebook_generate(ctx, "Go", request, *param_values(max_new_tokens=limit)))[-1][0]

        threads = [threading.Thread(target=run, args=("me", me, 200)),
                   threading.Thread(target=run, args=("other", other, 20))]
        threads[0].start()
        time.sleep(0.3)
        threads[1].start()  # queued behind mine on the one worker
        tab.notebook_stop(ctx, me)
        for t in threads:
            t.join(30)
        assert 0 < results["me"].count(" tok") < 200
        assert results["other"].count(" tok") == 20


def test_views_say_when_the_loader_cannot_inspect(ui_ctx: AppContext) -> None:
    assert views.markdown_view("**bold**") == "**bold**"
    with pytest.raises(gr.Error, match="fake loader cannot show token ids"):
        views.tokens_view(ui_ctx, "some text")
    with pytest.raises(gr.Error, match="cannot show next-token probabilities"):
        views.logits_view(ui_ctx, "some text", False, 5, *PARAMS)
    with pytest.raises(gr.Error, match="Write some text first"):
        views.logits_view(ui_ctx, "", True, 5, *PARAMS)


def test_saved_prompts_new_save_select_rename_delete(ui_ctx: AppContext) -> None:
    alice = user("alice")
    listed, first_id, name, text, undo = prompts.new_prompt(ui_ctx, None, "", "", alice)
    assert (name, text, undo) == ("Untitled", "", None) and listed["choices"] == [("Untitled", first_id)]
    # Save with nothing open creates one; with one open, saves into it
    _, second_id, second_name = prompts.save_prompt(ui_ctx, None, "a poem", "Poem", alice)
    assert second_name == "Poem" and second_id != first_id
    prompts.save_prompt(ui_ctx, second_id, "a longer poem", "ignored", alice)
    # Switching saves the open prompt's text first, then opens the chosen one
    _, opened, name, text, _ = prompts.select_prompt(ui_ctx, second_id, "typed, unsaved", first_id, alice)
    assert (opened, name, text) == (first_id, "Untitled", "")
    _, _, _, text, _ = prompts.select_prompt(ui_ctx, first_id, "", second_id, alice)
    assert text == "typed, unsaved"
    listed, name = prompts.rename_prompt(ui_ctx, second_id, "Sonnet", alice)
    assert name == "Sonnet" and ("Sonnet", second_id) in listed["choices"]
    with pytest.raises(gr.Error, match="already exists"):
        prompts.rename_prompt(ui_ctx, second_id, "Untitled", alice)
    listed, prompt_id, name = prompts.delete_prompt(ui_ctx, second_id, alice)
    assert prompt_id is None and listed["choices"] == [("Untitled", first_id)] and listed["value"] is None
    with pytest.raises(gr.Error, match="Open a saved prompt first"):
        prompts.delete_prompt(ui_ctx, None, alice)


def test_each_user_sees_and_opens_only_their_own_prompts(ui_ctx: AppContext) -> None:
    alice, bob = user("alice"), user("bob")
    _, alice_id, _ = prompts.save_prompt(ui_ctx, None, "alice's secret", "Diary", alice)
    assert prompts.load_list(ui_ctx, None, bob)["choices"] == []
    assert prompts.load_list(ui_ctx, None, alice)["choices"] == [("Diary", alice_id)]
    with pytest.raises(gr.Error, match="not found"):
        prompts.select_prompt(ui_ctx, None, "", alice_id, bob)
    with pytest.raises(gr.Error, match="not found"):
        prompts.save_prompt(ui_ctx, alice_id, "overwritten", "", bob)
    with pytest.raises(gr.Error, match="not found"):
        tab.after_generation(ui_ctx, alice_id, "bob's text", bob)  # autosave as bob: refused
    assert ui_ctx.notebooks.get(alice_id, ui_ctx.repo.find_user("alice")).text == "alice's secret"
