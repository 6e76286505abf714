"""The Chat tab: chat settings (character, persona, mode, template, greeting), the chat, the actions.

The sidebar (chat list) is wired in ``chat_list``; the selected-message panel in ``chat_messages``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.chat.prompt import MODES
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.storage.repository import NotFound
from webui.ui import chat_view as view
from webui.ui.events import ACTION, LOOKUP
from webui.ui.live_reply import HIDE_JS, LIVE_HTML, STREAM_JS, LiveReplies
from webui.ui.parameters_tab import ParamComponents, to_params
from webui.ui.session import current_user_id, session_key

log = logging.getLogger(__name__)

UI_UPDATE_SECONDS = 0.1  # at most ~10 screen updates a second; tokens in between are coalesced


@dataclass
class ChatComponents:
    conv_id: gr.State
    selected: gr.State  # index of the message the message panel acts on (None: the last one)
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
    live: gr.HTML  # holds #live-reply, where the reply being written streams (see webui.ui.live_reply)
    live_token: gr.Textbox  # hidden: the token of the turn the page is to stream
    textbox: gr.Textbox
    send_btn: gr.Button
    stop_btn: gr.Button
    regenerate_btn: gr.Button
    continue_btn: gr.Button
    impersonate_btn: gr.Button
    start_with: gr.Textbox
    message_info: gr.Markdown
    prev_btn: gr.Button
    next_btn: gr.Button
    edit_box: gr.Textbox
    save_edit_btn: gr.Button
    delete_msg_btn: gr.Button
    branch_btn: gr.Button
    show_prompt_btn: gr.Button
    prompt_view: gr.Textbox
    params: ParamComponents | None = None  # the Parameters tab, set by ``wire``: opening a chat restores its values


def build(ctx: AppContext) -> ChatComponents:
    """Lay out the sidebar and chat area (inside the caller's Blocks)."""
    conv_id = gr.State(None)
    selected = gr.State(None)
    with gr.Sidebar(open=True):
        new_btn = gr.Button("➕ New chat", elem_id="new-chat")
        search_box = gr.Textbox(label="Search chats", placeholder="words in any message", elem_id="chat-search")
        search_results = gr.Radio(label="Found", choices=[], visible=False, elem_id="search-results", interactive=True)
        chat_list = gr.Radio(label="Chats", choices=[], elem_id="chat-list", interactive=True)
        rename_box = gr.Textbox(label="Title", placeholder="Rename the open chat", elem_id="rename-box")
        with gr.Row():
            rename_btn = gr.Button("Rename", size="sm", elem_id="rename-chat")
            delete_btn = gr.Button("Delete", size="sm", variant="stop", elem_id="delete-chat")
        with gr.Row():
            export_btn = gr.Button("Export JSON", size="sm", elem_id="export-chat")
        export_file = gr.File(label="Exported chat", visible=False, elem_id="export-file", interactive=False)
        import_file = gr.File(label="Import chat (ours or Oobabooga JSON)", file_types=[".json"], type="binary", elem_id="import-chat")
    model_info = gr.Markdown(elem_id="model-info")
    with gr.Row():
        character = gr.Dropdown(choices=ctx.characters.names(), value="Assistant", label="Character", elem_id="chat-character", scale=2)
        persona = gr.Dropdown(choices=view.persona_choices(ctx, None), value=view.NO_PERSONA, label="Persona", elem_id="chat-persona", scale=2)
        mode = gr.Radio(choices=list(MODES), value="chat", label="Mode", elem_id="chat-mode", scale=3)
        template = gr.Dropdown(choices=view.template_choices(ctx), value="", label="Instruction template", elem_id="chat-template", scale=2)
        greeting = gr.Dropdown(choices=view.greeting_choices(ctx, "Assistant"), value=0, label="Greeting", elem_id="chat-greeting", scale=2)
    creator_notes = gr.Markdown(elem_id="creator-notes")
    notice = gr.Markdown(elem_id="chat-notice")
    chatbot = gr.Chatbot(elem_id="chatbot", height="60vh", show_label=False, buttons=["copy"], sanitize_html=True)
    live = gr.HTML(LIVE_HTML, elem_id="live-reply-host", js_on_load=None)
    live_token = gr.Textbox("", visible="hidden", elem_id="live-token")
    with gr.Row():
        textbox = gr.Textbox(
            placeholder="Send a message (Enter to send, Shift+Enter for a new line)",
            show_label=False, scale=8, lines=1, max_lines=8, elem_id="chat-input", autofocus=True,
        )
        send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
    with gr.Row():
        regenerate_btn = gr.Button("🔄 Regenerate", size="sm", elem_id="regenerate")
        continue_btn = gr.Button("➡️ Continue", size="sm", elem_id="continue")
        impersonate_btn = gr.Button("👤 Impersonate", size="sm", elem_id="impersonate")
        start_with = gr.Textbox(placeholder="Start reply with…", show_label=False, scale=3, elem_id="start-with")
    with gr.Accordion("Message (click a message in the chat to select it)", open=True):
        message_info = gr.Markdown(elem_id="message-info")
        with gr.Row():
            prev_btn = gr.Button("<", size="sm", elem_id="prev-version", scale=0, min_width=50)
            next_btn = gr.Button(">", size="sm", elem_id="next-version", scale=0, min_width=50)
            save_edit_btn = gr.Button("Save edit", size="sm", elem_id="save-edit")
            delete_msg_btn = gr.Button("Delete message", size="sm", variant="stop", elem_id="delete-message")
            branch_btn = gr.Button("Branch from here", size="sm", elem_id="branch")
        edit_box = gr.Textbox(label="Text of the selected message", lines=3, elem_id="edit-box")
    with gr.Accordion("Prompt", open=False):
        show_prompt_btn = gr.Button("Show prompt", size="sm", elem_id="show-prompt")
        prompt_view = gr.Textbox(label="The exact text the model sees", lines=12, max_lines=40, interactive=False, elem_id="prompt-view")
    return ChatComponents(
        conv_id, selected, chat_list, new_btn, rename_box, rename_btn, delete_btn, search_box,
        search_results, export_btn, export_file, import_file, model_info, character, persona, mode, template,
        greeting, creator_notes, notice, chatbot, live, live_token, textbox, send_btn, stop_btn, regenerate_btn, continue_btn,
        impersonate_btn, start_with, message_info, prev_btn, next_btn, edit_box, save_edit_btn, delete_msg_btn,
        branch_btn, show_prompt_btn, prompt_view,
    )


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
            c.creator_notes, c.selected, c.notice, c.message_info, c.edit_box,
            *(c.params.chat_outputs() if c.params is not None else [])]


