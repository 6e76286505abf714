"""The chat-list sidebar: new, open, rename, delete (with confirm), search, export, import (and the
"Backup: everything" accordion, ``webui.ui.backup``).

Handlers take the AppContext and the Parameters tab's components (``params``: opening a chat
restores its values there; None leaves them out) before what the page sends.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from webui.chat.transfer import parse_chat_file
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.storage.repository import NotFound
from webui.ui import backup
from webui.ui import chat_view as view
from webui.ui.chat_components import ChatComponents, chat_list_update, model_markdown, open_outputs, open_values
from webui.ui.events import action, bind, lookup, on
from webui.ui.parameters_tab import ParamComponents
from webui.ui.session import current_user_id, saving_user_id

CONFIRM_DELETE_JS = (
    "(id) => { if (!confirm('Delete this chat? This cannot be undone.')) throw new Error('cancelled'); return id; }"
)


@lookup
def on_load(ctx: AppContext, params: ParamComponents | None, request: gr.Request | None) -> list[Any]:
    """A page (re)load: the chat list, the model line and the most recent chat opened."""
    uid = current_user_id(ctx, request)
    choices = view.chat_choices(ctx, uid)
    current = choices[0][1] if choices else None
    return [gr.update(choices=choices, value=current), model_markdown(ctx), *open_values(ctx, params, current, uid)]


@action
def open_chat(ctx: AppContext, params: ParamComponents | None, selected: int | None,
              request: gr.Request | None) -> list[Any]:
    uid = current_user_id(ctx, request)
    try:
        return open_values(ctx, params, int(selected) if selected is not None else None, uid)
    except NotFound:
        raise UserFacingError("That chat no longer exists.") from None


@action
def new_chat(ctx: AppContext, params: ParamComponents | None, character: str, persona: str, mode: str, greeting: Any,
             request: gr.Request | None) -> list[Any]:
    uid = saving_user_id(ctx, request)
    conv = ctx.chat.new_conversation(
        character, uid, persona=None if persona == view.NO_PERSONA else persona, mode=mode, greeting=int(greeting or 0)
    )
    return [chat_list_update(ctx, uid, conv.id), *open_values(ctx, params, conv.id, uid)]


@action
def rename(ctx: AppContext, conv_id: int | None, title: str, request: gr.Request | None) -> Any:
    if conv_id is None:
        raise UserFacingError("Open a chat first.")
    uid = current_user_id(ctx, request)
    ctx.repo.rename_conversation(conv_id, title, uid)
    return chat_list_update(ctx, uid, conv_id)


@action
def delete(ctx: AppContext, params: ParamComponents | None, conv_id: int | None,
           request: gr.Request | None) -> list[Any]:
    """Delete the open chat (one already gone is no error) and open the most recent one left."""
    uid = current_user_id(ctx, request)
    if conv_id is not None:
        try:
            ctx.repo.delete_conversation(conv_id, uid)
        except NotFound:
            pass
    choices = view.chat_choices(ctx, uid)
    current = choices[0][1] if choices else None
    return [gr.update(choices=choices, value=current), *open_values(ctx, params, current, uid)]


@lookup
def search(ctx: AppContext, query: str, request: gr.Request | None) -> Any:
    """The search results list: hidden for an empty query, else one choice per matching message."""
    if not query.strip():
        return gr.update(choices=[], value=None, visible=False)
    hits = ctx.repo.search_messages(query, current_user_id(ctx, request))
    choices = [(f"{h.title} — {h.snippet}", h.conversation_id) for h in hits]
    label = f"Found in {len({h.conversation_id for h in hits})} chat(s)" if hits else "No message contains that"
    return gr.update(choices=choices, value=None, visible=True, label=label)


@action
def open_found(ctx: AppContext, params: ParamComponents | None, selected: int | None,
               request: gr.Request | None) -> list[Any]:
    """A search result picked: select its chat in the list and open it."""
    return [gr.update(value=selected), *open_chat(ctx, params, selected, request)]


@action
def export(ctx: AppContext, conv_id: int | None, request: gr.Request | None) -> Any:
    """The open chat as a JSON file to download."""
    if conv_id is None:
        raise UserFacingError("Open a chat first.")
    data = ctx.repo.export_conversation(conv_id, current_user_id(ctx, request))
    slug = re.sub(r"[^\w-]+", "-", data["title"]).strip("-")[:40] or "chat"
    path = Path(tempfile.mkdtemp(prefix="webui-export-")) / f"{slug}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return gr.update(value=str(path), visible=True)


@action
def import_chat(ctx: AppContext, params: ParamComponents | None, data: bytes | None,
                request: gr.Request | None) -> list[Any]:
    """Import an uploaded chat (ours or Oobabooga's JSON), open it, and clear the upload box."""
    if not data:  # the upload box was cleared
        return [gr.update(), *([gr.update()] * len(open_values(ctx, params, None, None))), None]
    uid = saving_user_id(ctx, request)
    parsed = parse_chat_file(data, "The file")
    if not parsed["character"]:
        parsed["character"] = "Assistant"
    conv = ctx.repo.import_conversation(parsed, uid)
    gr.Info(f"Imported {len(parsed['messages'])} messages as “{conv.title}”.")
    return [chat_list_update(ctx, uid, conv.id), *open_values(ctx, params, conv.id, uid), None]


def wire(ctx: AppContext, c: ChatComponents, demo: gr.Blocks) -> None:
    outs = open_outputs(c)
    on(demo.load, bind(on_load, ctx, c.params), None, [c.chat_list, c.model_info, *outs])
    on(c.chat_list.input, bind(open_chat, ctx, c.params), c.chat_list, outs)
    on(c.new_btn.click, bind(new_chat, ctx, c.params), [c.character, c.persona, c.mode, c.greeting],
       [c.chat_list, *outs])
    for trigger in (c.rename_btn.click, c.rename_box.submit):
        on(trigger, bind(rename, ctx), [c.conv_id, c.rename_box], c.chat_list)
    on(c.delete_btn.click, bind(delete, ctx, c.params), c.conv_id, [c.chat_list, *outs], js=CONFIRM_DELETE_JS)
    on(c.search_box.submit, bind(search, ctx), c.search_box, c.search_results)
    on(c.search_box.change, bind(search, ctx), c.search_box, c.search_results, trigger_mode="always_last")
    on(c.search_results.input, bind(open_found, ctx, c.params), c.search_results, [c.chat_list, *outs])
    on(c.export_btn.click, bind(export, ctx), c.conv_id, c.export_file)
    on(c.import_file.upload, bind(import_chat, ctx, c.params), c.import_file, [c.chat_list, *outs, c.import_file])
    if c.backup is not None:
        backup.wire(ctx, c.backup, c)
