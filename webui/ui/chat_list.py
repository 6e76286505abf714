"""The chat-list sidebar: new, open, rename, delete (with confirm), search, export, import."""

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
from webui.ui import chat_view as view
from webui.ui.chat_tab import ChatComponents, model_markdown, open_outputs, open_values
from webui.ui.events import ACTION, LOOKUP
from webui.ui.session import current_user_id


def wire(ctx: AppContext, c: ChatComponents, demo: gr.Blocks) -> None:
    outs = open_outputs(c)

    def on_load(request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        choices = view.chat_choices(ctx, uid)
        current = choices[0][1] if choices else None
        return [gr.update(choices=choices, value=current), model_markdown(ctx), *open_values(ctx, c, current, uid)]

    demo.load(on_load, None, [c.chat_list, c.model_info, *outs], **LOOKUP)

    def open_chat(selected: int | None, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        try:
            return open_values(ctx, c, int(selected) if selected is not None else None, uid)
        except NotFound:
            raise gr.Error("That chat no longer exists.") from None

    c.chat_list.input(open_chat, c.chat_list, outs, **ACTION)

    def new_chat(character: str, persona: str, mode: str, greeting: Any, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        try:
            conv = ctx.chat.new_conversation(
                character, uid, persona=None if persona == view.NO_PERSONA else persona, mode=mode, greeting=int(greeting or 0)
            )
        except UserFacingError as exc:
            raise gr.Error(str(exc)) from exc
        return [gr.update(choices=view.chat_choices(ctx, uid), value=conv.id), *open_values(ctx, c, conv.id, uid)]

    c.new_btn.click(new_chat, [c.character, c.persona, c.mode, c.greeting], [c.chat_list, *outs], **ACTION)

    def rename(conv_id: int | None, title: str, request: gr.Request) -> Any:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        uid = current_user_id(ctx, request)
        ctx.repo.rename_conversation(conv_id, title, uid)
        return gr.update(choices=view.chat_choices(ctx, uid), value=conv_id)

    c.rename_btn.click(rename, [c.conv_id, c.rename_box], c.chat_list, **ACTION)
    c.rename_box.submit(rename, [c.conv_id, c.rename_box], c.chat_list, **ACTION)

    def delete(conv_id: int | None, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        if conv_id is not None:
            try:
                ctx.repo.delete_conversation(conv_id, uid)
            except NotFound:
                pass
        choices = view.chat_choices(ctx, uid)
        current = choices[0][1] if choices else None
        return [gr.update(choices=choices, value=current), *open_values(ctx, c, current, uid)]

    c.delete_btn.click(
        delete,
        c.conv_id,
        [c.chat_list, *outs],
        js="(id) => { if (!confirm('Delete this chat? This cannot be undone.')) throw new Error('cancelled'); return id; }",
        **ACTION,
    )

    def search(query: str, request: gr.Request) -> Any:
        hits = ctx.repo.search_messages(query, current_user_id(ctx, request)) if query.strip() else []
        if not query.strip():
            return gr.update(choices=[], value=None, visible=False)
        choices = [(f"{h.title} — {h.snippet}", h.conversation_id) for h in hits]
        label = f"Found in {len({h.conversation_id for h in hits})} chat(s)" if hits else "No message contains that"
        return gr.update(choices=choices, value=None, visible=True, label=label)

    c.search_box.submit(search, c.search_box, c.search_results, **LOOKUP)
    c.search_box.change(search, c.search_box, c.search_results, **LOOKUP, trigger_mode="always_last")

    def open_found(selected: int | None, request: gr.Request) -> list[Any]:
        return [gr.update(value=selected), *open_chat(selected, request)]

    c.search_results.input(
        open_found,
        c.search_results,
        [c.chat_list, *outs],
        **ACTION,
    )

    def export(conv_id: int | None, request: gr.Request) -> Any:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        data = ctx.repo.export_conversation(conv_id, current_user_id(ctx, request))
        slug = re.sub(r"[^\w-]+", "-", data["title"]).strip("-")[:40] or "chat"
        path = Path(tempfile.mkdtemp(prefix="webui-export-")) / f"{slug}.json"
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        return gr.update(value=str(path), visible=True)

    c.export_btn.click(export, c.conv_id, c.export_file, **ACTION)

    def import_chat(data: bytes | None, request: gr.Request) -> list[Any]:
        if not data:
            return [gr.update(), *([gr.update()] * len(outs)), None]
        uid = current_user_id(ctx, request)
        try:
            parsed = parse_chat_file(data, "The file")
        except UserFacingError as exc:
            raise gr.Error(str(exc)) from exc
        if not parsed["character"]:
            parsed["character"] = "Assistant"
        conv = ctx.repo.import_conversation(parsed, uid)
        gr.Info(f"Imported {len(parsed['messages'])} messages as “{conv.title}”.")
        return [gr.update(choices=view.chat_choices(ctx, uid), value=conv.id), *open_values(ctx, c, conv.id, uid), None]

    c.import_file.upload(import_chat, c.import_file, [c.chat_list, *outs, c.import_file], **ACTION)
