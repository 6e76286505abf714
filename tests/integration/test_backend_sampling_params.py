"""ban_eos_token, no_repeat_ngram_size, repetition_penalty(_range), presence/frequency penalty:
the shared rules (webui/generation/penalties.py) on hand-made scores, and their effect on the real
llama.cpp (embedded SmolLM2 GGUF) and transformers (tiny random Llama) backends."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.real_engine import loaded_engine
from webui.engine.engine import Engine
from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams
from webui.generation.penalties import PenaltyConfig, SequencePenalties, TorchPenalties, numpy_processor
from webui.generation.support import unsupported

NEW_PARAMS = (
    "ban_eos_token", "no_repeat_ngram_size", "repetition_penalty_range", "presence_penalty", "frequency_penalty"
)


# -- the rules on hand-made scores -----------------------------------------------------------
def run_rules(config: PenaltyConfig, prompt: list[int], generated: list[int], scores: list[float]) -> np.ndarray:
    """Feed the prompt, then one generated token per step (as a backend does), then apply."""
    process = numpy_processor(config)
    assert process is not None
    out = np.asarray(scores, dtype=np.float32)
    ids = list(prompt)
    process(np.asarray(ids, dtype=np.intc), out.copy())
    for token in generated:
        ids.append(token)
        result = process(np.asarray(ids, dtype=np.intc), out.copy())
    return result if generated else process(np.asarray(ids, dtype=np.intc), out.copy())


def test_presence_and_frequency_count_only_generated_tokens() -> None:
    scores = [1.0, 2.0, -1.0, 0.5, 3.0, 1.0, 0.0, 0.0]
    out = run_rules(
        PenaltyConfig(presence_penalty=0.5, frequency_penalty=0.25),
        prompt=[5, 5, 6],
        generated=[1, 1, 2],
        scores=scores,
    )
    # token 1 twice: 2 - (0.5 + 2*0.25); token 2 once: -1 - 0.75; prompt tokens 5, 6 and the rest untouched
    assert out.tolist() == pytest.approx([1.0, 1.0, -1.75, 0.5, 3.0, 1.0, 0.0, 0.0])
    negative = run_rules(PenaltyConfig(presence_penalty=-1.0), prompt=[0], generated=[3, 3], scores=scores)
    # a negative penalty encourages
    assert negative.tolist() == pytest.approx([1.0, 2.0, -1.0, 1.5, 3.0, 1.0, 0.0, 0.0])


def test_ranged_repetition_penalty_only_touches_the_window() -> None:
    scores = [1.0, 2.0, -2.0, 4.0, -4.0, 6.0, 0.0, 1.0]
    ranged = run_rules(
        PenaltyConfig(repetition_penalty=2.0, repetition_range=2), prompt=[1, 2, 3], generated=[4, 5], scores=scores
    )
    # only the last two tokens (4, 5): negative multiplied, positive divided; 1, 2, 3 are outside the window
    assert ranged.tolist() == pytest.approx([1.0, 2.0, -2.0, 4.0, -8.0, 3.0, 0.0, 1.0])
    everything = run_rules(PenaltyConfig(repetition_penalty=2.0), prompt=[1, 2, 3], generated=[4, 5, 5], scores=scores)
    # 0 = the whole context, once per id
    assert everything.tolist() == pytest.approx([1.0, 1.0, -4.0, 2.0, -8.0, 3.0, 0.0, 1.0])
    wide = run_rules(
        PenaltyConfig(repetition_penalty=2.0, repetition_range=100),
        prompt=[1, 2, 3],
        generated=[4, 5, 5],
        scores=scores,
    )
    assert wide.tolist() == pytest.approx(everything.tolist())


def test_no_repeat_ngram_and_ban_eos() -> None:
    scores = [0.0] * 8
    bigram = run_rules(PenaltyConfig(no_repeat_ngram_size=2), prompt=[1, 2, 3, 1, 4, 1], generated=[], scores=scores)
    assert np.isneginf(bigram).nonzero()[0].tolist() == [2, 4]  # (1,2) and (1,4) were seen
    trigram = run_rules(PenaltyConfig(no_repeat_ngram_size=3), prompt=[1, 2, 3], generated=[1, 2], scores=scores)
    assert np.isneginf(trigram).nonzero()[0].tolist() == [3]
    unigram = run_rules(PenaltyConfig(no_repeat_ngram_size=1), prompt=[6], generated=[7], scores=scores)
    assert np.isneginf(unigram).nonzero()[0].tolist() == [6, 7]
    eos = run_rules(PenaltyConfig(banned_ids=(0, 2)), prompt=[1], generated=[], scores=[5.0] * 8)
    assert np.isneginf(eos).nonzero()[0].tolist() == [0, 2] and eos[1] == 5.0


def reference(config: PenaltyConfig, ids: list[int], prompt_len: int, scores: np.ndarray) -> np.ndarray:
    """The rules recomputed from scratch on the whole sequence (O(context), for comparison)."""
    out = scores.astype(np.float64).copy()
    if config.repetition_penalty != 1.0:
        window = ids[-config.repetition_range :] if config.repetition_range else ids
        for token in set(window):
            p = config.repetition_penalty
            out[token] = out[token] / p if out[token] > 0 else out[token] * p
    generated = ids[prompt_len:]
    for token in set(generated):
        out[token] -= config.presence_penalty + config.frequency_penalty * generated.count(token)
    n = config.no_repeat_ngram_size
    if n:
        prefix = tuple(ids[len(ids) - n + 1 :]) if n > 1 else ()
        for i in range(len(ids) - n + 1):
            if tuple(ids[i : i + n - 1]) == prefix:
                out[ids[i + n - 1]] = -np.inf
    for token in config.banned_ids:
        out[token] = -np.inf
    return out


@pytest.mark.parametrize("config", [
    PenaltyConfig(repetition_penalty=1.3),
    PenaltyConfig(repetition_penalty=0.8, repetition_range=5),
    PenaltyConfig(presence_penalty=0.7, frequency_penalty=0.3),
    PenaltyConfig(no_repeat_ngram_size=2),
    PenaltyConfig(no_repeat_ngram_size=3, repetition_penalty=1.2, repetition_range=7, presence_penalty=0.5,
                  frequency_penalty=-0.2, banned_ids=(0,)),
])
def test_incremental_state_matches_a_from_scratch_recomputation(config: PenaltyConfig) -> None:
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 12, 60).tolist()
    prompt_len = 20
    process = numpy_processor(config)
    assert process is not None
    for k in range(prompt_len, len(ids) + 1):
        scores = rng.normal(size=12).astype(np.float32)
        got = process(np.asarray(ids[:k], dtype=np.intc), scores.copy())
        np.testing.assert_allclose(got, reference(config, ids[:k], prompt_len, scores), rtol=1e-5, atol=1e-6)


def test_rules_agree_with_transformers_and_the_torch_adapter() -> None:
    import torch
    from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

    rng = np.random.default_rng(3)
    ids = rng.integers(0, 10, 40).tolist()
    scores = rng.normal(size=10).astype(np.float32)
    t_ids, t_scores = torch.tensor([ids]), torch.from_numpy(scores[None, :].copy())
    for ours, theirs in [
        (PenaltyConfig(repetition_penalty=1.4), RepetitionPenaltyLogitsProcessor(1.4)),
        (PenaltyConfig(no_repeat_ngram_size=2), NoRepeatNGramLogitsProcessor(2)),
        (PenaltyConfig(no_repeat_ngram_size=3), NoRepeatNGramLogitsProcessor(3)),
    ]:
        state = SequencePenalties(ours)
        state.update(ids)
        expected = theirs(t_ids, t_scores.clone())[0].numpy()
        np.testing.assert_allclose(state.apply(scores.copy()), expected, rtol=1e-6)
    # the torch adapter (transformers backend) gives what the numpy one (llama.cpp backend) gives
    config = PenaltyConfig(repetition_penalty=1.3, repetition_range=6, presence_penalty=0.4, frequency_penalty=0.2)
    torch_proc, numpy_proc = TorchPenalties(config), numpy_processor(config)
    assert numpy_proc is not None
    for k in range(30, 41):
        step = rng.normal(size=10).astype(np.float32)
        got = torch_proc(torch.tensor([ids[:k]]), torch.from_numpy(step[None, :].copy()))[0].numpy()
        np.testing.assert_allclose(got, numpy_proc(np.asarray(ids[:k], dtype=np.intc), step.copy()), rtol=1e-6)


def test_neutral_params_add_no_processor_and_support_table_is_complete() -> None:
    assert not PenaltyConfig.from_params(GenerationParams()).active
    assert numpy_processor(PenaltyConfig.from_params(GenerationParams(), eos_ids=[2])) is None
    assert PenaltyConfig.from_params(GenerationParams(ban_eos_token=True), eos_ids=[2, 0]).banned_ids == (0, 2)
    assert unsupported("transformers") == ["banned_strings"]  # generate() cannot rewind
    assert unsupported("llama.cpp") == ["guidance_scale", "negative_prompt"]  # needs a second model pass
    assert set(NEW_PARAMS) - {"presence_penalty", "frequency_penalty"} <= set(unsupported("remote"))


# -- the real backends -------------------------------------------------------------------------
FRANCE = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
COUNT = [{"role": "user", "content": "Count from 1 to 20."}]


class Recorder:
    """An extension processor that sees the ids and final scores of each step (greedy: the argmax
    of the last scores is the last token generated)."""

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.ids = input_ids[0].tolist()
        self.choice = int(scores[0].argmax())
        return scores


_replies: dict[tuple[int, str, str], tuple[str, list[int], Any]] = {}


def greedy(engine: Engine, messages: list[dict[str, str]], **values: Any) -> tuple[str, list[int], Any]:
    """(text, generated token ids, stats) of a greedy reply (each asked once per engine)."""
    key = (id(engine), repr(messages), repr(sorted(values.items())))
    if key not in _replies:
        _replies[key] = _greedy(engine, messages, **values)
    return _replies[key]


def _greedy(engine: Engine, messages: list[dict[str, str]], **values: Any) -> tuple[str, list[int], Any]:
    recorder = Recorder()
    hooks = DecodeHooks(processors=lambda ctx, ids: [recorder])
    handle = engine.generate(engine.format_chat(messages), GenerationParams(temperature=0, **values), hooks=hooks)
    text = handle.text()
    prompt_len = engine.count_tokens(engine.format_chat(messages))
    return text, recorder.ids[prompt_len:] + [recorder.choice], handle.stats


def repeated_bigrams(ids: list[int]) -> int:
    pairs = list(pairwise(ids))
    return len(pairs) - len(set(pairs))


slow = pytest.mark.slow  # the tests below load real models


@pytest.fixture(scope="module")
def llama_engine(embedded_gguf: Path):
    yield from loaded_engine(embedded_gguf, "llama.cpp", n_ctx=1024, threads=1)


@pytest.fixture(scope="module")
def hf_engine(tiny_llama_dir: Path):
    yield from loaded_engine(tiny_llama_dir, "transformers")


@slow
def test_llamacpp_ban_eos_runs_to_max_new_tokens(llama_engine: Engine) -> None:
    text, _, stats = greedy(llama_engine, FRANCE, max_new_tokens=24)
    assert "Paris" in text and stats.finish_reason == "stop" and stats.completion_tokens < 12
    banned, ids, banned_stats = greedy(llama_engine, FRANCE, max_new_tokens=24, ban_eos_token=True)
    assert banned.startswith(text) and len(banned) > len(text)
    assert banned_stats.finish_reason == "length" and banned_stats.completion_tokens == 24 and len(ids) == 24
    assert not set(ids) & set(llama_engine.model.eog_ids)  # <|im_end|>, <|endoftext|>, ... all banned
    # a logit_bias pushing EOS does not undo the ban
    _, _, pushed = greedy(llama_engine, FRANCE, max_new_tokens=8, ban_eos_token=True, logit_bias={2: 100.0})
    assert pushed.completion_tokens == 8 and pushed.finish_reason == "length"


@slow
def test_llamacpp_no_repeat_ngram(llama_engine: Engine) -> None:
    _, free, _ = greedy(llama_engine, COUNT, max_new_tokens=24)
    assert repeated_bigrams(free) > 0  # "1. 1\n2. 2\n..." repeats ". " and friends
    _, ids, _ = greedy(llama_engine, COUNT, max_new_tokens=24, no_repeat_ngram_size=2)
    assert ids != free and repeated_bigrams(ids) == 0
    prompt = llama_engine.model._llm.tokenize(llama_engine.format_chat(COUNT).encode(), add_bos=False, special=True)
    context = [*prompt, *ids]  # no token of the reply completes a bigram seen before it, prompt included
    for k in range(len(prompt), len(context)):
        assert (context[k - 1], context[k]) not in set(pairwise(context[:k]))


@slow
def test_llamacpp_penalties_change_greedy_output(llama_engine: Engine) -> None:
    base, base_ids, _ = greedy(llama_engine, FRANCE, max_new_tokens=24, ban_eos_token=True)
    assert "happy to help with that. I'm happy to help" in base
    for values in ({"presence_penalty": 2.0}, {"frequency_penalty": 1.0}):
        text, ids, _ = greedy(llama_engine, FRANCE, max_new_tokens=24, ban_eos_token=True, **values)
        assert text != base and repeated_bigrams(ids) < repeated_bigrams(base_ids), values
    whole, _, _ = greedy(llama_engine, FRANCE, max_new_tokens=24, ban_eos_token=True, repetition_penalty=1.3)
    ranged, _, _ = greedy(llama_engine, FRANCE, max_new_tokens=24, ban_eos_token=True, repetition_penalty=1.3,
                          repetition_penalty_range=8)
    # range 0 also penalises the prompt's "capital", "France": the reply avoids them; the last 8 tokens do not
    assert whole != ranged and "capital of France" in ranged and "capital of France" not in whole


def record_kwargs(monkeypatch: pytest.MonkeyPatch, obj: Any, method: str) -> list[dict[str, Any]]:
    """Wrap ``obj.method`` so every call's keyword arguments are recorded (the call still runs)."""
    seen: list[dict[str, Any]] = []
    real = getattr(obj, method)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, method, spy)
    return seen


