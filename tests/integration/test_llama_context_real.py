"""Reusing the KV cache on the real embedded GGUF: saved states (exact) and context shift (approximate)."""

from __future__ import annotations

import numpy as np
import pytest

from webui.engine.llama_context import PromptStates, load_prompt


@pytest.fixture(scope="module")
def llm(embedded_gguf):  # type: ignore[no-untyped-def]
    import llama_cpp

    model = llama_cpp.Llama(str(embedded_gguf), n_ctx=1024, n_threads=2, verbose=False, seed=0)
    yield model
    model.close()


def tok(llm, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    return list(llm.tokenize(text.encode(), add_bos=False, special=True))


def last_logits(llm) -> np.ndarray:  # type: ignore[no-untyped-def]
    import llama_cpp

    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),)).copy()


def greedy(llm, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        out.append(int(np.argmax(last_logits(llm))))
        llm.eval([out[-1]])
    return out


def fresh_greedy(llm, tokens: list[int], n: int) -> list[int]:  # type: ignore[no-untyped-def]
    llm.reset()
    load_prompt(llm, tokens, shift=False)
    return greedy(llm, n)


def history(system: str, turns: list[tuple[str, str]]) -> str:
    text = f"<|im_start|>system\n{system}<|im_end|>\n"
    for user, bot in turns:
        text += f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{bot}<|im_end|>\n"
    return text


def chat(llm, system: str, turns: list[tuple[str, str]], question: str) -> list[int]:  # type: ignore[no-untyped-def]
    return tok(llm, history(system, turns) + f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")


TURNS = [(f"Give me river fact {i}.", f"River fact {i}: the Avon has {i + 3} bridges and many otters.")
         for i in range(8)]


def test_a_saved_state_is_restored_for_its_chat_and_the_reply_is_exactly_a_fresh_one(llm) -> None:  # type: ignore[no-untyped-def]
    states = PromptStates(256 << 20)
    chat_a = chat(llm, "You are a sailor.", TURNS[:4], "Where is the sea?")
    chat_b = chat(llm, "You are a baker.", TURNS[4:], "How is bread made?")
    chat_c = chat(llm, "You are a poet.", TURNS[2:6], "Write a line.")
    for prompt in (chat_a, chat_b, chat_c):  # three chats interleaved, each saved after its turn
        llm.reset()
        load_prompt(llm, prompt, states)
        greedy(llm, 4)
        states.save(llm)
    assert len(states) == 3
    follow_up = chat_a + tok(llm, "The sea is west.<|im_end|>\n<|im_start|>user\nAnd the river?<|im_end|>\n"
                                  "<|im_start|>assistant\n")
    report = load_prompt(llm, follow_up, states)  # the live context holds chat C
    assert report.restored and report.reused >= len(chat_a)
    assert report.evaluated == len(follow_up) - report.reused
    restored = greedy(llm, 8)
    assert restored == fresh_greedy(llm, follow_up, 8)


def test_states_stay_within_their_budget(llm) -> None:  # type: ignore[no-untyped-def]
    llm.reset()
    load_prompt(llm, chat(llm, "A.", TURNS[:3], "Q?"))
    probe = PromptStates(1 << 40)
    probe.save(llm)
    one_state = next(iter(probe._cache.cache_state.values())).llama_state_size
    states = PromptStates(int(one_state * 2.5))
    for i in range(4):
        llm.reset()
        load_prompt(llm, chat(llm, f"System {i}.", TURNS[:3], "Q?"))
        states.save(llm)
    assert len(states) == 2  # least recently used out first


def test_a_context_shift_reads_only_the_new_turn_and_stays_close_to_a_fresh_read(llm) -> None:  # type: ignore[no-untyped-def]
    llm.reset()
    before = chat(llm, "You know rivers.", TURNS[:7], "Which river?")
    load_prompt(llm, before)
    greedy(llm, 4)
    after = chat(llm, "You know rivers.", TURNS[2:8], "Which bridge?")  # the two oldest turns dropped
    report = load_prompt(llm, after)
    still_cached = len(tok(llm, history("You know rivers.", TURNS[2:7])))  # turns 2-6 were read before
    assert report.shifted > 0 and report.reused >= still_cached
    assert report.evaluated == len(after) - report.reused < len(after) - still_cached + 1
    assert llm.n_tokens == len(after) and list(llm.input_ids[:len(after)]) == after
    shifted = last_logits(llm)
    llm.reset()
    load_prompt(llm, after, shift=False)
    fresh = last_logits(llm)
    # not exact (the kept tokens were computed with the dropped turns visible), but close
    assert float(shifted @ fresh / np.linalg.norm(shifted) / np.linalg.norm(fresh)) > 0.95


def test_a_chat_back_after_outgrowing_the_context_is_restored_and_shifted(llm) -> None:  # type: ignore[no-untyped-def]
    states = PromptStates(256 << 20)
    mine = chat(llm, "You know rivers.", TURNS[:7], "Which river?")
    llm.reset()
    load_prompt(llm, mine, states)
    states.save(llm)
    llm.reset()
    load_prompt(llm, chat(llm, "You bake bread.", TURNS[3:], "Which loaf?"), states)  # another chat in between
    states.save(llm)
    back = chat(llm, "You know rivers.", TURNS[2:8], "Which bridge?")  # mine again, its two oldest turns dropped
    report = load_prompt(llm, back, states)
    still_cached = len(tok(llm, history("You know rivers.", TURNS[2:7])))
    assert report.restored and report.shifted > 0 and report.reused >= still_cached
    assert list(llm.input_ids[:llm.n_tokens]) == back
