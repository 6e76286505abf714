"""What the chat area shows: stored messages as Chatbot values, avatars, chat-setting choices."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from webui.chat.instruct import MODEL_TEMPLATE
from webui.context import AppContext
from webui.storage.repository import ConversationRecord, MessageRecord
from webui.ui import display_html

NO_PERSONA = "(none)"
MODEL_TEMPLATE_LABEL = "(the model's own)"


_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]*`)", re.DOTALL)


def safe_markdown(text: str) -> str:
    """Markdown with raw HTML shown as text: ``<``, ``>`` and ``&`` are escaped outside code.

    Gradio's sanitizer would strip event handlers but still insert the elements; here no
    element from a model's reply, a card or the user's text is created at all. Code spans and
    fenced blocks are left alone (Markdown already shows them literally).
    """
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(parts)


def dropped_notice(dropped: int) -> str:
    """What the chat says when ``dropped`` old messages did not fit the context window."""
    if not dropped:
        return ""
    plural = dropped != 1
    return (f"**Note:** {dropped} old message{'s' if plural else ''} did not fit the context window and "
            f"{'were' if plural else 'was'} left out of the prompt.")


def display(messages: list[MessageRecord]) -> list[dict[str, Any]]:
    """Chatbot value: one entry per stored message (indices match), active version's text (its
    display text, sanitized HTML, where an upstream-style output_modifier made one)."""
    out = []
    for m in messages:
        role = m.role if m.role in ("user", "assistant") else "assistant"
        content = safe_markdown(m.content) if m.role != "system" else f"*[system]* {safe_markdown(m.content)}"
        if m.display is not None and m.role == "assistant":
            content = display_html.chat_content(m.display)
        out.append({"role": role, "content": content})
    return out


def versions_value(messages: list[MessageRecord]) -> str:
    """Each message's "active/count/role" (role ``u`` or ``a`` as shown), with "/s" after it when the
    shown version was generated from a shifted KV cache, comma-separated: the value of the page
    script's component (``ChatComponents.tools``), which draws ``<`` ``n/m`` ``>``, the context-shift
    marker and the last reply's buttons from it."""
    return ",".join(f"{m.active_version + 1}/{m.version_count}/{'u' if m.role == 'user' else 'a'}"
                    + ("/s" if m.context_shifted else "") for m in messages)


def stats_line(seconds: float, first_token: float | None, completion_tokens: int, prompt_tokens: int,
               context_length: int | None) -> str:
    """The quiet line after a reply, as text-generation-webui prints it: time, time to first token,
    tokens/s, tokens generated and the context used (prompt and reply) against the context size."""
    parts = [f"Output generated in {seconds:.2f} s"]
    if first_token is not None:
        parts.append(f"first token after {first_token:.2f} s")
    rate = completion_tokens / seconds if seconds > 0 else 0.0
    parts += [f"{rate:.2f} tokens/s", f"{completion_tokens} tokens"]
    used = prompt_tokens + completion_tokens
    if prompt_tokens:
        parts.append(f"context {used}/{context_length}" if context_length else f"context {used}")
    return " · ".join(parts)


def token_count_line(tokens: int | None, context_length: int | None) -> str:
    """The counter under the message box: the chat and the typed message against the context size."""
    if tokens is None:
        return ""
    return f"{tokens} / {context_length} tokens" if context_length else f"{tokens} tokens"


def history(ctx: AppContext, conv_id: int | None, user_id: int | None) -> list[dict[str, Any]]:
    return [] if conv_id is None else display(ctx.repo.messages(conv_id, user_id))


def chat_choices(ctx: AppContext, user_id: int | None) -> list[tuple[str, int]]:
    return [(c.title, c.id) for c in ctx.repo.list_conversations(user_id)]


def avatars_dir(ctx: AppContext) -> Path:
    return ctx.settings.data_dir / "avatars"


def avatar_file(ctx: AppContext, png: bytes | None) -> str | None:
    """A served file for an avatar picture (content-addressed, written once)."""
    if not png:
        return None
    path = avatars_dir(ctx) / f"{hashlib.sha256(png).hexdigest()[:32]}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(png)
        tmp.replace(path)
    return str(path)


def avatar_images(ctx: AppContext, conv: ConversationRecord | None,
                  user_id: int | None) -> tuple[str | None, str | None]:
    """(user avatar, character avatar) for a chat: the persona's and the character's pictures."""
    if conv is None:
        return (None, None)
    persona = ctx.personas.get(conv.settings.get("persona") or "", user_id) if ctx.personas else None
    char = ctx.characters.get(conv.character)
    return (avatar_file(ctx, persona.avatar if persona else None), avatar_file(ctx, char.avatar_png))


def persona_choices(ctx: AppContext, user_id: int | None) -> list[str]:
    return [NO_PERSONA] + ([p.name for p in ctx.personas.list(user_id)] if ctx.personas else [])


def template_choices(ctx: AppContext) -> list[tuple[str, str]]:
    return [(MODEL_TEMPLATE_LABEL, MODEL_TEMPLATE)] + [(n, n) for n in (ctx.templates.names() if ctx.templates else [])]


def greeting_choices(ctx: AppContext, character: str) -> list[tuple[str, int]]:
    greetings = ctx.characters.get(character).greetings()
    return [(f"{i + 1}: {' '.join(g.split())[:60]}", i) for i, g in enumerate(greetings)]
