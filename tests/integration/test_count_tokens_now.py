"""Engine.count_tokens_now (the chat's token counter) on real models: it counts what count_tokens
counts, and it answers while a generation holds the inference worker instead of queueing behind it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.real_engine import loaded_engine
from webui.engine.engine import Engine
from webui.generation.params import GenerationParams

TEXT = "The quick brown fox jumps over the lazy dog. Ünïcödé and emoji \U0001f600 too."


@pytest.fixture(scope="module", params=["llama.cpp", "transformers"])
def engine(request: pytest.FixtureRequest, embedded_gguf: Path, tiny_llama_dir: Path) -> Iterator[Engine]:
    if request.param == "llama.cpp":
        yield from loaded_engine(embedded_gguf, "llama.cpp", n_ctx=1024, threads=1)
    else:
        yield from loaded_engine(tiny_llama_dir, "transformers")


def test_counts_like_the_worker(engine: Engine) -> None:
    assert engine.count_tokens_now(TEXT) == engine.count_tokens(TEXT) > 5
    assert engine.count_tokens_now("") == engine.count_tokens("") == 0


def test_answers_while_a_generation_holds_the_worker(engine: Engine) -> None:
    params = GenerationParams(max_new_tokens=400, temperature=1.0, ban_eos_token=True)
    handle = engine.generate("Once upon a time", params)
    try:
        next(iter(handle))  # the worker is generating now
        started = time.perf_counter()
        counted = [engine.count_tokens_now(TEXT) for _ in range(20)]
        took = time.perf_counter() - started
        assert not handle.done.is_set(), "the generation ended before the counts: make it longer"
    finally:
        handle.cancel()
        handle.text()
    assert counted == [engine.count_tokens(TEXT)] * 20
    assert took < 2.0, f"20 counts took {took:.2f} s: they waited for the worker"


def test_no_model_no_count() -> None:
    engine = Engine()
    try:
        assert engine.count_tokens_now("hello") is None
    finally:
        engine.shutdown()
