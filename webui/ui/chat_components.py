"""What the Chat tab's parts share: its components, and what opening a chat shows.

The chat area (``chat_tab``), the sidebar (``chat_list``) and the actions on a message
(``chat_messages``) all import this module, and none of them imports another's handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.context import AppContext
from webui.generation.params import GenerationParams
from webui.ui import chat_view as view
from webui.ui.parameters_tab import ParamComponents

if TYPE_CHECKING:
    from webui.ui.backup import BackupComponents


@dataclass
class ChatComponents:
    conv_id: gr.State
    chat_list: gr.Radio
    new_btn: gr.Button
    rename_box: gr.Textbox
    rename_btn: gr.Button
    delete_btn: gr.Button
    search_box: gr.Textbox
    search_results: gr.Radio
    export_btn: gr.Button
    export_file: gr.File
    import_file: gr.File
    model_info: gr.Markdown
    character: gr.Dropdown
    persona: gr.Dropdown
    mode: gr.Radio
    template: gr.Dropdown
    greeting: gr.Dropdown
    creator_notes: gr.Markdown
    notice: gr.Markdown
    chatbot: gr.Chatbot
    # the page's script (message actions, shortcuts, dark mode, token counter: webui/ui/static/chat.js);
    # its value says each message's version (``chat_view.versions_value``) for the < n/m > switch
    tools: gr.HTML
    live: gr.HTML  # holds #live-reply, where the reply being written streams (see webui.ui.live_reply)
    live_token: gr.Textbox  # hidden: the token of the turn the page is to stream
    stats: gr.Markdown  # the last reply's speed and context line
    token_count: gr.Markdown  # the chat and the typed message, in tokens, against the context size
    textbox: gr.Textbox
    send_btn: gr.Button
    stop_btn: gr.Button
    regenerate_btn: gr.Button  # hidden: the last reply's retry button, Ctrl+Enter and the toolbar click it
    continue_btn: gr.Button  # hidden: the last reply's Continue button and Alt+Enter click it
    impersonate_btn: gr.Button
    start_with: gr.Textbox
    show_prompt_btn: gr.Button
    prompt_view: gr.Textbox
    # the Parameters tab, set by ``chat_tab.wire``: opening a chat restores its values there
    params: ParamComponents | None = None
    backup: BackupComponents | None = None  # the sidebar's "Backup: everything" (webui.ui.backup)


def model_markdown(ctx: AppContext) -> str:
    info = ctx.engine.load_info
    if info is None:
        return "**Model:** none loaded"
    return f"**Model:** {info.name} · {info.loader}"


def creator_notes_markdown(ctx: AppContext, character: str) -> str:
    """Shown in the UI for the user; creator_notes never enter a prompt."""
    notes = ctx.characters.get(character).creator_notes.strip()
    return f"**Creator's notes:** {notes}" if notes else ""


def open_outputs(c: ChatComponents) -> list[Any]:
    """Everything that changes when a chat is opened (see ``open_values``), the Parameters tab's
    controls included."""
    return [c.conv_id, c.chatbot, c.rename_box, c.character, c.persona, c.mode, c.template, c.greeting,
            c.creator_notes, c.notice, c.stats,
            *(c.params.chat_outputs() if c.params is not None else [])]


def open_values(ctx: AppContext, params: ParamComponents | None, conv_id: int | None, user_id: int | None) -> list[Any]:
    """Values for ``open_outputs(c)`` (``params``: ``c.params``): the chat's history, title, settings,
    avatars and the generation parameters stored with it (a chat without any leaves the Parameters
    tab unchanged). Raises NotFound for a chat that is gone or not the user's."""
    if conv_id is None:
        return [None, gr.Chatbot(value=[], avatar_images=(None, None)), "", gr.update(), gr.update(), gr.update(),
                gr.update(), gr.update(), "", "", "", *_param_values(params, None)]
    conv = ctx.repo.get_conversation(conv_id, user_id)
    s = conv.settings
    msgs = ctx.repo.messages(conv_id, user_id)
    return [
        conv.id,
        gr.Chatbot(value=view.display(msgs), avatar_images=view.avatar_images(ctx, conv, user_id)),
        conv.title,
        gr.update(choices=ctx.characters.names(), value=conv.character),
        gr.update(choices=view.persona_choices(ctx, user_id), value=s.get("persona") or view.NO_PERSONA),
        s.get("mode") or "chat",
        gr.update(choices=view.template_choices(ctx), value=s.get("template") or ""),
        gr.update(choices=view.greeting_choices(ctx, conv.character), value=int(s.get("greeting", 0) or 0)),
        creator_notes_markdown(ctx, conv.character),
        "",
        "",
        *_param_values(params, ctx.chat.stored_params(conv)),
    ]


def _param_values(params: ParamComponents | None, stored: GenerationParams | None) -> list[Any]:
    return params.chat_values(stored) if params is not None else []


def chat_list_update(ctx: AppContext, user_id: int | None, value: int | None) -> Any:
    """The sidebar's chat list, with ``value`` selected."""
    return gr.update(choices=view.chat_choices(ctx, user_id), value=value)
