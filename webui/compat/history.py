"""text-generation-webui's history shape, for extensions written for it.

Upstream keeps ``{"internal": [[user, bot], ...], "visible": [[user, bot], ...]}``; this app keeps
one list of ``{"role", "content"}`` messages. An extension that imports upstream's ``modules``
package gets the upstream shape in the hooks that take ``history`` (``history_modifier``, and the
``history`` keyword of ``custom_generate_chat_prompt``); the others get messages.

A message pair with no user text (a greeting the chat opens with) has ``""`` as its user side; a
user message with no reply yet is the *pending* input, which upstream passes as ``user_input``
rather than in the history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Message = dict[str, str]


def split_pending(messages: Sequence[Mapping[str, str]]) -> tuple[list[Message], Message | None]:
    """The messages without a trailing user message, and that message (None when there is none)."""
    items = [dict(m) for m in messages]
    if items and items[-1].get("role") == "user":
        return items[:-1], items[-1]
    return items, None


def to_upstream(messages: Sequence[Mapping[str, str]]) -> dict[str, list[list[str]]]:
    """``{role, content}`` messages (system ones left out) as upstream's internal/visible pairs."""
    pairs: list[list[str]] = []
    for m in messages:
        role, content = m.get("role"), str(m.get("content", ""))
        if role == "user":
            pairs.append([content, ""])
        elif role == "assistant":
            if pairs and pairs[-1][1] == "" and pairs[-1][0] != "":
                pairs[-1][1] = content
            else:
                pairs.append(["", content])
    return {"internal": [list(p) for p in pairs], "visible": [list(p) for p in pairs]}


def from_upstream(history: Any) -> list[Message]:
    """Upstream's history back as messages (its ``internal`` side: what the prompt sees)."""
    if not isinstance(history, Mapping) or not isinstance(history.get("internal"), list):
        raise TypeError("history must be a dict with an 'internal' list of [user, bot] pairs")
    messages: list[Message] = []
    for pair in history["internal"]:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError("each history['internal'] item must be a [user, bot] pair")
        user, bot = (str(x) if x is not None else "" for x in pair)
        if user:
            messages.append({"role": "user", "content": user})
        if bot:
            messages.append({"role": "assistant", "content": bot})
    return messages


def is_upstream(history: Any) -> bool:
    return isinstance(history, Mapping) and "internal" in history


def history_messages(history: Any) -> list[Message]:
    """``history`` in either shape (upstream's dict, or ``{role, content}`` messages) as messages,
    system messages left out."""
    if history is None:
        return []
    if is_upstream(history):
        return from_upstream(history)
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in history if m.get("role") != "system"]
