"""The built-in DRY, XTC and Mirostat v2 processors of the transformers backend (webui.generation.hf_samplers):
their effect on the token distribution, and that GenerationParams' defaults leave them off. The llama.cpp
chain's DRY, XTC and mirostat are checked on the real GGUF in tests/integration/test_native_samplers.py."""

from __future__ import annotations

import math
from typing import Any

import pytest

from webui.generation import hf_samplers
from webui.generation.params import DRY_BREAKERS, GenerationParams

torch = pytest.importorskip("torch")


def char_tokenizer(text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
    """A toy tokenizer in transformers' call shape: one token per character, id = code point."""
    return {"input_ids": [ord(c) for c in text]}


def ids(*tokens: int) -> Any:
    return torch.tensor([list(tokens)])


def dry(multiplier: float = 0.8, base: float = 1.75, allowed: int = 2, breakers: set[int] | None = None,
        last_n: int = 0) -> hf_samplers.DRY:
    return hf_samplers.DRY(multiplier, base, allowed, breakers or set(), last_n)


def logits_for(probs: list[float]) -> Any:
    return torch.log(torch.tensor([probs]))


# ------------------------------------------------------------------------------------------ DRY

def test_dry_penalises_the_token_that_extends_a_repeat_by_the_documented_amount() -> None:
    # "1 2 3 4 9 1 2 3": the context ends with "1 2 3", which was followed by 4 before.
    out = dry()(ids(1, 2, 3, 4, 9, 1, 2, 3), torch.zeros(1, 10))
    expected = torch.zeros(1, 10)
    expected[0, 4] = -0.8 * 1.75 ** (3 - 2)
    assert torch.allclose(out, expected)
    probs = out.softmax(-1)[0]
    assert probs[4] < probs[5] and torch.allclose(probs[5], probs[0])
    # One more repeated token multiplies the penalty by the base.
    longer = dry()(ids(5, 1, 2, 3, 4, 9, 5, 1, 2, 3), torch.zeros(1, 10))
    assert longer[0, 4].item() == pytest.approx(-0.8 * 1.75 ** 2)


def test_dry_allowed_length_range_and_batch() -> None:
    context = ids(1, 2, 3, 4, 9, 1, 2, 3)
    assert torch.equal(dry(allowed=4)(context, torch.zeros(1, 10)), torch.zeros(1, 10))
    # The earlier occurrence lies outside the last 5 tokens: nothing to repeat.
    assert torch.equal(dry(last_n=5)(context, torch.zeros(1, 10)), torch.zeros(1, 10))
    batch = dry()(torch.tensor([[1, 2, 3, 4, 9, 1, 2, 3], [5, 6, 7, 8, 9, 0, 1, 2]]), torch.zeros(2, 10))
    assert batch[0, 4] < 0 and torch.equal(batch[1], torch.zeros(10))


def test_dry_sequence_breakers_end_a_match() -> None:
    colon, vocab = ord(":"), 128
    breakers = hf_samplers.dry_breaker_ids(char_tokenizer, ["\n", ":"])
    assert breakers == {ord("\n"), colon}  # the in-text form: the last token of "a" + breaker
    context = ids(1, colon, 3, 4, 9, 1, colon, 3)
    assert torch.equal(dry(breakers=breakers)(context, torch.zeros(1, vocab)), torch.zeros(1, vocab))
    # Without breakers the same context is a repeat of "1 : 3".
    assert dry()(context, torch.zeros(1, vocab))[0, 4].item() == pytest.approx(-1.4)
    # A context ending in a breaker is never penalised.
    ending = ids(1, 2, colon, 4, 1, 2, colon)
    assert torch.equal(dry(breakers=breakers)(ending, torch.zeros(1, vocab)), torch.zeros(1, vocab))


# ------------------------------------------------------------------------------------------ XTC

def test_xtc_removes_top_choices_but_the_least_likely_of_them() -> None:
    xtc = hf_samplers.XTC(threshold=0.1, probability=1.0, seed=1)
    scores = logits_for([0.3, 0.4, 0.2, 0.05, 0.05])  # above 0.1: tokens 1, 0, 2
    out = xtc(ids(0), scores)
    assert torch.isinf(out[0, 0]) and torch.isinf(out[0, 1])
    assert torch.equal(out[0, 2:], scores[0, 2:])
    probs = out.softmax(-1)[0]
    assert probs[2].item() == pytest.approx(0.2 / 0.3)  # the least likely top choice now leads
    assert probs[:2].sum() == 0


def test_xtc_needs_two_tokens_above_the_threshold() -> None:
    single = logits_for([0.9, 0.05, 0.05])
    assert torch.equal(hf_samplers.XTC(threshold=0.1, probability=1.0, seed=1)(ids(0), single), single)


def test_xtc_probability() -> None:
    scores = logits_for([0.3, 0.4, 0.2, 0.05, 0.05])
    never = hf_samplers.XTC(threshold=0.1, probability=0.0, seed=1)
    assert all(torch.equal(never(ids(0), scores), scores) for _ in range(500))
    half = hf_samplers.XTC(threshold=0.1, probability=0.5, seed=3)
    fired = sum(torch.isinf(half(ids(0), scores)).any().item() for _ in range(1000))
    assert 400 < fired < 600
    # The same seed draws the same decisions.
    a, b = hf_samplers.XTC(0.1, 0.5, seed=9), hf_samplers.XTC(0.1, 0.5, seed=9)
    assert [torch.isinf(a(ids(0), scores)).any().item() for _ in range(50)] == \
        [torch.isinf(b(ids(0), scores)).any().item() for _ in range(50)]


# ------------------------------------------------------------------------------------- Mirostat

def test_mirostat_truncates_above_mu_and_learns_from_the_chosen_token() -> None:
    miro = hf_samplers.MirostatV2(tau=1.0, eta=0.5)
    scores = logits_for([0.5, 0.3, 0.15, 0.05])  # surprise: 1, 1.74, 2.74, 4.32 bits
    out = miro(ids(7), scores)  # mu starts at 2 * tau = 2 bits
    assert torch.isfinite(out[0, :2]).all() and torch.isinf(out[0, 2:]).all()
    # Token 1 was drawn: its surprise in the truncated distribution is -log2(0.3 / 0.8).
    miro(ids(7, 1), scores)
    observed = -math.log2(0.3 / 0.8)
    assert miro.mu == pytest.approx(2 - 0.5 * (observed - 1.0), abs=1e-5)


def test_mirostat_keeps_the_top_token() -> None:
    out = hf_samplers.MirostatV2(tau=0.0, eta=0.1)(ids(0), logits_for([0.4, 0.35, 0.25]))
    assert torch.isfinite(out[0, 0]) and torch.isinf(out[0, 1:]).all()


# ----------------------------------------------------------------------------- neutral defaults

def test_defaults_leave_dry_xtc_and_mirostat_off_and_values_turn_them_on() -> None:
    neutral = GenerationParams(temperature=0.7)
    assert hf_samplers.penalty_kwargs(neutral, char_tokenizer, None)[1] == []
    assert not hf_samplers.own_warpers_active(neutral)
    assert all(hf_samplers._warper(name, neutral, 1) is None for name in ("xtc", "mirostat"))

    (dry_processor,) = hf_samplers.penalty_kwargs(GenerationParams(dry_multiplier=0.8), char_tokenizer, None)[1]
    assert isinstance(dry_processor, hf_samplers.DRY)
    assert dry_processor.breakers == {ord(b) for b in DRY_BREAKERS} and dry_processor.multiplier == 0.8
    tuned = GenerationParams(temperature=0.7, xtc_probability=0.5, mirostat_mode=2)
    _, warpers = hf_samplers.sampling_kwargs(tuned, seed=1)
    kinds = {type(w) for w in warpers}
    assert {hf_samplers.XTC, hf_samplers.MirostatV2} <= kinds
