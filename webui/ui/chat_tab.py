"""The Chat tab: chat settings (character, persona, mode, template, greeting), the chat, the actions.

The sidebar (chat list) is wired in ``chat_list``; the buttons on each message in ``chat_messages``;
what they share is in ``chat_components``; the page script (buttons, shortcuts, dark mode) is
``static/chat.js``. A reply is not streamed through its Gradio event: the
event registers the turn in ``LiveReplies`` and the page streams it (see webui.ui.live_reply).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from webui.chat.prompt import MODES
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.ui import backup, chat_list, chat_messages, icons, shortcuts
from webui.ui import chat_view as view
from webui.ui.chat_components import ChatComponents, chat_list_update, creator_notes_markdown
from webui.ui.events import action, bind, lookup, on
from webui.ui.live_reply import HIDE_JS, LIVE_HTML, STREAM_JS, LiveReplies, TurnOutcome
from webui.ui.parameters_tab import ParamComponents, to_params
from webui.ui.session import current_user_id, reply_owner, saving_user_id, session_key

UI_UPDATE_SECONDS = 0.1  # at most ~10 screen updates a second; tokens in between are coalesced
STATIC = Path(__file__).parent / "static"


def build(ctx: AppContext) -> ChatComponents:
    """Lay out the sidebar and chat area (inside the caller's Blocks)."""
    conv_id = gr.State(None)
    with gr.Sidebar(open=True, elem_id="chat-sidebar"):
        new_btn = gr.Button("New chat", variant="primary", elem_id="new-chat")
        search_box = gr.Textbox(label="Search chats", placeholder="words in any message", elem_id="chat-search")
        search_results = gr.Radio(label="Found", choices=[], visible=False, elem_id="search-results", interactive=True)
        chat_list = gr.Radio(label="Chats", choices=[], elem_id="chat-list", interactive=True)
        rename_box = gr.Textbox(label="Title", placeholder="Rename the open chat", elem_id="rename-box")
        with gr.Row():
            rename_btn = gr.Button("Rename", size="sm", elem_id="rename-chat")
            delete_btn = gr.Button("Delete", size="sm", variant="stop", elem_id="delete-chat")
        with gr.Accordion("Import / export", open=False, elem_id="import-export"):
            export_btn = gr.Button("Export this chat (JSON)", size="sm", elem_id="export-chat")
            export_file = gr.File(label="Exported chat", visible=False, elem_id="export-file", interactive=False)
            import_file = gr.File(label="Import a chat (ours or Oobabooga JSON)", file_types=[".json"],
                                  type="binary", elem_id="import-chat", height=120)
            backup_area = backup.build()
    with gr.Row(elem_id="chat-header", equal_height=True):
        with gr.Column(scale=1, min_width=0):
            model_info = gr.Markdown(elem_id="model-info")
        with gr.Column(scale=0, min_width=80):
                tools = gr.HTML("", html_template=TOOLS_TEMPLATE, js_on_load=page_script(), elem_id="chat-tools",
                            apply_default_css=False, container=False)
    with gr.Accordion("Chat settings", open=True, elem_id="chat-settings-box"), gr.Row(elem_id="chat-settings"):
        character = gr.Dropdown(choices=ctx.characters.names(), value="Assistant", label="Character",
                                elem_id="chat-character", scale=2, min_width=160)
        persona = gr.Dropdown(choices=view.persona_choices(ctx, None), value=view.NO_PERSONA, label="Persona",
                              elem_id="chat-persona", scale=2, min_width=160)
        mode = gr.Dropdown(choices=list(MODES), value="chat", label="Mode", elem_id="chat-mode", scale=2, min_width=160)
        template = gr.Dropdown(choices=view.template_choices(ctx), value="", label="Instruction template",
                               elem_id="chat-template", scale=2, min_width=160)
        greeting = gr.Dropdown(choices=view.greeting_choices(ctx, "Assistant"), value=0, label="Greeting",
                               elem_id="chat-greeting", scale=2, min_width=160)
    with gr.Column(elem_classes="tight"):
        creator_notes = gr.Markdown(elem_id="creator-notes")
        notice = gr.Markdown(elem_id="chat-notice")
    # copy and edit on every message and retry (Regenerate) on the last reply are Gradio's own; the
    # page script adds < n/m >, Continue, Branch and Delete (webui/ui/chat_messages.py)
    chatbot = gr.Chatbot(elem_id="chatbot", height="max(320px, calc(100vh - 420px))", show_label=False,
                         buttons=["copy"], sanitize_html=True, editable="all", feedback_options=None,
                         group_consecutive_messages=False)
    with gr.Column(elem_classes="tight"):
        live = gr.HTML(LIVE_HTML, elem_id="live-reply-host", js_on_load=None)
        live_token = gr.Textbox("", visible="hidden", elem_id="live-token")
        stats = gr.Markdown(elem_id="reply-stats")
    with gr.Row(elem_id="chat-input-row", equal_height=True):
        textbox = gr.Textbox(
            placeholder="Send a message (Enter to send, Shift+Enter for a new line, ? for shortcuts)",
            show_label=False, scale=8, lines=1, max_lines=8, elem_id="chat-input", autofocus=True, min_width=120,
        )
        send_btn = gr.Button("Send", variant="primary", scale=0, min_width=64, elem_id="send")
        stop_btn = gr.Button("Stop", variant="stop", scale=0, min_width=64, elem_id="stop")
    with gr.Row(elem_id="chat-under-input"):
        impersonate_btn = gr.Button("Impersonate", size="sm", scale=0, min_width=120, elem_id="impersonate")
        start_with = gr.Textbox(placeholder="Start reply with…", show_label=False, scale=3, min_width=120,
                                elem_id="start-with")
        token_count = gr.Markdown(elem_id="token-count")
    regenerate_btn = gr.Button("Regenerate", visible="hidden", elem_id="regenerate")
    continue_btn = gr.Button("Continue", visible="hidden", elem_id="continue")
    with gr.Accordion("Prompt", open=False):
        show_prompt_btn = gr.Button("Show prompt", size="sm", elem_id="show-prompt")
        prompt_view = gr.Textbox(label="The exact text the model sees", lines=12, max_lines=40, interactive=False,
                                 elem_id="prompt-view")
    return ChatComponents(
        conv_id, chat_list, new_btn, rename_box, rename_btn, delete_btn, search_box, search_results, export_btn,
        export_file, import_file, model_info, character, persona, mode, template, greeting, creator_notes, notice,
        chatbot, tools, live, live_token, stats, token_count, textbox, send_btn, stop_btn, regenerate_btn,
        continue_btn, impersonate_btn, start_with, show_prompt_btn, prompt_view, backup=backup_area,
    )


# The tools component: the help and dark-mode buttons, the shortcut help, and (its value) each
# message's versions for the page script. A Gradio HTML template: no backticks, no "${" but value's.
TOOLS_TEMPLATE = (
    '<div class="tool-row" data-versions="${value}">'
    f'<button type="button" class="tool-btn help-toggle" title="Keyboard shortcuts (?)" '
    f'aria-label="Keyboard shortcuts">{icons.svg("keyboard")}</button>'
    f'<button type="button" class="tool-btn theme-toggle" title="Dark or light" aria-label="Dark or light">'
    f'<span class="icon-moon">{icons.svg("moon")}</span><span class="icon-sun">{icons.svg("sun")}</span></button>'
    '</div>'
    '<div class="shortcut-help" role="dialog" aria-label="Keyboard shortcuts" hidden>'
    f'<h3>Keyboard shortcuts</h3>{shortcuts.help_html()}'
    '<button type="button" class="tool-btn help-close" title="Close" aria-label="Close">'
    f'{icons.svg("plus")}</button></div>'
)


def page_script() -> str:
    """static/chat.js with the message toolbar's icons filled in."""
    names = ("left", "right", "continue", "branch", "trash")
    script = (STATIC / "chat.js").read_text(encoding="utf-8")
    return script.replace("__ICONS__", json.dumps({n: icons.svg(n) for n in names}))


BUTTON_ICONS = {"new-chat": "plus", "send": "send", "stop": "stop", "impersonate": "user",
                "export-chat": "download", "rename-chat": "edit", "delete-chat": "trash", "show-prompt": "search"}


def page_css() -> str:
    """static/chat.css and the icons of the chat's buttons."""
    return (STATIC / "chat.css").read_text(encoding="utf-8") + "\n" + icons.button_css(BUTTON_ICONS)



# -- chat settings -----------------------------------------------------------------------


@action
def set_character(ctx: AppContext, conv_id: int | None, name: str, request: gr.Request | None) -> list[Any]:
    """The character picked: [chatbot, greeting choices, creator's notes]; the open chat (if any)
    switches to it, from its first greeting."""
    uid = current_user_id(ctx, request)
    if conv_id is None:
        return [gr.update(), gr.update(choices=view.greeting_choices(ctx, name), value=0),
                creator_notes_markdown(ctx, name)]
    ctx.chat.configure(conv_id, uid, character=name, greeting=0)
    return [
        _chatbot(ctx, conv_id, uid),
        gr.update(choices=view.greeting_choices(ctx, name), value=0),
        creator_notes_markdown(ctx, name),
    ]


@action
def set_setting(ctx: AppContext, key: str, conv_id: int | None, value: Any, request: gr.Request | None) -> Any:
    """The persona, mode, template or greeting (``key``) changed: stored with the open chat, which is shown again."""
    if conv_id is None:
        return gr.update()
    uid = current_user_id(ctx, request)
    if key == "persona" and value == view.NO_PERSONA:
        value = None
    ctx.chat.configure(conv_id, uid, **{key: value})
    return _chatbot(ctx, conv_id, uid)


def _chatbot(ctx: AppContext, conv_id: int, uid: int | None) -> Any:
    conv = ctx.repo.get_conversation(conv_id, uid)
    return gr.Chatbot(value=view.history(ctx, conv_id, uid), avatar_images=view.avatar_images(ctx, conv, uid))


# -- replies ------------------------------------------------------------------------------


def ensure_chat(ctx: AppContext, conv_id: int | None, uid: int | None, character: str, persona: str, mode: str,
                greeting: Any) -> int:
    """The open chat, or a new one with the chosen settings when none is open."""
    if conv_id is not None:
        return conv_id
    conv = ctx.chat.new_conversation(
        character, uid, persona=None if persona == view.NO_PERSONA else persona, mode=mode, greeting=int(greeting or 0)
    )
    return conv.id


def register_turn(ctx: AppContext, replies: LiveReplies, uid: int | None, request: gr.Request | None,
                  pvals: tuple[Any, ...], turn: Callable[..., Any], *args: Any, initial: str = "",
                  **kwargs: Any) -> str:
    """Register ``turn(*args, params, ...)`` (a ChatService reply: send, regenerate, continue) for the
    page to stream; its token."""
    start = functools.partial(turn, *args, to_params(pvals), session_key=session_key(request), user_id=uid,
                              min_interval=UI_UPDATE_SECONDS, **kwargs)
    return replies.register(start, initial, owner=reply_owner(ctx, request))


def without_last_reply(ctx: AppContext, conv_id: int, uid: int | None) -> tuple[list[dict[str, Any]], str]:
    """The chat without its last reply (the live bubble takes its place), and that reply's text."""
    msgs = ctx.repo.messages(conv_id, uid)
    if msgs and msgs[-1].role == "assistant":
        return view.display(msgs[:-1]), msgs[-1].content
    return view.display(msgs), ""


@action
def prepare(ctx: AppContext, replies: LiveReplies, conv_id: int | None, text: str, character: str, persona: str,
            mode: str, greeting: Any, start_with: str, request: gr.Request | None, *pvals: Any) -> tuple[Any, ...]:
    """Send: show the user's message at once, clear the box and register the reply for the page to
    stream: (chatbot, textbox, chat id, token; "" when there is nothing to send)."""
    if not text.strip():
        return gr.update(), gr.update(), conv_id, ""
    uid = saving_user_id(ctx, request) if conv_id is None else current_user_id(ctx, request)  # a new chat or not
    conv_id = ensure_chat(ctx, conv_id, uid, character, persona, mode, greeting)
    history = view.history(ctx, conv_id, uid) + [{"role": "user", "content": view.safe_markdown(text)}]
    token = register_turn(ctx, replies, uid, request, pvals, ctx.chat.send, conv_id, text, start_with=start_with or "")
    return history, "", conv_id, token


def _open_chat_id(conv_id: int | None) -> int:
    if conv_id is None:
        raise UserFacingError("Open a chat first.")
    return conv_id


@action
def begin_regenerate(ctx: AppContext, replies: LiveReplies, conv_id: int | None, start_with: str,
                     request: gr.Request | None, *pvals: Any) -> tuple[Any, str]:
    """Regenerate: (the chat without its last reply, the new reply's token)."""
    conv_id = _open_chat_id(conv_id)
    uid = current_user_id(ctx, request)
    shown, _ = without_last_reply(ctx, conv_id, uid)
    return shown, register_turn(ctx, replies, uid, request, pvals, ctx.chat.regenerate, conv_id,
                                start_with=start_with or "")


@action
def begin_continue(ctx: AppContext, replies: LiveReplies, conv_id: int | None, request: gr.Request | None,
                   *pvals: Any) -> tuple[Any, str]:
    """Continue: (the chat without its last reply, whose text the live bubble starts from; the token)."""
    conv_id = _open_chat_id(conv_id)
    uid = current_user_id(ctx, request)
    shown, last_reply = without_last_reply(ctx, conv_id, uid)
    return shown, register_turn(ctx, replies, uid, request, pvals, ctx.chat.continue_reply, conv_id, initial=last_reply)


@action
def after_turn(ctx: AppContext, replies: LiveReplies, conv_id: int | None, token: str,
               request: gr.Request | None) -> list[Any]:
    """After a reply ends (finished, stopped or failed): the chat as stored, the notice, the chat
    list, the speed and context line and the title; a warning if the turn failed."""
    uid = current_user_id(ctx, request)
    outcome = replies.outcome(token) if token else None
    if outcome is not None and outcome.error:
        gr.Warning(outcome.error)
    msgs = ctx.repo.messages(conv_id, uid) if conv_id is not None else []
    title = ctx.repo.get_conversation(conv_id, uid).title if conv_id is not None else gr.skip()
    return [
        view.display(msgs), view.dropped_notice(outcome.dropped_turns) if outcome else gr.skip(),
        chat_list_update(ctx, uid, conv_id), stats_markdown(ctx, outcome),
        title,  # a new chat is named after its first message
    ]


def stats_markdown(ctx: AppContext, outcome: TurnOutcome | None) -> Any:
    """The speed and context line for a finished turn (unchanged for one that never streamed)."""
    if outcome is None or outcome.seconds <= 0:
        return gr.skip()
    info = ctx.engine.model_info
    return view.stats_line(outcome.seconds, outcome.first_token, outcome.completion_tokens, outcome.prompt_tokens,
                           info.context_length if info else None)


@lookup
def count_tokens(ctx: AppContext, conv_id: int | None, text: str, request: gr.Request | None) -> str:
    """The token counter: the open chat's messages and the typed text, counted by the loaded model's
    tokenizer off the inference worker (``Engine.count_tokens_now``), so it never waits behind a
    reply; empty when the model cannot count that way or none is loaded."""
    try:
        msgs = ctx.repo.messages(conv_id, current_user_id(ctx, request)) if conv_id is not None else []
    except Exception:  # a chat deleted meanwhile, a request without a login: no count
        return ""
    whole = "\n".join([*(m.content for m in msgs), text or ""])
    info = ctx.engine.model_info
    return view.token_count_line(ctx.engine.count_tokens_now(whole), info.context_length if info else None)


@action
def impersonate(ctx: AppContext, conv_id: int | None, text: str, request: gr.Request | None,
                *pvals: Any) -> Iterator[str]:
    """Write the user's next message (into the box, from what is typed there), streamed."""
    conv_id = _open_chat_id(conv_id)
    uid = current_user_id(ctx, request)
    for progress in ctx.chat.impersonate(conv_id, to_params(pvals), session_key=session_key(request), user_id=uid,
                                         min_interval=UI_UPDATE_SECONDS, start_with=text or ""):
        yield progress.text


@lookup
def stop(ctx: AppContext, request: gr.Request | None) -> None:
    """Stop this tab's reply (a lookup: it must never wait behind the queue)."""
    ctx.chat.stop(session_key(request))


@action
def show_prompt(ctx: AppContext, conv_id: int | None, request: gr.Request | None, *pvals: Any) -> str:
    """The exact prompt the model would see for the open chat's next reply."""
    conv_id = _open_chat_id(conv_id)
    return ctx.chat.show_prompt(conv_id, to_params(pvals), current_user_id(ctx, request)).prompt


# -- wiring -------------------------------------------------------------------------------


def wire(ctx: AppContext, c: ChatComponents, demo: gr.Blocks, params: ParamComponents, replies: LiveReplies) -> None:
    """Connect the chat-area events, the sidebar's and the buttons on the messages. ``replies``
    holds the turns the page streams."""
    c.params = params  # before the sidebar and the message actions take open_outputs(c)
    chat_list.wire(ctx, c, demo)
    chat_messages.wire(ctx, c)
    p_inputs = params.inputs

    on(c.character.input, bind(set_character, ctx), [c.conv_id, c.character], [c.chatbot, c.greeting, c.creator_notes])
    for key, comp in (("persona", c.persona), ("mode", c.mode), ("template", c.template), ("greeting", c.greeting)):
        on(comp.input, bind(set_setting, ctx, key), [c.conv_id, comp], c.chatbot)

    after_outputs = [c.chatbot, c.notice, c.chat_list, c.stats, c.rename_box]

    def stream_then_show(begun: Any) -> None:
        """Once a turn is registered: the page streams it (JavaScript only), then the stored chat is
        shown, then the live bubble is hidden. after_turn is queued, so its warning shows;
        "always_last": a reply that ends while the previous turn's after_turn runs gets its own run
        afterwards (Gradio's default "once" would drop it)."""
        streamed = begun.success(None, c.live_token, None, js=STREAM_JS)
        on(streamed.then, bind(after_turn, ctx, replies), [c.conv_id, c.live_token], after_outputs,
           show_progress="hidden", trigger_mode="always_last").then(None, None, None, js=HIDE_JS)

    send_inputs = [c.conv_id, c.textbox, c.character, c.persona, c.mode, c.greeting, c.start_with, *p_inputs]
    for trigger in (c.send_btn.click, c.textbox.submit):
        stream_then_show(on(trigger, bind(prepare, ctx, replies), send_inputs,
                            [c.chatbot, c.textbox, c.conv_id, c.live_token], show_progress="hidden"))
    for trigger in (c.regenerate_btn.click, c.chatbot.retry):
        stream_then_show(on(trigger, bind(begin_regenerate, ctx, replies),
                            [c.conv_id, c.start_with, *p_inputs], [c.chatbot, c.live_token], show_progress="hidden"))
    stream_then_show(on(c.continue_btn.click, bind(begin_continue, ctx, replies), [c.conv_id, *p_inputs],
                        [c.chatbot, c.live_token], show_progress="hidden"))
    on(c.impersonate_btn.click, bind(impersonate, ctx), [c.conv_id, c.textbox, *p_inputs], c.textbox,
       concurrency_limit=None, show_progress="hidden")
    on(c.stop_btn.click, bind(stop, ctx), None, None)
    on(c.show_prompt_btn.click, bind(show_prompt, ctx), [c.conv_id, *p_inputs], c.prompt_view)
    on(c.tools.input, bind(count_tokens, ctx), [c.conv_id, c.textbox], c.token_count,
       trigger_mode="always_last", show_progress="hidden")
