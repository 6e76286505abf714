"""Character cards under the chat, as upstream's gallery draws them: a gr.Dataset of
[card_html, name] samples with one gr.HTML component, whose select handler reads evt.value[1]
(the whole sample, as Gradio 4 gives it) and sets the chat's character; a filter box whose handler
returns the matching samples as the Dataset's new samples (Gradio 4's way); opened and paged by
upstream's shared.settings gallery keys. Like upstream's gallery, the filter box first runs its
script.js (also its custom_js), which reads upstream's page: ``#extensions``, ``.header_bar``, ``#chat-mode``."""

from pathlib import Path

import gradio as gr
from modules.shared import gradio, settings
from modules.utils import get_available_characters


def cards():
    return [[f'<div class="tgw-card">{name}</div>', name] for name in get_available_characters()]


def matching(text):
    return [card for card in cards() if text.upper() in card[1].upper()]


def pick(evt: gr.SelectData):
    return evt.value[1]


def custom_js():
    return (Path(__file__).parent / "script.js").read_text()


def ui():
    with gr.Accordion("Cards", open=settings["gallery-open"], elem_id="tgw-gallery"):
        box = gr.Textbox(label="", placeholder="Filter", elem_id="tgw-gallery-filter")
        shown = gr.Dataset(components=[gr.HTML(visible=False)], label="", samples=cards(),
                           samples_per_page=settings["gallery-items_per_page"], elem_id="tgw-gallery-cards")
    box.change(matching, box, shown, js=f"(text) => {{ {custom_js()}; return text; }}")
    shown.select(pick, None, gradio["character_menu"])