def open_values(ctx: AppContext, c: ChatComponents, conv_id: int | None, user_id: int | None) -> list[Any]:
    """Values for ``open_outputs(c)``: the chat's history, title, settings, avatars and the generation
    parameters stored with it (a chat without any leaves the Parameters tab unchanged)."""
    if conv_id is None:
        return [None, gr.Chatbot(value=[], avatar_images=(None, None)), "", gr.update(), gr.update(), gr.update(),
                gr.update(), gr.update(), "", None, "", "", "", *_param_values(c, None)]
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
        None,
        "",
        *message_panel(msgs, None),
        *_param_values(c, ctx.chat.stored_params(conv)),
    ]


def _param_values(c: ChatComponents, params: GenerationParams | None) -> list[Any]:
    return c.params.chat_values(params) if c.params is not None else []


def message_panel(msgs: list[Any], selected: int | None) -> list[str]:
    """(info markdown, edit text) for the selected message (None: the last one)."""
    if not msgs:
        return ["No messages yet.", ""]
    idx = len(msgs) - 1 if selected is None or selected >= len(msgs) else selected
    m = msgs[idx]
    return [f"Message {idx + 1} of {len(msgs)} · {m.role} · version {m.active_version + 1}/{m.version_count}", m.content]


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-facing errors into a gr.Error popup (the server keeps serving)."""
    import inspect

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except (UserFacingError, NotFound) as exc:
                raise gr.Error(str(exc)) from exc
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UserFacingError, NotFound) as exc:
            raise gr.Error(str(exc)) from exc
    return wrapper


def wire(ctx: AppContext, c: ChatComponents, demo: gr.Blocks, params: ParamComponents, replies: LiveReplies) -> None:
    """Connect the chat-area events; the sidebar and message panel wire themselves. ``replies``
    holds the turns the page streams (see webui.ui.live_reply)."""
    from webui.ui import chat_list, chat_messages

    c.params = params  # before the sidebar and message panel take open_outputs(c)
    chat_list.wire(ctx, c, demo)
    chat_messages.wire(ctx, c, params)
    p_inputs = params.inputs

    # -- chat settings -------------------------------------------------------------------
    @_handle_errors
    def set_character(conv_id: int | None, name: str, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        if conv_id is None:
            return [gr.update(), gr.update(choices=view.greeting_choices(ctx, name), value=0), creator_notes_markdown(ctx, name)]
        ctx.chat.configure(conv_id, uid, character=name, greeting=0)
        conv = ctx.repo.get_conversation(conv_id, uid)
        return [
            gr.Chatbot(value=view.history(ctx, conv_id, uid), avatar_images=view.avatar_images(ctx, conv, uid)),
            gr.update(choices=view.greeting_choices(ctx, name), value=0),
            creator_notes_markdown(ctx, name),
        ]

    c.character.input(set_character, [c.conv_id, c.character], [c.chatbot, c.greeting, c.creator_notes], **ACTION)

    def setter(key: str) -> Callable[..., Any]:
        @_handle_errors
        def set_value(conv_id: int | None, value: Any, request: gr.Request) -> Any:
            if conv_id is None:
                return gr.update()
            uid = current_user_id(ctx, request)
            if key == "persona" and value == view.NO_PERSONA:
                value = None
            ctx.chat.configure(conv_id, uid, **{key: value})
            conv = ctx.repo.get_conversation(conv_id, uid)
            return gr.Chatbot(value=view.history(ctx, conv_id, uid), avatar_images=view.avatar_images(ctx, conv, uid))

        return set_value

    for key, comp in (("persona", c.persona), ("mode", c.mode), ("template", c.template), ("greeting", c.greeting)):
        comp.input(setter(key), [c.conv_id, comp], c.chatbot, **ACTION)

    # -- send ---------------------------------------------------------------------------
    def ensure_chat(conv_id: int | None, uid: int | None, character: str, persona: str, mode: str, greeting: Any) -> int:
        if conv_id is not None:
            return conv_id
        conv = ctx.chat.new_conversation(
            character, uid, persona=None if persona == view.NO_PERSONA else persona, mode=mode, greeting=int(greeting or 0)
        )
        return conv.id

    @_handle_errors
    def prepare(conv_id: int | None, text: str, character: str, persona: str, mode: str, greeting: Any,
                start_with: str, request: gr.Request, *pvals: Any) -> tuple[Any, ...]:
        """Show the user's message at once, clear the box and register the reply for the page to
        stream (the last output: its token, "" when there is nothing to send)."""
        if not text.strip():
            return gr.update(), gr.update(), conv_id, ""
        uid = current_user_id(ctx, request)
        conv_id = ensure_chat(conv_id, uid, character, persona, mode, greeting)
        history = view.history(ctx, conv_id, uid) + [{"role": "user", "content": view.safe_markdown(text)}]
        token = register_turn(uid, request, pvals, ctx.chat.send, conv_id, text, start_with=start_with or "")
        return history, "", conv_id, token

    def register_turn(uid: int | None, request: gr.Request, pvals: tuple[Any, ...], turn: Callable[..., Any],
                      *args: Any, initial: str = "", **kwargs: Any) -> str:
        """Register ``turn(*args, params, ...)`` (a ChatService reply: send, regenerate, continue)
        for the page to stream; its token."""
        start = functools.partial(turn, *args, to_params(pvals), session_key=session_key(request), user_id=uid,
                                  min_interval=UI_UPDATE_SECONDS, **kwargs)
        return replies.register(start, initial)

    def without_last_reply(conv_id: int, uid: int | None) -> tuple[list[dict[str, Any]], str]:
        """The chat without its last reply (the live bubble takes its place), and that reply's text."""
        msgs = ctx.repo.messages(conv_id, uid)
        if msgs and msgs[-1].role == "assistant":
            return view.display(msgs[:-1]), msgs[-1].content
        return view.display(msgs), ""

    @_handle_errors
    def begin_regenerate(conv_id: int | None, start_with: str, request: gr.Request, *pvals: Any) -> tuple[Any, str]:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        uid = current_user_id(ctx, request)
        shown, _ = without_last_reply(conv_id, uid)
        return shown, register_turn(uid, request, pvals, ctx.chat.regenerate, conv_id, start_with=start_with or "")

    @_handle_errors
    def begin_continue(conv_id: int | None, request: gr.Request, *pvals: Any) -> tuple[Any, str]:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        uid = current_user_id(ctx, request)
        shown, last_reply = without_last_reply(conv_id, uid)
        return shown, register_turn(uid, request, pvals, ctx.chat.continue_reply, conv_id, initial=last_reply)

    def after_turn(conv_id: int | None, token: str, request: gr.Request) -> list[Any]:
        """After a reply ends (finished, stopped or failed): the chat as stored, the notice, and the
        error if the turn failed."""
        uid = current_user_id(ctx, request)
        outcome = replies.outcome(token) if token else None
        if outcome is not None and outcome.error:
            gr.Warning(outcome.error)
        msgs = ctx.repo.messages(conv_id, uid) if conv_id is not None else []
        title = ctx.repo.get_conversation(conv_id, uid).title if conv_id is not None else gr.skip()
        return [
            view.display(msgs), view.dropped_notice(outcome.dropped_turns) if outcome else gr.skip(),
            gr.update(choices=view.chat_choices(ctx, uid), value=conv_id), None, *message_panel(msgs, None),
            title,  # a new chat is named after its first message
        ]

    after_outputs = [c.chatbot, c.notice, c.chat_list, c.selected, c.message_info, c.edit_box, c.rename_box]

    def stream_then_show(begun: Any) -> None:
        """Once a turn is registered: the page streams it (JavaScript only), then the stored chat is
        shown, then the live bubble is hidden."""
        (
            begun.success(None, c.live_token, None, js=STREAM_JS)
            # queued, so its warning shows; "always_last": a reply that ends while the previous turn's
            # after_turn runs gets its own run afterwards (Gradio's default "once" would drop it)
            .then(after_turn, [c.conv_id, c.live_token], after_outputs, show_progress="hidden", trigger_mode="always_last")
            .then(None, None, None, js=HIDE_JS)
        )

    for trigger in (c.send_btn.click, c.textbox.submit):
        stream_then_show(trigger(
            prepare, [c.conv_id, c.textbox, c.character, c.persona, c.mode, c.greeting, c.start_with, *p_inputs],
            [c.chatbot, c.textbox, c.conv_id, c.live_token], show_progress="hidden",
        ))

    # -- regenerate / continue / impersonate ------------------------------------------------
    stream_then_show(c.regenerate_btn.click(
        begin_regenerate, [c.conv_id, c.start_with, *p_inputs], [c.chatbot, c.live_token], show_progress="hidden"))
    stream_then_show(c.continue_btn.click(
        begin_continue, [c.conv_id, *p_inputs], [c.chatbot, c.live_token], show_progress="hidden"))

    @_handle_errors
    def impersonate(conv_id: int | None, text: str, request: gr.Request, *pvals: Any) -> Iterator[str]:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        uid = current_user_id(ctx, request)
        for progress in ctx.chat.impersonate(conv_id, to_params(pvals), session_key=session_key(request), user_id=uid,
                                             min_interval=UI_UPDATE_SECONDS, start_with=text or ""):
            yield progress.text

    c.impersonate_btn.click(
        impersonate, [c.conv_id, c.textbox, *p_inputs], c.textbox, concurrency_limit=None, show_progress="hidden"
    )

    def stop(request: gr.Request) -> None:
        ctx.chat.stop(session_key(request))

    c.stop_btn.click(stop, None, None, **LOOKUP)  # never waits behind the queue

    @_handle_errors
    def show_prompt(conv_id: int | None, request: gr.Request, *pvals: Any) -> str:
        if conv_id is None:
            raise gr.Error("Open a chat first.")
        return ctx.chat.show_prompt(conv_id, to_params(pvals), current_user_id(ctx, request)).prompt

    c.show_prompt_btn.click(show_prompt, [c.conv_id, *p_inputs], c.prompt_view, **ACTION)
