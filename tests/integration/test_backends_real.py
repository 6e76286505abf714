"""The real loading code on real (tiny or embedded) models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.real_engine import loaded_engine
from webui.engine.engine import Engine
from webui.engine.protocol import ModelSpec
from webui.engine.worker import GenerationHandle
from webui.errors import ModelLoadError
from webui.generation.params import GenerationParams

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "What is the capital of France? Answer in one word."},
]


def reply(engine: Engine, messages: list[dict[str, str]], params: GenerationParams) -> GenerationHandle:
    """A chat reply as ChatService asks for one: the model's chat template, then generate."""
    return engine.generate(engine.format_chat(messages), params)


@pytest.fixture(scope="module")
def llama_engine(embedded_gguf: Path):
    yield from loaded_engine(embedded_gguf, "llama.cpp", n_ctx=2048)


@pytest.fixture(scope="module")
def hf_engine(tiny_llama_dir: Path):
    yield from loaded_engine(tiny_llama_dir, "transformers")


# -- llama.cpp on the embedded SmolLM2 GGUF -------------------------------------------------
def test_gguf_chat_template_comes_from_metadata(llama_engine: Engine) -> None:
    prompt = llama_engine.format_chat(MESSAGES)
    assert "<|im_start|>system\nYou are helpful.<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert llama_engine.model_info.has_own_template


def test_gguf_declares_its_special_token_ids(llama_engine: Engine) -> None:
    info = llama_engine.model_info
    assert info.eos_token_id == int(llama_engine.model._llm.token_eos()) >= 0
    assert llama_engine.tokenize("<|im_end|>") == [info.eos_token_id]  # SmolLM2's end of turn is its EOS


def test_gguf_answers_and_streams(llama_engine: Engine) -> None:
    handle = reply(llama_engine, MESSAGES, GenerationParams(temperature=0, max_new_tokens=24))
    deltas = list(handle)
    assert len(deltas) > 3
    assert "Paris" in "".join(deltas)
    assert handle.stats.prompt_tokens > 10 and handle.stats.completion_tokens >= len(deltas)


def test_gguf_greedy_is_deterministic_and_seed_reproducible(llama_engine: Engine) -> None:
    greedy = GenerationParams(temperature=0, max_new_tokens=16)
    assert reply(llama_engine, MESSAGES, greedy).text() == reply(llama_engine, MESSAGES, greedy).text()
    seeded = GenerationParams(temperature=1.5, top_p=1.0, max_new_tokens=16, seed=1234)
    assert reply(llama_engine, MESSAGES, seeded).text() == reply(llama_engine, MESSAGES, seeded).text()
    others = {reply(llama_engine, MESSAGES, seeded.model_copy(update={"seed": s})).text() for s in range(4)}
    assert len(others) > 1


def test_gguf_max_tokens_and_stop_strings(llama_engine: Engine) -> None:
    handle = reply(llama_engine, MESSAGES, GenerationParams(temperature=0, max_new_tokens=3))
    handle.text()
    assert handle.stats.finish_reason == "length" and handle.stats.completion_tokens <= 3
    full = reply(llama_engine, MESSAGES, GenerationParams(temperature=0, max_new_tokens=24)).text()
    word = full.split()[2]
    cut = reply(llama_engine, MESSAGES, GenerationParams(temperature=0, max_new_tokens=24, stop=[word])).text()
    assert cut == full[: full.index(word)]


def test_gguf_cancel(llama_engine: Engine) -> None:
    handle = reply(llama_engine, MESSAGES, GenerationParams(temperature=1.0, max_new_tokens=400))
    n = 0
    for _ in handle:
        n += 1
        if n == 3:
            handle.cancel()
    assert handle.stats.finish_reason == "cancelled" and n < 10


def test_a_context_size_between_llamas_paddings_takes_prompts_up_to_the_padded_size(embedded_gguf: Path) -> None:
    """llama.cpp pads n_ctx to a multiple of 256: asked for 384 it has 512, and a 450-token prompt must
    answer (it crashed in llama-cpp-python's eval while its buffer was sized 384)."""
    engine = Engine()
    try:
        engine.load(ModelSpec(path=str(embedded_gguf), loader="llama.cpp", options={"n_ctx": 384}))
        assert engine.model_info is not None and engine.model_info.context_length == 512
        long = " ".join(f"word{i}" for i in range(125))
        prompt = engine.format_chat([{"role": "user", "content": long}])
        assert 384 < engine.count_tokens(prompt) < 500
        handle = engine.generate(prompt, GenerationParams(temperature=0, max_new_tokens=8))
        assert handle.text() and handle.error is None
    finally:
        engine.shutdown()


