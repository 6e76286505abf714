"""Building the message list a model sees from a character and the stored history."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from webui.chat.character import Character, substitute_macros

Message = dict[str, str]


@dataclass
class BuiltPrompt:
    messages: list[Message]
    dropped_turns: int = 0


def character_system_text(character: Character, user_name: str) -> str:
    """The character's context as one system message (macros substituted)."""
    parts = [character.system_prompt, character.description]
    if character.personality.strip():
        parts.append(f"{character.name}'s personality: {character.personality}")
    if character.scenario.strip():
        parts.append(f"Scenario: {character.scenario}")
    text = "\n\n".join(p.strip() for p in parts if p and p.strip())
    return substitute_macros(text, character.name, user_name)


def build_messages(
    character: Character,
    history: Sequence[tuple[str, str]],
    *,
    user_name: str = "You",
    fits: Callable[[list[Message]], bool] | None = None,
) -> BuiltPrompt:
    """System message from the character, then the history as user/assistant turns.

    ``fits`` says whether a candidate message list fits the context window; while it does
    not, the oldest history messages are dropped (the system message and the last message
    always stay).
    """
    system = character_system_text(character, user_name)
    head: list[Message] = [{"role": "system", "content": system}] if system else []
    turns: list[Message] = [{"role": role, "content": content} for role, content in history]
    dropped = 0
    if fits is not None:
        while len(turns) > 1 and not fits(head + turns):
            turns.pop(0)
            dropped += 1
        # Most chat templates want the first non-system turn to be the user's.
        while len(turns) > 1 and turns[0]["role"] == "assistant" and dropped:
            turns.pop(0)
            dropped += 1
    return BuiltPrompt(head + turns, dropped)
