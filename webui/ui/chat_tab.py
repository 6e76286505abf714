"""The Chat tab and the chat-list sidebar."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.storage.repository import NotFound

log = logging.getLogger(__name__)

UI_UPDATE_SECONDS = 0.05  # at most ~20 screen updates a second; tokens in between are coalesced


@dataclass
class ChatComponents:
    conv_id: gr.State
    pending: gr.State  # the message being answered, handed from `prepare` to `respond`
    chat_list: gr.Radio
    new_btn: gr.Button
    rename_box: gr.Textbox
    rename_btn: gr.Button
    delete_btn: gr.Button
    model_info: gr.Markdown
    chatbot: gr.Chatbot
    textbox: gr.Textbox
    send_btn: gr.Button
    stop_btn: gr.Button


def build(ctx: AppContext) -> ChatComponents:
    """Lay out the sidebar and chat area (inside the caller's Blocks)."""
    conv_id = gr.State(None)
    pending = gr.State(None)
    with gr.Sidebar(open=True):
        new_btn = gr.Button("➕ New chat", elem_id="new-chat")
        chat_list = gr.Radio(label="Chats", choices=[], elem_id="chat-list", interactive=True)
        rename_box = gr.Textbox(label="Title", placeholder="Rename the open chat", elem_id="rename-box")
        with gr.Row():
            rename_btn = gr.Button("Rename", size="sm", elem_id="rename-chat")
            delete_btn = gr.Button("Delete", size="sm", variant="stop", elem_id="delete-chat")
    model_info = gr.Markdown(elem_id="model-info")
    chatbot = gr.Chatbot(elem_id="chatbot", height="65vh", show_label=False, buttons=["copy"])
    with gr.Row():
        textbox = gr.Textbox(
            placeholder="Send a message (Enter to send, Shift+Enter for a new line)",
            show_label=False,
            scale=8,
            lines=1,
            max_lines=8,
            elem_id="chat-input",
            autofocus=True,
        )
        send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
    return ChatComponents(conv_id, pending, chat_list, new_btn, rename_box, rename_btn, delete_btn, model_info, chatbot, textbox, send_btn, stop_btn)


def _history(ctx: AppContext, conv_id: int | None) -> list[dict[str, Any]]:
    if conv_id is None:
        return []
    return [{"role": m.role, "content": m.content} for m in ctx.repo.messages(conv_id)]


def _chat_choices(ctx: AppContext) -> list[tuple[str, int]]:
    return [(c.title, c.id) for c in ctx.repo.list_conversations()]


def _model_markdown(ctx: AppContext) -> str:
    info = ctx.engine.load_info
    if info is None:
        return "**Model:** none loaded"
    return f"**Model:** {info.name} · {info.loader}"


def wire(ctx: AppContext, c: ChatComponents, demo: gr.Blocks) -> None:
    """Connect the events."""

    def on_load() -> tuple[Any, ...]:
        choices = _chat_choices(ctx)
        current = choices[0][1] if choices else None
        title = choices[0][0] if choices else ""
        return gr.update(choices=choices, value=current), current, _history(ctx, current), title, _model_markdown(ctx)

    demo.load(on_load, None, [c.chat_list, c.conv_id, c.chatbot, c.rename_box, c.model_info], queue=False)

    def open_chat(selected: int | None) -> tuple[Any, ...]:
        if selected is None:
            return None, [], ""
        try:
            conv = ctx.repo.get_conversation(int(selected))
        except NotFound:
            raise gr.Error("That chat no longer exists.") from None
        return conv.id, _history(ctx, conv.id), conv.title

    c.chat_list.input(open_chat, c.chat_list, [c.conv_id, c.chatbot, c.rename_box], queue=False)

    def new_chat() -> tuple[Any, ...]:
        conv = ctx.chat.new_conversation()
        return gr.update(choices=_chat_choices(ctx), value=conv.id), conv.id, _history(ctx, conv.id), conv.title

    c.new_btn.click(new_chat, None, [c.chat_list, c.conv_id, c.chatbot, c.rename_box], queue=False)

    def rename(conv_id: int | None, title: str) -> Any:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        ctx.repo.rename_conversation(conv_id, title)
        return gr.update(choices=_chat_choices(ctx), value=conv_id)

    c.rename_btn.click(rename, [c.conv_id, c.rename_box], c.chat_list, queue=False)
    c.rename_box.submit(rename, [c.conv_id, c.rename_box], c.chat_list, queue=False)

    def delete(conv_id: int | None) -> tuple[Any, ...]:
        if conv_id is not None:
            ctx.repo.delete_conversation(conv_id)
        choices = _chat_choices(ctx)
        current = choices[0][1] if choices else None
        return gr.update(choices=choices, value=current), current, _history(ctx, current), (choices[0][0] if choices else "")

    c.delete_btn.click(
        delete,
        c.conv_id,
        [c.chat_list, c.conv_id, c.chatbot, c.rename_box],
        js="(id) => { if (!confirm('Delete this chat? This cannot be undone.')) throw new Error('cancelled'); return id; }",
        queue=False,
    )

    def prepare(conv_id: int | None, text: str) -> tuple[Any, ...]:
        """Show the user's message at once and clear the box; the reply streams in the next step."""
        if not text.strip():
            return gr.update(), gr.update(), conv_id, None
        if conv_id is None:
            conv_id = ctx.chat.new_conversation().id
        history = _history(ctx, conv_id) + [{"role": "user", "content": text}]
        return history, "", conv_id, text

    def respond(conv_id: int | None, text: str | None, request: gr.Request) -> Iterator[list[dict[str, Any]]]:
        if conv_id is None or not text:
            return
        history = _history(ctx, conv_id) + [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        try:
            for progress in ctx.chat.send(
                conv_id, text, GenerationParams(), session_key=request.session_hash or "", min_interval=UI_UPDATE_SECONDS
            ):
                history[-1]["content"] = progress.text
                if progress.done and progress.dropped_turns:
                    gr.Info(f"{progress.dropped_turns} old messages did not fit the context window and were left out of the prompt.")
                yield history
        except UserFacingError as exc:
            raise gr.Error(str(exc)) from exc

    def refresh_list(conv_id: int | None) -> Any:
        return gr.update(choices=_chat_choices(ctx), value=conv_id)

    for trigger in (c.send_btn.click, c.textbox.submit):
        (
            trigger(prepare, [c.conv_id, c.textbox], [c.chatbot, c.textbox, c.conv_id, c.pending], queue=False)
            .then(
                respond,
                [c.conv_id, c.pending],
                c.chatbot,
                concurrency_limit=None,  # the inference worker queues generations itself
                show_progress="hidden",
            )
            .then(refresh_list, c.conv_id, c.chat_list, queue=False)
        )

    def stop(request: gr.Request) -> None:
        ctx.chat.stop(request.session_hash or "")

    c.stop_btn.click(stop, None, None, queue=False)