@slow
def test_llamacpp_neutral_params_pass_no_processor(llama_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neutral parameters: llama.cpp's greedy sampler alone; ban EOS: llama.cpp's logit_bias sampler;
    the penalties: one Python stage with the shared rules (webui.engine.llama_samplers)."""
    from webui.engine import llama_decode

    chains: list[list[str]] = []
    real = llama_decode.build_chain

    def spy(*args: Any, **kwargs: Any) -> Any:
        chain = real(*args, **kwargs)
        chains.append(chain.native)
        return chain

    monkeypatch.setattr(llama_decode, "build_chain", spy)
    llama_engine.generate("Hello", GenerationParams(temperature=0, max_new_tokens=2)).text()
    assert chains[-1] == ["greedy"]
    llama_engine.generate("Hello", GenerationParams(temperature=0, max_new_tokens=2, repetition_penalty=1.2,
                                                    ban_eos_token=True)).text()
    assert chains[-1] == ["logit_bias", "py:penalties", "greedy"]


@slow
def test_transformers_ban_eos_runs_to_max_new_tokens(hf_engine: Engine) -> None:
    eos = hf_engine.model._tok.eos_token_id
    _, _, stats = greedy(hf_engine, FRANCE, max_new_tokens=12, logit_bias={eos: 100.0})
    assert stats.finish_reason == "stop" and stats.completion_tokens <= 1  # EOS first: ends at once
    _, ids, banned = greedy(hf_engine, FRANCE, max_new_tokens=12, logit_bias={eos: 100.0}, ban_eos_token=True)
    assert banned.finish_reason == "length" and banned.completion_tokens == 12 and eos not in ids


@slow
def test_transformers_no_repeat_ngram_and_penalties(hf_engine: Engine) -> None:
    base, free, _ = greedy(hf_engine, COUNT, max_new_tokens=16)
    assert repeated_bigrams(free) > 5  # the random tiny model loops
    _, ids, _ = greedy(hf_engine, COUNT, max_new_tokens=16, no_repeat_ngram_size=2)
    assert len(ids) == 16 and repeated_bigrams(ids) == 0
    for values in (
        {"presence_penalty": 2.0},
        {"frequency_penalty": 1.0},
        {"repetition_penalty": 1.5, "repetition_penalty_range": 4},
    ):
        text, ids, _ = greedy(hf_engine, COUNT, max_new_tokens=16, **values)
        assert text != base and repeated_bigrams(ids) < repeated_bigrams(free), values


@slow
def test_transformers_kwargs(hf_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = record_kwargs(monkeypatch, hf_engine.model._model, "generate")
    hf_engine.generate("Hi", GenerationParams(temperature=0, max_new_tokens=2)).text()
    assert "logits_processor" not in seen[-1] and "suppress_tokens" not in seen[-1]
    assert seen[-1]["repetition_penalty"] == 1.0 and seen[-1]["no_repeat_ngram_size"] == 0
    hf_engine.generate("Hi", GenerationParams(temperature=0, max_new_tokens=2, repetition_penalty=1.2,
                                              no_repeat_ngram_size=3, ban_eos_token=True)).text()
    assert seen[-1]["repetition_penalty"] == 1.2 and seen[-1]["no_repeat_ngram_size"] == 3  # transformers' own
    assert seen[-1]["suppress_tokens"] == [hf_engine.model._tok.eos_token_id] and "logits_processor" not in seen[-1]
    hf_engine.generate("Hi", GenerationParams(temperature=0, max_new_tokens=2, repetition_penalty=1.2,
                                              repetition_penalty_range=16)).text()
    assert seen[-1]["repetition_penalty"] == 1.0  # the ranged one replaces it
    assert [type(p) for p in seen[-1]["logits_processor"]] == [TorchPenalties]
