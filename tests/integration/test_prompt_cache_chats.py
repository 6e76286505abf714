"""Each chat's KV state is kept (llama.cpp): interleaved chats are not read again, a reload forgets
them, and every reply equals the one a fresh model gives (issue 12)."""

from __future__ import annotations

from pathlib import Path

from webui.engine.engine import Engine
from webui.engine.protocol import ModelSpec
from webui.generation.params import GenerationParams

GREEDY = GenerationParams(temperature=0, max_new_tokens=8)
FACTS = [f"Fact {i}: the lighthouse at cove {i} is painted in {i + 2} colours." for i in range(6)]


def chat(system: str, question: str) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": system}]
    for fact in FACTS:
        turns += [{"role": "user", "content": f"Remember this. {fact}"}, {"role": "assistant", "content": "Noted."}]
    return turns + [{"role": "user", "content": question}]


def load(embedded_gguf: Path, prompt_cache_mb: int) -> Engine:
    engine = Engine()
    engine.load(ModelSpec(str(embedded_gguf), "llama.cpp", {"n_ctx": 1024, "prompt_cache_mb": prompt_cache_mb}))
    return engine


def turn(engine: Engine, messages: list[dict[str, str]]) -> tuple[str, int, int]:
    handle = engine.generate(engine.format_chat(messages), GREEDY)
    text = handle.text()
    return text, handle.stats.cached_tokens, engine.count_tokens(engine.format_chat(messages))


def test_three_interleaved_chats_and_a_reload(embedded_gguf: Path) -> None:
    chats = [chat("You are a sailor.", "Which cove?"), chat("You are a painter.", "Which colour?"),
             chat("You are a poet.", "A line about light?")]
    engine = load(embedded_gguf, 256)
    try:
        first = [turn(engine, c) for c in chats]
        assert all(cached == 0 for _text, cached, _n in first[:1])
        follow_ups = [c + [{"role": "assistant", "content": text}, {"role": "user", "content": "Say it again."}]
                      for c, (text, _cached, _n) in zip(chats, first)]
        again = [turn(engine, c) for c in follow_ups]  # each chat comes back after the other two
        for (_t, _c, n_first), (_text, cached, _n) in zip(first, again):
            assert cached >= n_first - 1  # its whole earlier prompt came from its saved state
        engine.load(ModelSpec(str(embedded_gguf), "llama.cpp", {"n_ctx": 1024, "prompt_cache_mb": 256}))
        _text, cached, _n = turn(engine, follow_ups[0])
        assert cached == 0  # a reload starts with no saved state
    finally:
        engine.shutdown()
    fresh = load(embedded_gguf, 0)  # no prompt cache: every prompt read from scratch
    try:
        for (text, _c, _n), messages in zip(again, follow_ups):
            fresh.unload()
            fresh.load(ModelSpec(str(embedded_gguf), "llama.cpp", {"n_ctx": 1024, "prompt_cache_mb": 0}))
            assert turn(fresh, messages)[0] == text
    finally:
        fresh.shutdown()