def test_corrupt_gguf_is_a_clear_error(tmp_path: Path, embedded_gguf: Path) -> None:
    engine = Engine()
    try:
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(b"not a gguf at all")
        with pytest.raises(ModelLoadError, match="not a GGUF model file"):
            engine.load(ModelSpec(path=str(bad)))
        truncated = tmp_path / "truncated.gguf"
        truncated.write_bytes(embedded_gguf.read_bytes()[:4096])
        with pytest.raises(ModelLoadError, match="could not load truncated.gguf"):
            engine.load(ModelSpec(path=str(truncated)))
        with pytest.raises(ModelLoadError, match="not found"):
            engine.load(ModelSpec(path=str(tmp_path / "missing.gguf")))
    finally:
        engine.shutdown()


# -- transformers on a tiny random Llama -------------------------------------------------------
def test_hf_loads_with_template_and_generates(hf_engine: Engine) -> None:
    assert hf_engine.load_info.loader == "transformers"
    prompt = hf_engine.format_chat(MESSAGES)
    assert prompt.endswith("<|im_start|>assistant\n")
    handle = reply(hf_engine, MESSAGES, GenerationParams(temperature=0, max_new_tokens=12))
    text = handle.text()
    assert handle.stats.completion_tokens > 0 and handle.stats.prompt_tokens > 10
    assert text == reply(hf_engine, MESSAGES, GenerationParams(temperature=0, max_new_tokens=12)).text()


def test_hf_seed_reproducible(hf_engine: Engine) -> None:
    p = GenerationParams(temperature=1.0, top_p=1.0, max_new_tokens=10, seed=7)
    a = reply(hf_engine, MESSAGES, p).text()
    assert a == reply(hf_engine, MESSAGES, p).text()
    assert len({reply(hf_engine, MESSAGES, p.model_copy(update={"seed": s})).text() for s in range(4)}) > 1


def test_hf_max_tokens_and_cancel(hf_engine: Engine) -> None:
    h = reply(hf_engine, MESSAGES, GenerationParams(temperature=1.0, max_new_tokens=5))
    h.text()
    assert h.stats.finish_reason == "length" and h.stats.completion_tokens == 5
    h = reply(hf_engine, MESSAGES, GenerationParams(temperature=1.0, max_new_tokens=300, seed=3))
    n = 0
    for _ in h:
        n += 1
        if n == 2:
            h.cancel()
    assert h.stats.finish_reason == "cancelled" and h.stats.completion_tokens < 100


def test_hf_dtype_option(tiny_llama_dir: Path) -> None:
    engine = Engine()
    try:
        fp32 = engine.load(ModelSpec(path=str(tiny_llama_dir), loader="transformers", options={"dtype": "float32"}))
        bf16 = engine.load(ModelSpec(path=str(tiny_llama_dir), loader="transformers", options={"dtype": "bfloat16"}))
        assert bf16.footprint_bytes * 2 == pytest.approx(fp32.footprint_bytes, rel=0.01)
        assert reply(engine, MESSAGES, GenerationParams(temperature=0, max_new_tokens=4)).text() is not None
        with pytest.raises(ModelLoadError, match="Unknown dtype"):
            engine.load(ModelSpec(path=str(tiny_llama_dir), loader="transformers", options={"dtype": "int3"}))
    finally:
        engine.shutdown()


def test_bad_model_folders_are_clear_errors(tmp_path: Path) -> None:
    engine = Engine()
    try:
        with pytest.raises(ModelLoadError, match="no config.json"):
            engine.load(ModelSpec(path=str(tmp_path), loader="transformers"))
        (tmp_path / "config.json").write_text("{broken")
        with pytest.raises(ModelLoadError, match="not valid JSON"):
            engine.load(ModelSpec(path=str(tmp_path), loader="transformers"))
        (tmp_path / "config.json").write_text('{"model_type": "llama"}')
        with pytest.raises(ModelLoadError, match="transformers could not load"):
            engine.load(ModelSpec(path=str(tmp_path), loader="transformers"))
    finally:
        engine.shutdown()
