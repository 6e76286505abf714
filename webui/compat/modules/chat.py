"""upstream's ``modules.chat``: generate_chat_prompt, save_history, redraw_html.

``generate_chat_prompt(user_input, state, **kwargs)`` inside a turn (an extension's
``custom_generate_chat_prompt`` calling it) renders exactly as the turn does: the same character,
persona, mode, template and context budget, then ``bot_prefix_modifier``. Called elsewhere, it
renders the history in ``kwargs['history']`` for the character and mode named in ``state``.
"""

from __future__ import annotations

from typing import Any

from webui.compat.bridge import current
from webui.compat.history import from_upstream, history_messages, to_upstream
from webui.compat.modules.html_generator import chat_html


def generate_chat_prompt(user_input: str, state: dict[str, Any], **kwargs: Any) -> str:
    bridge = current()
    render = bridge.current_renderer()
    if render is not None:
        return render(str(user_input or ""), state, kwargs)
    if bridge.chat is None:
        raise RuntimeError("modules.chat: no app is attached")
    from webui.generation.params import GenerationParams

    messages = history_messages(kwargs.get("history"))
    if user_input and not kwargs.get("_continue") and not kwargs.get("impersonate"):
        messages.append({"role": "user", "content": str(user_input)})
    fields = {k: v for k, v in (state or {}).items() if k in GenerationParams.model_fields}
    character = (state or {}).get("character_menu") or None
    result = bridge.chat.api_prompt([(m["role"], m["content"]) for m in messages],
                                    GenerationParams.model_validate(fields), character=character,
                                    mode=(state or {}).get("mode") or None)
    return result.prompt


def save_history(history: Any, unique_id: Any = None, character: str | None = None, mode: str | None = None) -> None:
    """Write the texts of ``history`` (upstream's shape, its ``visible`` side) into the stored chat
    ``unique_id`` (a conversation id), message by message. Messages are changed in place; adding or
    removing messages this way is not supported (the chat keeps its length)."""
    bridge = current()
    if bridge.chat is None or unique_id is None:
        return
    visible = history.get("visible", history.get("internal", [])) if isinstance(history, dict) else []
    texts = [m["content"] for m in from_upstream({"internal": visible})]
    repo = bridge.chat.repo
    stored = repo.messages(int(unique_id), None)
    for message, text in zip(stored, texts):
        if message.content != text:
            repo.edit_message(message.id, text, None)


def load_history(unique_id: Any, character: str | None = None, mode: str | None = None) -> dict[str, Any]:
    """The stored chat ``unique_id`` in upstream's shape."""
    bridge = current()
    if bridge.chat is None:
        return {"internal": [], "visible": []}
    stored = bridge.chat.repo.messages(int(unique_id), None)
    return to_upstream([{"role": m.role, "content": m.content} for m in stored])


def redraw_html(history: Any, name1: str = "You", name2: str = "Assistant", mode: str = "chat",
                style: str = "", character: str = "", reset_cache: bool = False) -> str:
    """The history as HTML (the chat itself redraws from the database after each reply)."""
    return chat_html(history, name1, name2)
