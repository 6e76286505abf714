"""Building the exact prompt text a model sees for one turn, in each chat mode.

One function, :func:`build_prompt`, serves every caller (a chat turn, regenerate, continue,
impersonate, the "show prompt" view and ``POST /v1/internal/chat-prompt``), so what is shown
is what is generated from.

Modes (names as in Oobabooga):

- ``chat``: the character's context (system prompt, lorebook, description, personality,
  scenario, persona, example dialogue) as a system message, then the history as user/assistant
  turns, rendered with the model's chat template (or a chosen instruction template).
- ``chat-instruct``: one instruction asking for the character's next line, holding the context
  and the whole transcript as ``Name: text`` lines; the reply is primed with ``Name:``.
- ``instruct``: a plain assistant: the history only (plus a system message if one is given).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from webui.chat.character import Character, substitute_macros
from webui.chat.lorebook import activate_entries, group_by_position

Message = dict[str, str]
Mode = Literal["chat", "chat-instruct", "instruct"]
MODES: tuple[Mode, ...] = ("chat", "chat-instruct", "instruct")
Goal = Literal["reply", "impersonate"]

DEFAULT_SYSTEM_PROMPT = "Write {{char}}'s next reply in a fictional chat between {{char}} and {{user}}."
DEFAULT_POST_HISTORY = ""
CHAT_INSTRUCT_COMMAND = (
    'Continue the chat dialogue below. Write a single reply for the character "{name}".\n\n{transcript}'
)
IMPERSONATE_COMMAND = (
    "Write {user}'s next message in this chat, in {user}'s voice and first person. "
    "Reply with that message only."
)


@dataclass
class ChatSetup:
    """Who is talking and how: everything besides the history that shapes the prompt."""

    character: Character
    user_name: str = "You"
    persona_description: str = ""
    mode: Mode = "chat"
    system_message: str = ""  # from an API body: replaces the system prompt (instruct) / leads it (chat)


@dataclass
class PromptResult:
    """The prompt for one generation, and how to treat what the model writes."""

    prompt: str
    messages: list[Message]
    dropped_turns: int = 0
    stops: list[str] = field(default_factory=list)
    lore_entries: int = 0


class PromptTools:
    """The model-dependent pieces: render messages to text, count tokens, the budget."""

    def __init__(
        self, format_chat: Callable[[list[Message]], str], count_tokens: Callable[[str], int], budget: int | None
    ) -> None:
        self.format_chat = format_chat
        self.count_tokens = count_tokens
        self.budget = budget  # prompt tokens allowed; None = no limit


def _sub(text: str, setup: ChatSetup) -> str:
    return substitute_macros(text, setup.character.name, setup.user_name)


def _with_original(card_value: str, default: str) -> str:
    """A card's system_prompt/post_history_instructions replaces the default; ``{{original}}`` is the default."""
    if not card_value.strip():
        return default
    return re.sub(r"\{\{\s*original\s*\}\}", lambda _m: default, card_value, flags=re.IGNORECASE)


def example_dialogue(mes_example: str) -> str:
    """``mes_example`` blocks (separated by ``<START>``) as plain dialogue text."""
    blocks = [b.strip() for b in re.split(r"<START>", mes_example, flags=re.IGNORECASE) if b.strip()]
    return "\n\n".join(blocks)


def character_context(setup: ChatSetup, history: Sequence[str], tools: PromptTools | None = None) -> tuple[str, int]:
    """The character's context text (macros substituted) and how many lorebook entries it holds.

    ``creator_notes`` never enter a prompt.
    """
    char = setup.character
    lore_before: list[str] = []
    lore_after: list[str] = []
    if char.character_book and char.character_book.entries:
        count = tools.count_tokens if tools else (lambda t: len(t.split()))
        groups = group_by_position(activate_entries(char.character_book, list(history), count_tokens=count))
        lore_before = [e.content for e in groups["before_char"]]
        lore_after = [e.content for e in groups["after_char"]]
    parts = [
        setup.system_message,
        _with_original(char.system_prompt, DEFAULT_SYSTEM_PROMPT),
        *lore_before,
        char.description,
    ]
    if char.personality.strip():
        parts.append(f"{char.name}'s personality: {char.personality}")
    if char.scenario.strip():
        parts.append(f"Scenario: {char.scenario}")
    parts.extend(lore_after)
    if setup.persona_description.strip():
        parts.append(f"{setup.user_name}'s persona: {setup.persona_description}")
    if char.mes_example.strip():
        parts.append("Example dialogue:\n" + example_dialogue(char.mes_example))
    text = "\n\n".join(p.strip() for p in parts if p and p.strip())
    return _sub(text, setup), len(lore_before) + len(lore_after)


