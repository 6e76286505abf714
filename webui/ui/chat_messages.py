"""The actions on a message, from the buttons on it: edit in place (Gradio's own edit), switch
versions (< n/m >), delete, branch a new chat from it.

Gradio's Chatbot gives copy, edit and retry (the Regenerate of the last reply, wired in ``chat_tab``);
the other buttons are drawn by the page script (``static/chat.js``) and come here as one click event
of the tools component, ``{"action": ..., "index": ...}``. Each action is one ChatRepository call.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.errors import UserFacingError
from webui.storage.repository import MessageRecord
from webui.ui import chat_view as view
from webui.ui import display_html
from webui.ui.chat_components import ChatComponents, chat_list_update, open_outputs, open_values
from webui.ui.events import action, bind, lookup, on
from webui.ui.parameters_tab import ParamComponents
from webui.ui.session import current_user_id

ACTIONS = ("prev", "next", "delete", "branch")


def target(ctx: AppContext, conv_id: int | None, index: int | None,
           uid: int | None) -> tuple[int, list[MessageRecord], int]:
    """The open chat, its messages and the index of the one acted on (None or past the end: the
    last); UserFacingError if there is none."""
    if conv_id is None:
        raise UserFacingError("Open a chat first.")
    msgs = ctx.repo.messages(conv_id, uid)
    if not msgs:
        raise UserFacingError("This chat has no messages.")
    idx = len(msgs) - 1 if index is None or not 0 <= index < len(msgs) else index
    return conv_id, msgs, idx


def shown(ctx: AppContext, conv_id: int, uid: int | None) -> list[dict[str, Any]]:
    """The chat as stored, for the Chatbot."""
    return view.display(ctx.repo.messages(conv_id, uid))


@action
def switch(ctx: AppContext, step: int, conv_id: int | None, index: int | None,
           request: gr.Request | None) -> list[dict[str, Any]]:
    """Show the message's previous (step -1) or next (+1) version, round the end."""
    uid = current_user_id(ctx, request)
    conv, msgs, idx = target(ctx, conv_id, index, uid)
    m = msgs[idx]
    if m.version_count < 2:
        gr.Info("This message has only one version: Regenerate a reply to get more.")
        return shown(ctx, conv, uid)
    ctx.repo.set_active_version(m.id, (m.active_version + step) % m.version_count, uid)
    return shown(ctx, conv, uid)


def unescape_edit(text: str) -> str:
    """The text typed into Gradio's in-place editor, as stored: the chat shows messages through
    ``view.safe_markdown`` (``&lt;`` for ``<``), which the editor shows as written."""
    return html.unescape(text) if any(e in text for e in ("&lt;", "&gt;", "&amp;")) else text


@action
def save_edit(ctx: AppContext, conv_id: int | None, index: int | None, text: str,
              request: gr.Request | None) -> list[dict[str, Any]]:
    """Store the edited text as the message's (active version's) text."""
    uid = current_user_id(ctx, request)
    conv, msgs, idx = target(ctx, conv_id, index, uid)
    ctx.repo.edit_message(msgs[idx].id, text, uid)
    return shown(ctx, conv, uid)


@action
def edited(ctx: AppContext, conv_id: int | None, evt: gr.EditData, request: gr.Request | None) -> list[dict[str, Any]]:
    """Gradio's in-place edit of a message finished: store it. A message drawn from its display text
    was edited as that HTML: its text, tags dropped, is stored (and the display text goes)."""
    index = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
    raw = str(evt.value or "")
    _, msgs, idx = target(ctx, conv_id, index, current_user_id(ctx, request))
    drawn = msgs[idx].display is not None and msgs[idx].role == "assistant"
    return save_edit(ctx, conv_id, index, display_html.plain_text(raw) if drawn else unescape_edit(raw), request)


@action
def delete_message(ctx: AppContext, conv_id: int | None, index: int | None,
                   request: gr.Request | None) -> list[dict[str, Any]]:
    """Delete the message (the shortcut Ctrl+Shift+Backspace: the last reply)."""
    uid = current_user_id(ctx, request)
    conv, msgs, idx = target(ctx, conv_id, index, uid)
    ctx.repo.delete_message(msgs[idx].id, uid)
    return shown(ctx, conv, uid)


@action
def branch(ctx: AppContext, params: ParamComponents | None, conv_id: int | None, index: int | None,
           request: gr.Request | None) -> list[Any]:
    """A new chat holding the messages up to this one, opened: [chat list, *open_values]."""
    uid = current_user_id(ctx, request)
    conv, msgs, idx = target(ctx, conv_id, index, uid)
    new = ctx.repo.branch_conversation(conv, msgs[idx].id, uid)
    gr.Info(f"Branched into “{new.title}”.")
    return [chat_list_update(ctx, uid, new.id), *open_values(ctx, params, new.id, uid)]


@action
def message_action(ctx: AppContext, params: ParamComponents | None, conv_id: int | None, evt: gr.EventData,
                   request: gr.Request | None) -> list[Any]:
    """A button on a message (or a shortcut) was used: ``evt`` says which and on which message.
    Returns [chat list, *open_outputs, tools]: a branch opens the new chat, the others change the
    chat. The tools' versions are returned here too rather than left to ``chatbot.change`` alone:
    right after a reply's follow-up events that change could read the chat it came from."""
    data = evt._data if isinstance(evt._data, dict) else {}
    name, index = data.get("action"), data.get("index")
    if name not in ACTIONS or not isinstance(index, int):
        raise UserFacingError("Unknown message action.")
    if name == "branch":
        opened = branch(ctx, params, conv_id, index, request)
        return [*opened, versions(ctx, opened[1], request)]
    if name == "delete":
        value = delete_message(ctx, conv_id, index, request)
    else:
        value = switch(ctx, -1 if name == "prev" else +1, conv_id, index, request)
    n_open = len(open_values(ctx, params, None, None))
    return [gr.skip(), gr.skip(), value, *[gr.skip()] * (n_open - 2), versions(ctx, conv_id, request)]


@lookup
def versions(ctx: AppContext, conv_id: int | None, request: gr.Request | None) -> str:
    """The tools component's value: each message's version and role (``view.versions_value``)."""
    if conv_id is None:
        return ""
    try:
        return view.versions_value(ctx.repo.messages(conv_id, current_user_id(ctx, request)))
    except Exception:  # a chat deleted meanwhile, a request without a login: nothing to draw
        return ""


def wire(ctx: AppContext, c: ChatComponents) -> None:
    on(c.chatbot.edit, bind(edited, ctx), c.conv_id, c.chatbot)
    on(c.tools.click, bind(message_action, ctx, c.params), c.conv_id, [c.chat_list, *open_outputs(c), c.tools])
    on(c.chatbot.change, bind(versions, ctx), c.conv_id, c.tools)
