"""Training data from the chat history, on a real SQLite database filled through ChatService:
the chat filters, the rows as the chat renders them, and the preference pairs regenerations imply."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from webui.chat.characters import CharacterLibrary
from webui.chat.service import ChatService
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.storage.repository import ChatRepository
from webui.training import chat_data
from webui.training.chat_data import chats_dataset, list_chats, preference_dataset
from webui.training.types import ChatSelection

TOKENS = ["Alpha", " beta", " gamma", " delta"]  # reply k words long: max_new_tokens=k


def reply(chat: ChatService, conv_id: int, text: str, words: int) -> str:
    return list(chat.send(conv_id, text, GenerationParams(max_new_tokens=words)))[-1].text


def regenerate(chat: ChatService, conv_id: int, words: int) -> str:
    return list(chat.regenerate(conv_id, GenerationParams(max_new_tokens=words)))[-1].text


def plain(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def trained(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "assistant" and m.get("train", True)]


@pytest.fixture
def chat(chat_service) -> ChatService:  # type: ignore[no-untyped-def]
    return chat_service(tokens=TOKENS)


def test_a_whole_chat_is_one_row_as_its_turns_render_it(chat: ChatService, repo: ChatRepository,
                                                        characters: CharacterLibrary) -> None:
    conv = chat.new_conversation("Assistant")
    reply(chat, conv.id, "What is first?", 2)
    reply(chat, conv.id, "And then?", 3)
    repo.add_message(conv.id, "user", "A question nobody answered")  # a trailing user message: left out

    data = chats_dataset(repo, characters, ChatSelection())

    assert data.kind == "sft" and data.format == "Chats" and len(data.rows) == 1
    messages = data.rows[0]["messages"]
    history = [(m.role, m.content) for m in repo.messages(conv.id)][:-2]  # up to the last reply's user turn
    expected = chat.chat_prompt(repo.get_conversation(conv.id), history, GenerationParams()).messages
    assert plain(messages[:-1]) == expected  # the chat's own prompt: character context, then the turns
    assert messages[0]["role"] == "system" and "a helpful, honest and concise AI assistant" in messages[0]["content"]
    assert messages[-1] == {"role": "assistant", "content": "Alpha beta gamma"}
    assert messages[1] == {"role": "assistant", "content": "Hello! How can I help you today?", "train": False}
    assert trained(messages) == ["Alpha beta", "Alpha beta gamma"]  # the greeting is context, not trained
    assert "A question nobody answered" not in str(messages)
    assert data.sha256 == chats_dataset(repo, characters, ChatSelection()).sha256


def test_filters_choose_the_chats(chat: ChatService, repo: ChatRepository, characters: CharacterLibrary) -> None:
    mine = chat.new_conversation("Assistant")
    reply(chat, mine.id, "Tell me about otters", 1)
    other = repo.create_conversation(title="Bob chat", character="Bob")
    repo.add_message(other.id, "user", "Hello Bob")
    repo.add_message(other.id, "assistant", "Bob here")
    old = repo.import_conversation(
        {"title": "Old", "character": "Assistant", "created_at": "2020-05-01T09:00:00",
         "updated_at": "2020-05-01T10:00:00",
         "messages": [{"role": "user", "versions": ["old question"]},
                      {"role": "assistant", "versions": ["old answer"]}]},
        keep_dates=True,
    )
    alice = repo.ensure_user("alice")
    hers = repo.create_conversation(title="Alice chat", character="Assistant", user_id=alice)
    repo.add_message(hers.id, "user", "Alice asks", alice)
    repo.add_message(hers.id, "assistant", "Alice hears", alice)

    def ids(**filters) -> list[int]:  # type: ignore[no-untyped-def]
        return sorted(c.id for c in list_chats(repo, ChatSelection(**filters)))

    assert ids() == sorted([mine.id, other.id, old.id])  # alice's chat is not the account-less history
    assert ids(user_id=alice) == [hers.id]
    assert ids(character="Bob") == [other.id]
    assert ids(search="OTTERS") == [mine.id]
    assert ids(until="2020-05-01") == [old.id]  # inclusive: the whole day
    assert ids(since="2020-05-02") == sorted([mine.id, other.id])
    assert ids(since="2020-05-01", until="2020-05-01") == [old.id]
    assert ids(conversation_ids=[other.id, hers.id]) == [other.id]  # hers is not this user's
    summary = next(c for c in list_chats(repo, ChatSelection()) if c.id == mine.id)
    assert (summary.title, summary.character, summary.n_messages) == ("Tell me about otters", "Assistant", 3)

    rows = chats_dataset(repo, characters, ChatSelection(character="Bob")).rows
    assert [trained(r["messages"]) for r in rows] == [["Bob here"]]
    rows = chats_dataset(repo, characters, ChatSelection(user_id=alice)).rows
    assert [trained(r["messages"]) for r in rows] == [["Alice hears"]]
    with pytest.raises(UserFacingError, match="No chat replies to train on.*since 2030-01-01"):
        chats_dataset(repo, characters, ChatSelection(since="2030-01-01"))
    with pytest.raises(UserFacingError, match="not an ISO date"):
        list_chats(repo, ChatSelection(since="yesterday"))


def test_marked_messages_are_rows_with_the_chat_before_them_as_context(
    chat: ChatService, repo: ChatRepository, characters: CharacterLibrary
) -> None:
    conv = chat.new_conversation("Assistant")
    reply(chat, conv.id, "one", 1)
    reply(chat, conv.id, "two", 2)
    reply(chat, conv.id, "three", 3)
    msgs = repo.messages(conv.id)
    second = msgs[4]
    assert (second.role, second.content) == ("assistant", "Alpha beta")

    data = chats_dataset(repo, characters, ChatSelection(message_ids=[second.id]))

    assert data.format == "Chat replies" and len(data.rows) == 1
    messages = data.rows[0]["messages"]
    assert messages[-1] == {"role": "assistant", "content": "Alpha beta"}
    assert trained(messages) == ["Alpha beta"]  # the earlier replies are context only
    assert [m["content"] for m in messages if m["role"] == "user"] == ["one", "two"]
    with pytest.raises(UserFacingError, match=f"Message {msgs[3].id} is the user's"):
        chats_dataset(repo, characters, ChatSelection(message_ids=[msgs[3].id]))
    with pytest.raises(UserFacingError, match="Message 999999 not found"):
        chats_dataset(repo, characters, ChatSelection(message_ids=[999999]))


def test_preference_pairs_are_the_ones_the_history_implies(
    chat: ChatService, repo: ChatRepository, characters: CharacterLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat_data, "EDIT_MARGIN", timedelta(milliseconds=50))
    # 1. A regenerated reply the chat went on from: the shown version against the one moved away from.
    went_on = chat.new_conversation("Assistant")
    reply(chat, went_on.id, "Pick a word", 1)  # v0 "Alpha"
    assert regenerate(chat, went_on.id, 2) == "Alpha beta"  # v1, shown
    reply(chat, went_on.id, "Thanks", 3)
    # ... and its last reply regenerated, nothing after it, not edited: no pair.
    regenerate(chat, went_on.id, 4)

    # 2. The user went back to the first version and edited it (nothing after it): kept.
    edited = chat.new_conversation("Assistant")
    reply(chat, edited.id, "Say something", 1)
    regenerate(chat, edited.id, 2)
    regenerate(chat, edited.id, 3)
    last = repo.messages(edited.id)[-1]
    repo.set_active_version(last.id, 0)
    time.sleep(0.1)
    repo.edit_message(last.id, "My own better answer")

    # 3. Regenerated, last, untouched: no pair.
    untouched = chat.new_conversation("Assistant")
    reply(chat, untouched.id, "Hi", 1)
    regenerate(chat, untouched.id, 2)

    # 4. A version cut by a crash (incomplete) is never a side of a pair.
    crashed = chat.new_conversation("Assistant")
    reply(chat, crashed.id, "Go", 1)
    regenerate(chat, crashed.id, 2)
    msg = repo.messages(crashed.id)[-1]
    partial = repo.add_version(msg.id)
    repo.update_version(partial, "Alpha be", complete=False)
    repo.set_active_version(msg.id, 1)
    reply(chat, crashed.id, "Next", 1)

    data = preference_dataset(repo, characters, ChatSelection())

    assert data.kind == "preference" and data.format == "Preferences from regenerated replies"
    pairs = [(r["prompt"][-1]["content"], r["chosen"], r["rejected"]) for r in data.rows]
    assert sorted(pairs) == sorted([
        ("Pick a word", "Alpha beta", "Alpha"),
        ("Say something", "My own better answer", "Alpha beta"),
        ("Say something", "My own better answer", "Alpha beta gamma"),
        ("Go", "Alpha beta", "Alpha"),
    ])
    row = next(r for r in data.rows if r["prompt"][-1]["content"] == "Pick a word")
    history = [(m.role, m.content) for m in repo.messages(went_on.id)][:2]
    assert row["prompt"] == chat.chat_prompt(repo.get_conversation(went_on.id), history, GenerationParams()).messages

    # Only the chosen messages' pairs; a chat whose shown version is the cut one gives none.
    picked = repo.messages(went_on.id)[2]
    marked = preference_dataset(repo, characters, ChatSelection(message_ids=[picked.id]))
    assert [(r["chosen"], r["rejected"]) for r in marked.rows] == [("Alpha beta", "Alpha")]
    only = preference_dataset(repo, characters, ChatSelection(conversation_ids=[edited.id]))
    assert {r["rejected"] for r in only.rows} == {"Alpha beta", "Alpha beta gamma"}
    repo.set_active_version(msg.id, 2)
    with pytest.raises(UserFacingError, match="No preference pairs"):
        preference_dataset(repo, characters, ChatSelection(conversation_ids=[crashed.id, untouched.id]))


def test_an_edit_right_after_a_regenerate_stopped_the_reply_is_not_taken_for_an_edit(
    chat: ChatService, repo: ChatRepository, characters: CharacterLibrary
) -> None:
    conv = chat.new_conversation("Assistant")
    reply(chat, conv.id, "Hi", 1)
    regenerate(chat, conv.id, 2)
    repo.set_active_version(repo.messages(conv.id)[-1].id, 0)
    first = repo.messages(conv.id)[-1]
    repo.update_version(first.version_id, "Alpha", complete=True)  # the stopped v0's final save, just after v1 began
    with pytest.raises(UserFacingError, match="No preference pairs"):
        preference_dataset(repo, characters, ChatSelection())


def test_a_chat_with_a_persona_renders_as_the_chat_does(make_engine, repo: ChatRepository, database_url: str,
                                                        characters: CharacterLibrary) -> None:
    from webui.storage.db import open_database
    from webui.storage.personas import PersonaRepository

    personas = PersonaRepository(open_database(database_url))
    personas.save("Rin", "A sailor from the northern isles.")
    chat = ChatService(make_engine(tokens=TOKENS), repo, characters, personas=personas)
    conv = chat.new_conversation("Assistant", persona="Rin")
    reply(chat, conv.id, "Where do I live?", 2)

    messages = chats_dataset(repo, characters, ChatSelection(), personas=personas).rows[0]["messages"]

    history = [(m.role, m.content) for m in repo.messages(conv.id)][:-1]
    assert plain(messages[:-1]) == chat.chat_prompt(repo.get_conversation(conv.id), history,
                                                    GenerationParams()).messages
    assert "Rin's persona: A sailor from the northern isles." in messages[0]["content"]
    assert "Rin's questions" in messages[0]["content"]  # {{user}} is the persona's name


def test_replies_cut_by_a_crash_or_empty_are_context_not_trained(repo: ChatRepository,
                                                                 characters: CharacterLibrary) -> None:
    conv = repo.create_conversation(title="Crashy", character="Assistant", settings={"mode": "instruct"})
    ids = repo.start_turn(conv.id, "first")
    repo.update_version(ids.reply_version_id, "half a rep", complete=False)  # the app died while streaming
    repo.add_message(conv.id, "user", "second")
    repo.add_message(conv.id, "assistant", "A full reply.")
    repo.add_message(conv.id, "user", "third")
    repo.add_message(conv.id, "assistant", "")

    messages = chats_dataset(repo, characters, ChatSelection()).rows[0]["messages"]

    assert messages[0] == {"role": "user", "content": "first"}  # instruct mode: no character context
    assert {"role": "assistant", "content": "half a rep", "train": False} in messages
    assert trained(messages) == ["A full reply."]
    empty = repo.messages(conv.id)[-1]
    with pytest.raises(UserFacingError, match="No chat replies to train on"):
        chats_dataset(repo, characters, ChatSelection(message_ids=[empty.id]))
