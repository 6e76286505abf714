"""Built-in sampler extensions (DRY, XTC, Mirostat v2): their effect on the token distribution."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.support.extensions import EXTENSIONS_DIR, manager_for, write_ext
from webui.plugins import SamplerContext, for_llama_cpp

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")


def char_encode(text: str) -> list[int]:
    """A toy tokenizer: one token per character, id = code point."""
    return [ord(c) for c in text]


@pytest.fixture
def samplers():
    mgr = manager_for(EXTENSIONS_DIR)
    assert mgr.set_enabled(["dry", "xtc", "mirostat"]) == {}
    return mgr


def build(mgr, values, ctx=None):
    processors = mgr.build_logits_processors(values, ctx)
    assert len(processors) == 1, processors
    return processors[0]


def ids(*tokens: int):
    return torch.tensor([list(tokens)])


# ------------------------------------------------------------------------------------------ DRY

DRY_ON = {"dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2}


def test_registered_parameters(samplers) -> None:
    assert list(samplers.samplers()) == ["dry", "xtc", "mirostat"]
    keys = [p.key for p in samplers.sampler_params()]
    assert keys == ["dry_multiplier", "dry_base", "dry_allowed_length", "dry_sequence_breakers",
                    "dry_penalty_last_n", "xtc_threshold", "xtc_probability", "mirostat_mode",
                    "mirostat_tau", "mirostat_eta"]
    # All off by default: nothing changes a generation until the user asks.
    assert samplers.build_logits_processors({}) == []


def test_dry_penalises_the_token_that_extends_a_repeat_by_the_documented_amount(samplers) -> None:
    dry = build(samplers, DRY_ON)
    scores = torch.zeros(1, 10)
    # "1 2 3 4 9 1 2 3": the context ends with "1 2 3", which was followed by 4 before.
    out = dry(ids(1, 2, 3, 4, 9, 1, 2, 3), scores)
    expected = torch.zeros(1, 10)
    expected[0, 4] = -0.8 * 1.75 ** (3 - 2)
    assert torch.allclose(out, expected)
    assert torch.equal(scores, torch.zeros(1, 10))  # input left alone
    probs = out.softmax(-1)[0]
    assert probs[4] < probs[5] and torch.allclose(probs[5], probs[0])

    # One more repeated token multiplies the penalty by the base.
    longer = dry(ids(5, 1, 2, 3, 4, 9, 5, 1, 2, 3), torch.zeros(1, 10))
    assert longer[0, 4].item() == pytest.approx(-0.8 * 1.75 ** 2)


def test_dry_allowed_length_range_and_batch(samplers) -> None:
    lenient = build(samplers, {**DRY_ON, "dry_allowed_length": 4})
    assert torch.equal(lenient(ids(1, 2, 3, 4, 9, 1, 2, 3), torch.zeros(1, 10)), torch.zeros(1, 10))
    # The earlier occurrence lies outside the last 5 tokens: nothing to repeat.
    windowed = build(samplers, {**DRY_ON, "dry_penalty_last_n": 5})
    assert torch.equal(windowed(ids(1, 2, 3, 4, 9, 1, 2, 3), torch.zeros(1, 10)), torch.zeros(1, 10))
    dry = build(samplers, DRY_ON)
    batch = dry(torch.tensor([[1, 2, 3, 4, 9, 1, 2, 3], [5, 6, 7, 8, 9, 0, 1, 2]]), torch.zeros(2, 10))
    assert batch[0, 4] < 0 and torch.equal(batch[1], torch.zeros(10))


def test_dry_sequence_breakers_end_a_match(samplers) -> None:
    colon = ord(":")
    context = ids(1, colon, 3, 4, 9, 1, colon, 3)
    vocab = 128
    with_breakers = build(samplers, DRY_ON, SamplerContext(encode=char_encode))
    assert torch.equal(with_breakers(context, torch.zeros(1, vocab)), torch.zeros(1, vocab))
    # Without a tokenizer the breakers cannot be resolved, and the same context is a repeat.
    without = build(samplers, DRY_ON, SamplerContext())
    assert without(context, torch.zeros(1, vocab))[0, 4].item() == pytest.approx(-1.4)
    # A context ending in a breaker is never penalised.
    ending = ids(1, 2, colon, 4, 1, 2, colon)
    assert torch.equal(with_breakers(ending, torch.zeros(1, vocab)), torch.zeros(1, vocab))


def test_dry_through_the_llama_cpp_adapter(samplers) -> None:
    dry = for_llama_cpp(build(samplers, DRY_ON))
    out = dry(np.array([1, 2, 3, 4, 9, 1, 2, 3], dtype=np.intc), np.zeros(10, dtype=np.single))
    assert out.shape == (10,) and out.dtype == np.single
    assert out[4] == pytest.approx(-1.4) and (np.delete(out, 4) == 0).all()


# ------------------------------------------------------------------------------------------ XTC

def logits_for(probs: list[float]):
    return torch.log(torch.tensor([probs]))


def test_xtc_removes_top_choices_but_the_least_likely_of_them(samplers) -> None:
    xtc = build(samplers, {"xtc_threshold": 0.1, "xtc_probability": 1.0})
    scores = logits_for([0.3, 0.4, 0.2, 0.05, 0.05])  # above 0.1: tokens 1, 0, 2
    out = xtc(ids(0), scores)
    assert torch.isinf(out[0, 0]) and torch.isinf(out[0, 1])
    assert torch.equal(out[0, 2:], scores[0, 2:])
    probs = out.softmax(-1)[0]
    assert probs[2].item() == pytest.approx(0.2 / 0.3)  # the least likely top choice now leads
    assert probs[:2].sum() == 0


def test_xtc_needs_two_tokens_above_threshold_and_spares_eos(samplers) -> None:
    xtc = build(samplers, {"xtc_threshold": 0.1, "xtc_probability": 1.0})
    single = logits_for([0.9, 0.05, 0.05])
    assert torch.equal(xtc(ids(0), single), single)
    with_eos = build(samplers, {"xtc_threshold": 0.1, "xtc_probability": 1.0},
                     SamplerContext(eos_token_id=1))
    scores = logits_for([0.3, 0.4, 0.2, 0.05, 0.05])
    assert torch.equal(with_eos(ids(0), scores), scores)  # would remove EOS: leave alone


def test_xtc_probability(samplers) -> None:
    assert samplers.build_logits_processors({"xtc_threshold": 0.1, "xtc_probability": 0.0}) == []
    from_module = samplers.load("xtc").obj.XTCLogitsProcessor
    never = from_module(threshold=0.1, probability=0.0, seed=1)
    scores = logits_for([0.3, 0.4, 0.2, 0.05, 0.05])
    assert all(torch.equal(never(ids(0), scores), scores) for _ in range(500))
    half = build(samplers, {"xtc_threshold": 0.1, "xtc_probability": 0.5}, SamplerContext(seed=3))
    fired = sum(torch.isinf(half(ids(0), scores)).any().item() for _ in range(1000))
    assert 400 < fired < 600


# ------------------------------------------------------------------------------------- Mirostat

MIROSTAT = {"mirostat_mode": 2, "mirostat_tau": 1.0, "mirostat_eta": 0.5}


def test_mirostat_truncates_above_mu_and_learns_from_the_chosen_token(samplers) -> None:
    miro = build(samplers, MIROSTAT)
    scores = logits_for([0.5, 0.3, 0.15, 0.05])  # surprise: 1, 1.74, 2.74, 4.32 bits
    out = miro(ids(7), scores)  # mu starts at 2 * tau = 2 bits
    assert torch.isfinite(out[0, :2]).all() and torch.isinf(out[0, 2:]).all()
    # Token 1 was drawn: its surprise in the truncated distribution is -log2(0.3 / 0.8).
    miro(ids(7, 1), scores)
    observed = -math.log2(0.3 / 0.8)
    assert miro.inner.mu[0] == pytest.approx(2 - 0.5 * (observed - 1.0), abs=1e-5)


def test_mirostat_keeps_the_top_token_and_is_off_by_default(samplers) -> None:
    greedy = build(samplers, {**MIROSTAT, "mirostat_tau": 0.0})
    out = greedy(ids(0), logits_for([0.4, 0.35, 0.25]))
    assert torch.isfinite(out[0, 0]) and torch.isinf(out[0, 1:]).all()
    assert samplers.build_logits_processors({"mirostat_mode": 0, "mirostat_tau": 3}) == []


# ------------------------------------------------------------------------------------ isolation

def test_failing_sampler_is_isolated(tmp_path: Path) -> None:
    write_ext(tmp_path, "flaky", """
        from webui.plugins import SamplerSpec
        def broken(input_ids, scores):
            raise IndexError("vocab mismatch")
        def register_samplers():
            return [SamplerSpec(name="flaky", factory=lambda params: broken)]
    """)
    mgr = manager_for(tmp_path)
    mgr.enable("flaky")
    (processor,) = mgr.build_logits_processors({})
    scores = torch.zeros(1, 4)
    assert processor(ids(1), scores) is scores
    assert mgr.enabled() == [] and mgr.failures()[0].hook == "sampler flaky"
    assert processor(ids(1), scores) is scores  # stays a pass-through
    assert len(mgr.failures()) == 1
