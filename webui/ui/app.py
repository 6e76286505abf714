"""Assemble the Gradio Blocks app from the tabs."""

from __future__ import annotations

import gradio as gr

from webui.context import AppContext
from webui.ui import (
    characters_tab,
    chat_tab,
    extensions_tab,
    model_tab,
    notebook_tab,
    parameters_tab,
    problems_panel,
    training_tab,
)
from webui.ui.live_reply import LiveReplies

TITLE = "WebUI"

# The live bubble under the chat holds the reply while it streams (see webui.ui.live_reply).
# content-visibility lets the browser skip style, layout and paint for messages scrolled out of
# view, so a chat of hundreds of messages costs about what the visible ones cost.
BASE_CSS = """
#chatbot .message-row { content-visibility: auto; contain-intrinsic-size: auto 80px; }
#live-reply { border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg);
  background: var(--background-fill-secondary); padding: 4px 14px; max-height: 30vh; overflow-y: auto; }
#live-reply[hidden] { display: none; }
#live-reply-host:has(#live-reply[hidden]) { display: none; }
#live-reply .live-notice:empty { display: none; }
#live-reply .live-notice { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
"""
# the message buttons, the phone layout, the gallery and the buttons' SVG icons (webui/ui/static, webui/ui/icons.py)
BASE_CSS += chat_tab.page_css() + model_tab.page_css() + training_tab.page_css()


def offline_theme() -> gr.themes.Base:
    """The default look, with system fonts only: nothing is fetched from a font CDN."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Consolas", "monospace"],
    )


def build_ui(ctx: AppContext, replies: LiveReplies) -> gr.Blocks:
    """The whole UI; ``replies`` is shared with the ``live-reply`` route (see webui.ui.live_reply)."""
    with gr.Blocks(title=TITLE) as demo:
        problems = problems_panel.build(ctx)  # hidden unless a file could not be loaded
        with gr.Tab("Chat", id="chat"):
            components = chat_tab.build(ctx)
            ext_areas = extensions_tab.build_ui_areas(ctx, components)  # extensions' ui() under the chat
        with gr.Tab("Notebook", id="notebook"):
            notebook = notebook_tab.build(ctx)
        with gr.Tab("Characters", id="characters"):
            char_components = characters_tab.build(ctx)
        with gr.Tab("Parameters", id="parameters"):
            param_components = parameters_tab.build(ctx)
        with gr.Tab("Model", id="model"):
            model_tab.wire(ctx, model_tab.build(ctx), demo, components.model_info)
        with gr.Tab("Training", id="training") as training_el:
            training_tab.wire(ctx, training_tab.build(ctx), demo, training_el, components.model_info)
        with gr.Tab("Extensions", id="extensions"):
            ext_components = extensions_tab.build(ctx)
        ext_components.areas = {**ext_areas, **extensions_tab.build_ui_tabs(ctx, components)}
        ext_changes = extensions_tab.wire(ctx, ext_components, demo)
        chat_tab.wire(ctx, components, demo, param_components, replies)
        notebook_tab.wire(ctx, notebook, demo, param_components)
        char_reloads = characters_tab.wire(ctx, char_components, components, demo)
        parameters_tab.wire(ctx, param_components, demo)
        problems_panel.wire(ctx, problems, demo)
        problems_panel.follow(ctx, problems, [*char_reloads, *ext_changes])
    return demo
