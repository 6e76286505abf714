"""A reply computed from a shifted KV cache says so (issue 12): in the engine's stats, in the stored
reply and in the chat's versions value the page script draws the marker from; a reply read exactly
(a short chat, or the context read again) does not. Real embedded GGUF, real database."""

from __future__ import annotations

from pathlib import Path

import pytest

from webui.chat.characters import CharacterLibrary
from webui.chat.reply_stream import ReplyProgress
from webui.chat.service import ChatService
from webui.engine.engine import Engine
from webui.engine.llama_context import PromptStates, load_prompt
from webui.engine.protocol import ModelSpec
from webui.generation.params import GenerationParams
from webui.storage.repository import ChatRepository
from webui.ui.chat_view import versions_value

GREEDY = GenerationParams(temperature=0, max_new_tokens=8)
N_CTX = 256  # prompt budget 256 - 8 tokens: 12 turns of history overflow it; a multiple of 256,
# as llama.cpp pads the context to one


@pytest.fixture(scope="module")
def engine(embedded_gguf: Path):  # type: ignore[no-untyped-def]
    engine = Engine()
    engine.load(ModelSpec(str(embedded_gguf), "llama.cpp", {"n_ctx": N_CTX, "prompt_cache_mb": 64}))
    yield engine
    engine.shutdown()


def reply(service: ChatService, conv_id: int, text: str) -> ReplyProgress:
    *_, done = service.send(conv_id, text, GREEDY)
    assert done.done and done.finish_reason in ("stop", "length")
    return done


def fill(repo: ChatRepository, conv_id: int, turns: int) -> None:
    for i in range(turns):
        repo.add_message(conv_id, "user", f"Tell me about harbour {i} and its old stone pier.")
        repo.add_message(conv_id, "assistant", f"Harbour {i} has a stone pier, {i + 2} boats and a red lamp.")


def test_a_reply_at_the_context_limit_is_marked_and_a_short_chats_is_not(
        engine: Engine, repo: ChatRepository, characters: CharacterLibrary) -> None:
    service = ChatService(engine, repo, characters)
    short = service.new_conversation(mode="instruct")
    assert not reply(service, short.id, "Hello there.").context_shifted
    assert not reply(service, short.id, "And how are you?").context_shifted  # the first turn's cache reused: exact

    long = service.new_conversation(mode="instruct")
    fill(repo, long.id, 12)
    first = reply(service, long.id, "Which harbour is best?")
    assert first.dropped_turns > 0 and not first.context_shifted  # read from scratch: truncated, not shifted
    # each turn adds to the chat; once it drops more old turns, the cache is shifted instead of read again
    for question in ("And which is the oldest?", "Why that one?", "Which is the newest?", "Thank you."):
        later = reply(service, long.id, question)
        if later.dropped_turns > first.dropped_turns:
            break
        assert not later.context_shifted  # the previous turn's cache reused as it was: exact
    assert later.dropped_turns > first.dropped_turns and later.context_shifted

    stored = repo.messages(long.id)
    assert stored[-1].context_shifted and not any(m.context_shifted for m in stored[:-1])
    assert not any(m.context_shifted for m in repo.messages(short.id))
    assert versions_value(stored).split(",")[-2:] == ["1/1/u", "1/1/a/s"]

    # regenerating reuses the shifted prompt's cache as it is: still an approximation, still marked
    *_, again = service.regenerate(long.id, GREEDY)
    assert again.context_shifted
    assert versions_value(repo.messages(long.id)).split(",")[-1] == "2/2/a/s"

    # an edited reply is the user's text: no mark
    repo.edit_message(stored[-1].id, "The oldest is harbour 0.")
    assert not repo.messages(long.id)[-1].context_shifted


def test_a_shifted_cache_stays_approximate_until_it_is_read_again(embedded_gguf: Path) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(str(embedded_gguf), n_ctx=1024, n_threads=2, verbose=False, seed=0)
    try:
        def tok(text: str) -> list[int]:
            return list(llm.tokenize(text.encode(), add_bos=False, special=True))

        turns = "".join(f"<|im_start|>user\nRiver {i}?<|im_end|>\n<|im_start|>assistant\nThe river {i} is "
                        f"long and has {i + 3} bridges.<|im_end|>\n" for i in range(12))
        head = "<|im_start|>system\nYou know rivers.<|im_end|>\n"
        ask = "<|im_start|>user\nWhich one?<|im_end|>\n<|im_start|>assistant\n"
        states = PromptStates(64 << 20)
        first = tok(head + turns + ask)
        assert not load_prompt(llm, first, states).approximate
        states.save(llm)
        dropped = turns.split("<|im_start|>user\n", 3)[3]  # the two oldest turns gone
        shifted = tok(head + "<|im_start|>user\n" + dropped + ask)
        report = load_prompt(llm, shifted, states)
        assert report.shifted > 0 and report.approximate
        states.save(llm)
        follow_up = shifted + tok("A long one.<|im_end|>\n" + ask)  # no shift, but the shifted cache reused
        report = load_prompt(llm, follow_up, states)
        assert report.shifted == 0 and report.reused > len(shifted) // 2 and report.approximate
        states.save(llm)
        other = tok("<|im_start|>system\nYou bake bread.<|im_end|>\n" + ask)  # another chat, read from scratch
        assert not load_prompt(llm, other, states).approximate
        states.save(llm)
        back = follow_up + tok("Yes.<|im_end|>\n" + ask)  # the shifted chat's saved state restored: still approximate
        report = load_prompt(llm, back, states)
        assert report.restored and report.approximate
        # read again from scratch (no shift, no saved state): exact, and so is its continuation
        llm.reset()
        states.clear()
        assert not load_prompt(llm, back, states, shift=False).approximate
        assert not load_prompt(llm, back + tok("Fine.<|im_end|>\n" + ask), states).approximate
    finally:
        llm.close()
