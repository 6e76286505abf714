"""A button under the chat that fills the message box (upstream's shared.gradio names), and the
data dir's picture.png as upstream's gallery shows pictures (get_image_cache after "file/")."""

import gradio as gr
import modules.shared as shared
from modules import utils
from modules.html_generator import get_image_cache
from modules.shared import gradio
from modules.ui import create_refresh_button

params = {"display_name": "Fill the box", "text": "Hello from tgw_ui"}


def ui():
    button = gr.Button("Fill", elem_id="tgw-ui-fill")
    button.click(lambda: params["text"], None, utils.gradio("textbox"))
    choice = gr.Dropdown(choices=["a"], value="a", elem_id="tgw-ui-choice")
    create_refresh_button(choice, lambda: None, lambda: {"choices": ["a", "b"]}, "refresh-button")
    gradio["tgw_ui_button"] = button
    picture = shared.user_data_dir / "picture.png"
    if picture.exists():
        gr.HTML(f'<img src="file/{get_image_cache(picture)}">', elem_id="tgw-ui-picture")
