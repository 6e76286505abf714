"""The selected-message panel: switch versions (< >), edit, delete, branch a new chat from it.

``selected`` is the index of the message the panel acts on (None: the last one).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.errors import UserFacingError
from webui.storage.repository import MessageRecord
from webui.ui import chat_view as view
from webui.ui.chat_components import ChatComponents, chat_list_update, message_panel, open_outputs, open_values
from webui.ui.events import action, bind, lookup, on
from webui.ui.parameters_tab import ParamComponents
from webui.ui.session import current_user_id

CONFIRM_DELETE_JS = "(a, b) => { if (!confirm('Delete this message?')) throw new Error('cancelled'); return [a, b]; }"


def target(ctx: AppContext, conv_id: int | None, selected: int | None,
           uid: int | None) -> tuple[int, list[MessageRecord], int]:
    """The open chat, its messages and the index of the one the panel acts on; UserFacingError if
    there is none."""
    if conv_id is None:
        raise UserFacingError("Open a chat first.")
    msgs = ctx.repo.messages(conv_id, uid)
    if not msgs:
        raise UserFacingError("This chat has no messages.")
    idx = len(msgs) - 1 if selected is None or selected >= len(msgs) else selected
    return conv_id, msgs, idx


def refreshed(ctx: AppContext, conv_id: int, selected: int | None, uid: int | None) -> list[Any]:
    """The chat and the panel after a change: [chatbot, message info, edit text]."""
    msgs = ctx.repo.messages(conv_id, uid)
    return [view.display(msgs), *message_panel(msgs, selected)]


@lookup
def select(ctx: AppContext, conv_id: int | None, evt: gr.SelectData, request: gr.Request | None) -> list[Any]:
    """A message clicked in the chat: [selected index, message info, edit text]."""
    uid = current_user_id(ctx, request)
    index = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
    msgs = ctx.repo.messages(conv_id, uid) if conv_id is not None else []
    return [index, *message_panel(msgs, index)]


@action
def switch(ctx: AppContext, step: int, conv_id: int | None, selected: int | None,
           request: gr.Request | None) -> list[Any]:
    """Show the message's previous (step -1) or next (+1) version, round the end."""
    uid = current_user_id(ctx, request)
    conv, msgs, idx = target(ctx, conv_id, selected, uid)
    m = msgs[idx]
    if m.version_count < 2:
        gr.Info("This message has only one version: Regenerate a reply to get more.")
    ctx.repo.set_active_version(m.id, (m.active_version + step) % m.version_count, uid)
    return refreshed(ctx, conv, idx, uid)


@action
def save_edit(ctx: AppContext, conv_id: int | None, selected: int | None, text: str,
              request: gr.Request | None) -> list[Any]:
    uid = current_user_id(ctx, request)
    conv, msgs, idx = target(ctx, conv_id, selected, uid)
    ctx.repo.edit_message(msgs[idx].id, text, uid)
    return refreshed(ctx, conv, idx, uid)


@action
def delete_message(ctx: AppContext, conv_id: int | None, selected: int | None, request: gr.Request | None) -> list[Any]:
    """Delete the message; the panel goes back to the last one: [selected, chatbot, info, edit text]."""
    uid = current_user_id(ctx, request)
    conv, msgs, idx = target(ctx, conv_id, selected, uid)
    ctx.repo.delete_message(msgs[idx].id, uid)
    return [None, *refreshed(ctx, conv, None, uid)]


@action
def branch(ctx: AppContext, params: ParamComponents | None, conv_id: int | None, selected: int | None,
           request: gr.Request | None) -> list[Any]:
    """A new chat holding the messages up to the selected one, opened."""
    uid = current_user_id(ctx, request)
    conv, msgs, idx = target(ctx, conv_id, selected, uid)
    new = ctx.repo.branch_conversation(conv, msgs[idx].id, uid)
    gr.Info(f"Branched into “{new.title}”.")
    return [chat_list_update(ctx, uid, new.id), *open_values(ctx, params, new.id, uid)]


def wire(ctx: AppContext, c: ChatComponents) -> None:
    panel_outputs = [c.chatbot, c.message_info, c.edit_box]
    on(c.chatbot.select, bind(select, ctx), c.conv_id, [c.selected, c.message_info, c.edit_box])
    on(c.prev_btn.click, bind(switch, ctx, -1), [c.conv_id, c.selected], panel_outputs)
    on(c.next_btn.click, bind(switch, ctx, +1), [c.conv_id, c.selected], panel_outputs)
    on(c.save_edit_btn.click, bind(save_edit, ctx), [c.conv_id, c.selected, c.edit_box], panel_outputs)
    on(c.delete_msg_btn.click, bind(delete_message, ctx), [c.conv_id, c.selected], [c.selected, *panel_outputs],
       js=CONFIRM_DELETE_JS)
    on(c.branch_btn.click, bind(branch, ctx, c.params), [c.conv_id, c.selected], [c.chat_list, *open_outputs(c)])
