"""The selected-message panel: switch versions (< >), edit, delete, branch a new chat from it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.storage.repository import NotFound
from webui.ui import chat_view as view
from webui.ui.chat_tab import ChatComponents, message_panel, open_outputs, open_values
from webui.ui.events import ACTION, LOOKUP
from webui.ui.parameters_tab import ParamComponents
from webui.ui.session import current_user_id


def wire(ctx: AppContext, c: ChatComponents, params: ParamComponents) -> None:
    def target(conv_id: int | None, selected: int | None, uid: int | None) -> tuple[list[Any], int]:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        msgs = ctx.repo.messages(conv_id, uid)
        if not msgs:
            raise gr.Error("This chat has no messages.")
        idx = len(msgs) - 1 if selected is None or selected >= len(msgs) else selected
        return msgs, idx

    def refreshed(conv_id: int, selected: int | None, uid: int | None) -> list[Any]:
        msgs = ctx.repo.messages(conv_id, uid)
        return [view.display(msgs), *message_panel(msgs, selected)]

    panel_outputs = [c.chatbot, c.message_info, c.edit_box]

    def select(conv_id: int | None, evt: gr.SelectData, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        index = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
        msgs = ctx.repo.messages(conv_id, uid) if conv_id is not None else []
        return [index, *message_panel(msgs, index)]

    c.chatbot.select(select, c.conv_id, [c.selected, c.message_info, c.edit_box], **LOOKUP)

    def switch(step: int):  # type: ignore[no-untyped-def]
        def run(conv_id: int | None, selected: int | None, request: gr.Request) -> list[Any]:
            uid = current_user_id(ctx, request)
            msgs, idx = target(conv_id, selected, uid)
            m = msgs[idx]
            if m.version_count < 2:
                gr.Info("This message has only one version: Regenerate a reply to get more.")
            ctx.repo.set_active_version(m.id, (m.active_version + step) % m.version_count, uid)
            return refreshed(conv_id, idx, uid)  # type: ignore[arg-type]

        return run

    c.prev_btn.click(switch(-1), [c.conv_id, c.selected], panel_outputs, **ACTION)
    c.next_btn.click(switch(+1), [c.conv_id, c.selected], panel_outputs, **ACTION)

    def save_edit(conv_id: int | None, selected: int | None, text: str, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        msgs, idx = target(conv_id, selected, uid)
        ctx.repo.edit_message(msgs[idx].id, text, uid)
        return refreshed(conv_id, idx, uid)  # type: ignore[arg-type]

    c.save_edit_btn.click(save_edit, [c.conv_id, c.selected, c.edit_box], panel_outputs, **ACTION)

    def delete_message(conv_id: int | None, selected: int | None, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        msgs, idx = target(conv_id, selected, uid)
        ctx.repo.delete_message(msgs[idx].id, uid)
        return [None, *refreshed(conv_id, None, uid)]  # type: ignore[arg-type]

    c.delete_msg_btn.click(
        delete_message,
        [c.conv_id, c.selected],
        [c.selected, *panel_outputs],
        js="(a, b) => { if (!confirm('Delete this message?')) throw new Error('cancelled'); return [a, b]; }",
        **ACTION,
    )

    def branch(conv_id: int | None, selected: int | None, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        msgs, idx = target(conv_id, selected, uid)
        try:
            conv = ctx.repo.branch_conversation(conv_id, msgs[idx].id, uid)  # type: ignore[arg-type]
        except NotFound as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info(f"Branched into “{conv.title}”.")
        return [gr.update(choices=view.chat_choices(ctx, uid), value=conv.id), *open_values(ctx, c, conv.id, uid)]

    c.branch_btn.click(branch, [c.conv_id, c.selected], [c.chat_list, *open_outputs(c)], **ACTION)
