"""Training data from the chat history: conversations for SFT, and preference pairs from the
versions Regenerate kept.

Each row is built as the chat's turns render it: ``webui.chat.prompt.build_prompt`` gives the
messages a reply was generated from (the character's context as the system message, the turns,
the card's post-history instructions in the last user turn), and the reply follows. A chat in
"chat-instruct" mode is rendered as in "chat" mode (the one-instruction transcript cannot hold
several replies); "instruct" chats have no character context. Personas: the chat's persona name
(and description when ``personas`` is given) as in the chat. The base model's chat template is
applied later (``webui.training.render``).

SFT rows (``chats_dataset``), from the ACTIVE version of every message:

- whole chats (``selection.message_ids`` None): one row per chat, ending at its last assistant
  reply (a trailing user message with no reply is left out). Trained: every assistant reply,
  except the greeting (assistant messages before the first user message: the card wrote them),
  an empty reply, and a reply whose version is incomplete (a crash cut it while streaming):
  those stay as context, marked ``"train": False``. A chat with no trained reply gives no row.
- ``message_ids``: one row per chosen assistant message: the chat before it as context (not
  trained), the message trained.

Preference pairs (``preference_dataset``). Regenerate adds a version to the last reply and shows
it; earlier versions are kept, and the user may switch back to one, edit it, or go on chatting.
For each assistant message with at least 2 versions:

- chosen: its ACTIVE version, used only if it is complete and the user kept it: a later message
  exists in the chat (the chat went on from it), or the version was edited (see below);
- rejected: every OTHER complete, non-blank version whose text differs from the chosen one: one
  pair per rejected version;
- prompt: the messages the reply follows (active versions of the earlier messages), rendered as
  above.

"Edited": the schema keeps no edit flag, only each version's ``created_at`` / ``updated_at``. A
version is written while it streams and never again unless it is edited (or continued), and a
regenerate creates a newer version; so a version changed more than :data:`EDIT_MARGIN` after a
newer version of the same message was created was edited (or continued) after the user had
moved on, and then returned to it. The margin leaves out the final save of a reply that the
Regenerate itself stopped. An edit of the NEWEST version cannot be told from its generation
without a later message, so that case gives no pair.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from webui.chat.character import Character
from webui.chat.characters import DEFAULT_CHARACTER, CharacterLibrary
from webui.chat.prompt import ChatSetup, PromptTools, build_prompt
from webui.errors import UserFacingError
from webui.storage.personas import PersonaRepository
from webui.storage.repository import ChatRepository
from webui.storage.training_queries import ChatHistory, ChatSummary, MessageRow, TrainingQueries, VersionRow
from webui.training.data_formats import make_dataset
from webui.training.types import ChatSelection, Dataset

__all__ = ["ChatSummary", "chats_dataset", "list_chats", "preference_dataset", "EDIT_MARGIN"]

EDIT_MARGIN = timedelta(seconds=2)
CHATS_FORMAT = "Chats"
MESSAGES_FORMAT = "Chat replies"
PREFERENCE_FORMAT = "Preferences from regenerated replies"


def list_chats(repo: ChatRepository, selection: ChatSelection) -> list[ChatSummary]:
    """The chats the selection's filters match (newest activity first), for the Training tab's picker."""
    return TrainingQueries.of(repo).chats(selection)


def chats_dataset(
    repo: ChatRepository,
    characters: CharacterLibrary | None,
    selection: ChatSelection,
    *,
    personas: PersonaRepository | None = None,
    user_name: str = "You",
) -> Dataset:
    """SFT rows (``{"messages"}``) from the selected chats; see the module docstring."""
    queries = TrainingQueries.of(repo)
    rows: list[dict[str, Any]] = []
    if selection.message_ids is not None:
        for chat, message in _chosen_messages(queries, selection):
            if message.role != "assistant":
                raise UserFacingError(f"Message {message.id} is the user's; choose assistant replies to train on.")
            if not message.active.content.strip():
                continue  # an empty reply (its generation failed) teaches nothing
            before = [m for m in chat.messages if m.position < message.position]
            context = _context(chat, before, selection.user_id, characters, personas, user_name)
            rows.append({"messages": [*context, {"role": "assistant", "content": message.active.content}]})
        fmt = MESSAGES_FORMAT
    else:
        for summary in queries.chats(selection):
            row = _chat_row(queries.history(summary.id, selection.user_id), selection, characters, personas, user_name)
            if row is not None:
                rows.append(row)
        fmt = CHATS_FORMAT
    if not rows:
        raise UserFacingError(f"No chat replies to train on: {describe(selection)} matches no chat with a reply.")
    return make_dataset("sft", fmt, rows, describe(selection))


def preference_dataset(
    repo: ChatRepository,
    characters: CharacterLibrary | None,
    selection: ChatSelection,
    *,
    personas: PersonaRepository | None = None,
    user_name: str = "You",
) -> Dataset:
    """Preference rows (``{"prompt", "chosen", "rejected"}``) from regenerated replies; see the module docstring."""
    queries = TrainingQueries.of(repo)
    if selection.message_ids is not None:
        chosen = _chosen_messages(queries, selection)
    else:
        chosen = []
        for summary in queries.chats(selection):
            chat = queries.history(summary.id, selection.user_id)
            chosen.extend((chat, m) for m in chat.messages)
    rows: list[dict[str, Any]] = []
    for chat, message in chosen:
        pairs = preference_pairs(chat, message)
        if not pairs:
            continue
        before = [m for m in chat.messages if m.position < message.position]
        prompt = [_plain(m) for m in _context(chat, before, selection.user_id, characters, personas, user_name)]
        rows.extend({"prompt": prompt, "chosen": kept.content, "rejected": other.content} for kept, other in pairs)
    if not rows:
        raise UserFacingError(
            f"No preference pairs in {describe(selection)}: a pair needs a reply regenerated at least once "
            "whose shown version the chat went on from (or that was edited after regenerating)."
        )
    return make_dataset("preference", PREFERENCE_FORMAT, rows, describe(selection) + " (regenerated replies)")


def preference_pairs(chat: ChatHistory, message: MessageRow) -> list[tuple[VersionRow, VersionRow]]:
    """(chosen, rejected) version pairs of one message, by the rule in the module docstring."""
    if message.role != "assistant" or len(message.versions) < 2:
        return []
    kept = message.active
    went_on = any(m.position > message.position for m in chat.messages)
    if not kept.complete or not kept.content.strip() or not (went_on or edited(message, kept)):
        return []
    return [
        (kept, v)
        for v in message.versions
        if v.idx != kept.idx and v.complete and v.content.strip() and v.content != kept.content
    ]


def edited(message: MessageRow, version: VersionRow) -> bool:
    """Whether ``version`` was changed after a newer version of the message was created."""
    return any(
        v.idx > version.idx and version.updated_at > v.created_at + EDIT_MARGIN for v in message.versions
    )


def _chosen_messages(queries: TrainingQueries, selection: ChatSelection) -> list[tuple[ChatHistory, MessageRow]]:
    """The selection's ``message_ids`` with their chats, in chat then position order; unknown ids are an error."""
    ids = list(dict.fromkeys(selection.message_ids or []))
    owner = queries.message_chats(ids, selection.user_id)
    missing = [i for i in ids if i not in owner]
    if missing:
        raise UserFacingError(f"Message {missing[0]} not found in your chats.")
    matching = {s.id for s in queries.chats(selection)}
    out = []
    for conv_id in sorted(set(owner.values())):
        if conv_id not in matching:
            continue
        chat = queries.history(conv_id, selection.user_id)
        out.extend((chat, m) for m in chat.messages if m.id in owner)
    return out


