"""llama.cpp's own sampler chain (webui.engine.llama_samplers) on the embedded GGUF: applied to hand-made
logits it gives what the Python rules (webui.generation.penalties, logit_rules, hf_samplers) give; in a
real decode, min_tokens, banned strings, mirostat and XTC do what they say."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.real_engine import loaded_engine
from webui.engine.engine import Engine
from webui.engine.llama_samplers import ChainInputs, build_chain
from webui.generation import logit_rules
from webui.generation.params import GenerationParams
from webui.generation.penalties import PenaltyConfig, SequencePenalties

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(embedded_gguf: Path) -> Iterator[Engine]:
    yield from loaded_engine(embedded_gguf, "llama.cpp", n_ctx=512, threads=1)


def apply_chain(engine: Engine, params: GenerationParams, logits: np.ndarray, prompt: list[int],
                reply: list[int] = ()) -> np.ndarray:  # type: ignore[assignment]
    """The logits after the chain (no final pick): -inf where a token was dropped."""
    import llama_cpp
    from llama_cpp._internals import LlamaTokenDataArray

    llm = engine.model._llm
    n_vocab = int(llm.n_vocab())
    inputs = ChainInputs(n_vocab=n_vocab, n_ctx=512, vocab=llm._model.vocab, seed=1,
                         prompt_ids=[*prompt, *reply], reply_ids=list(reply), eog_ids=[])

    def run() -> np.ndarray:
        chain = build_chain(params, inputs, terminal=False)
        try:
            array = LlamaTokenDataArray(n_vocab=n_vocab)
            array.copy_logits(logits.astype(np.single))
            llama_cpp.llama_sampler_apply(chain.chain, ctypes.byref(array.candidates))
            kept = np.ctypeslib.as_array(array.candidates.data, shape=(array.candidates.size,))
            out = np.full(n_vocab, -np.inf, dtype=np.float32)
            out[kept["id"]] = kept["logit"]
            return out
        finally:
            chain.free()

    return engine.worker.call(run)


def random_logits(engine: Engine, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2.0, size=int(engine.model.info.vocab_size)).astype(np.float32)


def test_penalties_match_the_shared_rules(engine: Engine) -> None:
    logits = random_logits(engine)
    prompt, reply = [10, 11, 12, 10, 500], [600, 600, 11]
    for values in ({"repetition_penalty": 1.5}, {"repetition_penalty": 1.5, "repetition_penalty_range": 2},
                   {"presence_penalty": 0.7, "frequency_penalty": 0.3}):
        params = GenerationParams(temperature=0, **values)
        native = apply_chain(engine, params, logits, prompt, reply)
        rules = SequencePenalties(PenaltyConfig.from_params(params))
        rules.update(prompt)
        rules.update([*prompt, *reply])
        np.testing.assert_allclose(native, rules.apply(logits.copy()), rtol=1e-6, err_msg=str(values))


def test_bias_bans_and_truncation(engine: Engine) -> None:
    logits = random_logits(engine, 1)
    top = int(logits.argmax())
    banned = apply_chain(engine, GenerationParams(temperature=0, custom_token_bans=[top], logit_bias={5: 3.0}),
                         logits, [1])
    assert np.isneginf(banned[top]) and banned[5] == pytest.approx(logits[5] + 3.0)
    top_k = apply_chain(engine, GenerationParams(temperature=1.0, top_p=1.0, top_k=7), logits, [1])
    assert np.isfinite(top_k).sum() == 7 and set(np.flatnonzero(np.isfinite(top_k))) == set(np.argsort(-logits)[:7])
    for field, rule in (("top_a", lambda x: logit_rules.top_a(x, 0.3)),
                        ("tfs", lambda x: logit_rules.tail_free(x, 0.8)),
                        ("epsilon_cutoff", lambda x: logit_rules.epsilon_cutoff(x, 5))):
        value = {"top_a": 0.3, "tfs": 0.8, "epsilon_cutoff": 5}[field]
        native = apply_chain(engine, GenerationParams(temperature=1.0, top_p=1.0, **{field: value}), logits, [1])
        expected = logits.copy()
        rule(expected)
        assert np.array_equal(np.isfinite(native), np.isfinite(expected)), field
        assert 1 <= np.isfinite(native).sum() < logits.size


def test_dry_penalises_the_token_that_extends_a_repeat(engine: Engine) -> None:
    logits = np.zeros(int(engine.model.info.vocab_size), dtype=np.float32)
    a, b, c, d = 300, 301, 302, 303
    prompt = [a, b, c, d, 7, a, b, c]  # "a b c" again: d would extend a 3-token repeat
    out = apply_chain(engine, GenerationParams(temperature=0, dry_multiplier=0.8, dry_base=2.0,
                                               dry_allowed_length=2, dry_sequence_breakers=[]), logits, prompt)
    assert out[d] == pytest.approx(-0.8 * 2.0 ** (3 - 2))
    assert np.count_nonzero(out) == 1


def reply(engine: Engine, **values: Any) -> tuple[str, Any]:
    prompt = engine.format_chat([{"role": "user", "content": "What is the capital of France? One word."}])
    handle = engine.generate(prompt, GenerationParams(**values))
    return handle.text(), handle.stats


def test_decode_with_the_chain(engine: Engine) -> None:
    plain, stats = reply(engine, temperature=0, max_new_tokens=16)
    assert "Paris" in plain and stats.finish_reason == "stop" and stats.completion_tokens < 12
    longer, stats = reply(engine, temperature=0, max_new_tokens=16, min_tokens=14)
    assert stats.completion_tokens >= 14 and longer.startswith(plain.rstrip(".").rstrip())
    banned, _ = reply(engine, temperature=0, max_new_tokens=16, banned_strings=["Paris"])
    assert "Paris" not in banned and banned
    mirostat, stats = reply(engine, temperature=0.8, seed=3, max_new_tokens=8, mirostat_mode=2, mirostat_tau=3.0)
    assert mirostat and stats.completion_tokens >= 1
    xtc, _ = reply(engine, temperature=1.0, top_p=1.0, seed=3, max_new_tokens=8, xtc_probability=1.0,
                   xtc_threshold=0.01)
    assert xtc != plain


def test_an_error_in_a_python_stage_reaches_the_caller(engine: Engine) -> None:
    from webui.generation.decode import DecodeHooks

    def boom(input_ids: Any, scores: Any) -> Any:
        raise RuntimeError("processor failed")

    handle = engine.generate("Hello", GenerationParams(temperature=0, max_new_tokens=4),
                             hooks=DecodeHooks(processors=lambda ctx, ids: [boom]))
    with pytest.raises(RuntimeError, match="processor failed"):
        handle.text()
    assert reply(engine, temperature=0, max_new_tokens=4)[0]  # the engine goes on