def _post_history(setup: ChatSetup) -> str:
    return _sub(_with_original(setup.character.post_history_instructions, DEFAULT_POST_HISTORY), setup).strip()


def _render(
    setup: ChatSetup, context: str, turns: list[Message], goal: Goal, prefix: str, tools: PromptTools
) -> tuple[str, list[Message]]:
    """Prompt text and the message list behind it for these turns."""
    char, user = setup.character.name, setup.user_name
    if setup.mode == "chat-instruct":
        speaker = user if goal == "impersonate" else char
        names = {"user": user, "assistant": char}
        lines = [context] if context else []
        lines += [f"{names.get(t['role'], t['role'])}: {t['content']}" for t in turns]
        post = _post_history(setup)
        if post:
            lines.append(post)
        messages = [
            {"role": "user", "content": CHAT_INSTRUCT_COMMAND.format(name=speaker, transcript="\n".join(lines))}
        ]
        return tools.format_chat(messages) + f"{speaker}:" + (f" {prefix}" if prefix else ""), messages
    messages: list[Message] = [{"role": "system", "content": context}] if context else []
    turns = [dict(t) for t in turns]
    extra: list[str] = []
    if setup.mode == "chat":
        extra.append(_post_history(setup))
    if goal == "impersonate":
        extra.append(IMPERSONATE_COMMAND.format(user=user))
    extra = [e for e in extra if e]
    if extra:
        if turns and turns[-1]["role"] == "user":
            turns[-1]["content"] = "\n\n".join([turns[-1]["content"], *extra])
        else:
            turns.append({"role": "user", "content": "\n\n".join(extra)})
    messages += turns
    return tools.format_chat(messages) + prefix, messages


def build_prompt(
    setup: ChatSetup,
    history: Sequence[tuple[str, str]],
    tools: PromptTools,
    *,
    goal: Goal = "reply",
    prefix: str = "",
) -> PromptResult:
    """The prompt for the next reply after ``history`` (oldest first).

    ``prefix`` is text the reply already starts with (Continue, "start reply with"); the model
    writes on from it. While the prompt exceeds ``tools.budget`` the oldest turns are dropped
    (the context and the last turn always stay; the kept history never opens with a reply).
    """
    if setup.mode == "instruct":
        context = _sub(setup.system_message, setup).strip()
        lore = 0
    else:
        context, lore = character_context(setup, [c for _r, c in history], tools)
    turns: list[Message] = [{"role": r, "content": c} for r, c in history]

    def attempt(dropped: int) -> tuple[str, list[Message], int]:
        kept = turns[dropped:]
        while dropped and len(kept) > 1 and kept[0]["role"] == "assistant":
            kept = kept[1:]
        prompt, messages = _render(setup, context, kept, goal, prefix, tools)
        return prompt, messages, len(turns) - len(kept)

    def fits(dropped: int) -> bool:
        return tools.count_tokens(attempt(dropped)[0]) <= tools.budget  # type: ignore[operator]

    dropped = 0
    if tools.budget is not None and turns and not fits(0):
        lo, hi = 1, max(len(turns) - 1, 1)  # the fewest dropped turns that fit (binary search)
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(mid):
                hi = mid
            else:
                lo = mid + 1
        dropped = lo
    prompt, messages, n_dropped = attempt(dropped)
    stops = [] if setup.mode == "instruct" else [f"\n{setup.user_name}:", f"\n{setup.character.name}:"]
    return PromptResult(prompt, messages, n_dropped, stops, lore)