def _chat_row(
    chat: ChatHistory,
    selection: ChatSelection,
    characters: CharacterLibrary | None,
    personas: PersonaRepository | None,
    user_name: str,
) -> dict[str, Any] | None:
    """The whole chat as one conversation (None: no reply to train)."""
    messages = list(chat.messages)
    while messages and messages[-1].role != "assistant":
        messages.pop()
    first_user = next((m.position for m in messages if m.role == "user"), None)

    def trained(m: MessageRow) -> bool:
        return (m.role == "assistant" and first_user is not None and m.position > first_user and m.active.complete
                and bool(m.active.content.strip()))

    if not messages or not any(trained(m) for m in messages):
        return None
    last = messages[-1]
    context = _context(chat, messages[:-1], selection.user_id, characters, personas, user_name, trained=trained)
    reply: dict[str, Any] = {"role": "assistant", "content": last.active.content}
    if not trained(last):
        reply["train"] = False
    return {"messages": [*context, reply]}


def _context(
    chat: ChatHistory,
    before: list[MessageRow],
    user_id: int | None,
    characters: CharacterLibrary | None,
    personas: PersonaRepository | None,
    user_name: str,
    *,
    trained: Any = None,
) -> list[dict[str, Any]]:
    """The messages a reply after ``before`` was generated from, as ``build_prompt`` makes them.

    Assistant messages in ``before`` are context (``"train": False``) unless ``trained(message)``.
    """
    setup = _setup(chat, user_id, characters, personas, user_name)
    history = [(m.role, m.active.content) for m in before]
    tools = PromptTools(lambda _messages: "", lambda text: len(text.split()), None)  # no budget: nothing dropped
    messages = [dict(m) for m in build_prompt(setup, history, tools).messages]
    # build_prompt returns [context?] + the turns (+ a user message holding the post-history
    # instructions when the turns do not end with the user's): find where the turns start.
    appended = int(bool(messages) and messages[-1]["role"] == "user" and (not history or history[-1][0] != "user"))
    start = len(messages) - appended - len(history)
    for m, turn in zip(before, messages[start : start + len(history)]):
        if m.role == "assistant" and not (trained is not None and trained(m)):
            turn["train"] = False
    return messages


