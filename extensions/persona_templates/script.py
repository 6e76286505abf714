"""Persona templates: pick a persona / system-prompt template per chat.

A library of templates (``templates.yaml`` next to this file, plus your own in the "custom
template" setting) with the variables {{user}}, {{char}}, {{date}}, {{time}}, {{weekday}},
{{datetime}} and {{mode}}. The choice is stored with each chat (a dropdown under the chat); the
"default template" setting applies to chats without a choice. The filled-in template leads the
character's context in chat modes and replaces the system prompt in instruct mode.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

import yaml

NONE = "(none)"
CUSTOM = "(custom)"
SETTING_KEY = "persona_template"  # key in the chat's stored settings

params = {
    "display_name": "Persona templates",
    "is_tab": False,
    "default_template": NONE,
    "custom_template": "You are {{char}}. Today is {{weekday}}, {{date}}.",
}


def load_templates() -> dict[str, str]:
    """The shipped library: name -> template text."""
    data = yaml.safe_load((Path(__file__).with_name("templates.yaml")).read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in data.items()}


def choices() -> list[str]:
    return [NONE, *load_templates(), CUSTOM]


params_meta = {
    "default_template": {"choices": choices(), "label": "Default template",
                         "info": "For chats where none was chosen"},
    "custom_template": {"label": "Custom template", "info": "Used by the (custom) choice"},
}


def fill(template: str, state: dict[str, Any], now: _dt.datetime | None = None) -> str:
    """Substitute the variables (case-insensitive, spaces allowed inside the braces)."""
    now = now or _dt.datetime.now()
    values = {
        "user": str(state.get("name1") or "You"),
        "char": str(state.get("name2") or "Assistant"),
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H:%M"),
        "weekday": now.strftime("%A"),
        "datetime": now.strftime("%Y-%m-%d %H:%M"),
        "mode": str(state.get("mode") or "chat"),
    }
    return re.sub(r"\{\{\s*(\w+)\s*\}\}",
                  lambda m: values.get(m.group(1).lower(), m.group(0)), template)


def chosen(state: dict[str, Any]) -> str:
    settings = state.get("chat_settings") or {}
    return str(settings.get(SETTING_KEY) or params["default_template"])


def template_text(name: str) -> str:
    if name == CUSTOM:
        return params["custom_template"]
    return load_templates().get(name, "")


def state_modifier(state: dict) -> dict:
    """Put the chat's template, filled in, into state["system_message"]."""
    text = template_text(chosen(state))
    if not text.strip():
        return state
    return {**state, "system_message": fill(text, state)}


def ui(ctx: Any = None, chat: Any = None) -> None:
    """A per-chat dropdown under the chat; the choice is saved with the chat."""
    import gradio as gr

    if ctx is None or chat is None:
        return
    dropdown = gr.Dropdown(choices=choices(), value=None, label="Persona template (this chat)",
                           elem_id="persona-template", interactive=True)
    preview = gr.Markdown(elem_id="persona-template-preview")

    def show(conv_id: int | None) -> tuple[Any, str]:
        if conv_id is None:
            return gr.update(value=params["default_template"]), ""
        settings = ctx.repo.get_conversation(int(conv_id)).settings
        name = str(settings.get(SETTING_KEY) or params["default_template"])
        return gr.update(value=name), _preview(name)

    def choose(conv_id: int | None, name: str | None) -> str:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        ctx.repo.update_settings(int(conv_id), {SETTING_KEY: name or None})
        return _preview(name or NONE)

    chat.conv_id.change(show, chat.conv_id, [dropdown, preview], queue=False)
    dropdown.input(choose, [chat.conv_id, dropdown], preview, queue=False)


def _preview(name: str) -> str:
    text = template_text(name)
    return f"> {fill(text, {})}" if text.strip() else ""
