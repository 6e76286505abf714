import time

from webui.chat import service as service_mod
from webui.chat.character import Character
from webui.chat.prompt import ChatSetup, PromptTools, build_prompt
from webui.generation.params import GenerationParams


def test_send_streams_and_persists_the_turn(chat_service, repo) -> None:
    chat = chat_service(tokens=["Hi", " you"])
    conv = chat.new_conversation("Assistant")
    progress = list(chat.send(conv.id, "Hello bot", GenerationParams()))
    assert progress[-1].done and progress[-1].text == "Hi you"
    msgs = repo.messages(conv.id)
    assert [(m.role, m.content) for m in msgs] == [
        ("assistant", "Hello! How can I help you today?"),
        ("user", "Hello bot"),
        ("assistant", "Hi you"),
    ]
    assert all(m.complete for m in msgs)
    assert repo.get_conversation(conv.id).title == "Hello bot"


def test_prompt_has_character_system_message_and_history(chat_service) -> None:
    chat = chat_service(tokens=["ok"])
    conv = chat.new_conversation("Assistant")
    list(chat.send(conv.id, "first", GenerationParams()))
    list(chat.send(conv.id, "second", GenerationParams()))
    prompt = chat.engine.model.prompts[-1]
    assert prompt.startswith("<system>The following is a conversation with Assistant")
    assert "{{char}}" not in prompt and "You's questions" in prompt
    assert prompt.index("<user>first") < prompt.index("<assistant>ok") < prompt.index("<user>second")
    assert prompt.endswith("<user>second\n<assistant>")


def test_reply_is_flushed_while_streaming(chat_service, repo, monkeypatch) -> None:
    monkeypatch.setattr(service_mod, "FLUSH_SECONDS", 0.05)
    chat = chat_service(tokens=[f"w{i} " for i in range(40)], delay=0.01)
    conv = chat.new_conversation("Assistant")
    stream = chat.send(conv.id, "go", GenerationParams())
    seen_partial = None
    for p in stream:
        if not p.done and len(p.text) > 30:
            stored = repo.messages(conv.id)[-1]
            if stored.content:
                seen_partial = stored
                break
    assert seen_partial is not None and not seen_partial.complete
    assert 0 < len(seen_partial.content) < len("".join(f"w{i} " for i in range(40)))
    stream.close()  # consumer goes away: the model is stopped and the text kept
    final = repo.messages(conv.id)[-1]
    assert final.complete and final.content.startswith("w0 w1")


def test_stop_keeps_the_partial_reply(chat_service, repo) -> None:
    chat = chat_service(tokens=[f"t{i} " for i in range(300)], delay=0.005)
    conv = chat.new_conversation("Assistant")
    last = None
    for p in chat.send(conv.id, "go", GenerationParams(max_new_tokens=300), session_key="s1"):
        last = p
        if not p.done and len(p.text) > 20:
            assert chat.stop("s1")
    assert last.done and last.finish_reason == "cancelled"
    assert repo.messages(conv.id)[-1].content == last.text
    assert 20 < len(last.text) < len("".join(f"t{i} " for i in range(300)))
    assert not chat.stop("s1")


def test_min_interval_coalesces_updates(chat_service) -> None:
    chat = chat_service(tokens=["x"] * 60, delay=0.002)
    conv = chat.new_conversation("Assistant")
    start = time.monotonic()
    updates = list(chat.send(conv.id, "go", GenerationParams(), min_interval=0.05))
    elapsed = time.monotonic() - start
    assert updates[-1].text == "x" * 60
    assert len(updates) <= elapsed / 0.05 + 3
    assert len(updates) < 60


def test_history_that_does_not_fit_drops_oldest_turns() -> None:
    char = Character(name="Bot", system_prompt="You talk to {{user}}.")
    history = [
        ("user", "one two three"), ("assistant", "four five"), ("user", "six seven"), ("assistant", "eight"),
        ("user", "nine"),
    ]

    def render(messages) -> str:
        return "".join(f"<{m['role']}>{m['content']}\n" for m in messages)

    tools = PromptTools(render, lambda text: len(text.split()), budget=8)
    built = build_prompt(ChatSetup(char, user_name="Ann"), history, tools)
    assert built.messages[0] == {"role": "system", "content": "You talk to Ann."}
    assert built.messages[-1] == {"role": "user", "content": "nine"}
    assert built.messages[1]["role"] == "user"  # never start history with an orphan reply
    assert len(built.prompt.split()) <= 8
    assert built.dropped_turns == 2  # the fewest that fit: keeping "four five" would need 10 words


def test_long_chat_is_truncated_end_to_end(chat_service) -> None:
    chat = chat_service(tokens=["ok"], context_length=600)
    conv = chat.new_conversation("Assistant")
    for i in range(30):
        chat.repo.add_message(conv.id, "user" if i % 2 == 0 else "assistant", f"message number {i} " + "word " * 20)
    last = list(chat.send(conv.id, "latest question", GenerationParams(max_new_tokens=100)))[-1]
    assert last.dropped_turns > 0
    prompt = chat.engine.model.prompts[-1]
    assert (
        "latest question" in prompt
        and "message number 0 " not in prompt
        and "The following is a conversation" in prompt
    )