def _setup(
    chat: ChatHistory,
    user_id: int | None,
    characters: CharacterLibrary | None,
    personas: PersonaRepository | None,
    user_name: str,
) -> ChatSetup:
    """The chat's character, persona and mode, as ``ChatService.setup_for`` makes them."""
    s = chat.settings
    name = chat.character or DEFAULT_CHARACTER
    character = characters.get(name) if characters is not None else Character(name=name)
    persona = s.get("persona") if isinstance(s.get("persona"), str) else None
    record = personas.get(persona, user_id) if personas is not None and persona else None
    mode = s.get("mode") or "chat"
    return ChatSetup(
        character=character,
        user_name=record.name if record else user_name,
        persona_description=record.description if record else "",
        mode="instruct" if mode == "instruct" else "chat",
    )


def _plain(message: dict[str, Any]) -> dict[str, str]:
    return {"role": message["role"], "content": message["content"]}


def describe(selection: ChatSelection) -> str:
    """The selection in words: the Dataset's source, recorded in the adapter's metadata."""
    parts = []
    if selection.conversation_ids is not None:
        parts.append(f"chats {', '.join(map(str, selection.conversation_ids))}")
    if selection.message_ids is not None:
        parts.append(f"messages {', '.join(map(str, selection.message_ids))}")
    if selection.character:
        parts.append(f"character {selection.character!r}")
    if selection.search:
        parts.append(f"containing {selection.search!r}")
    if selection.since:
        parts.append(f"since {selection.since}")
    if selection.until:
        parts.append(f"until {selection.until}")
    owner = f" of user {selection.user_id}" if selection.user_id is not None else ""
    return f"chat history{owner}" + (f" ({'; '.join(parts)})" if parts else " (all chats)")
