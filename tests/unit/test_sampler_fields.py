"""The sampler fields SillyTavern sends: each one applied or listed with a reason; how they parse; the
numpy samplers llama.cpp's chain runs in Python agree with transformers' processors and ours."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from webui.api.errors import APIError
from webui.api.serving import check_sampler_values
from webui.engine.llama_samplers import stage_order
from webui.generation import hf_samplers, logit_rules
from webui.generation.params import GenerationParams, parse_string_list
from webui.generation.presets import ALIASES, resolve_params
from webui.generation.support import BACKEND_LIMITS, NOT_APPLIED
from webui.plugins.samplers import sampler_param

# The keys of createTextGenGenerationData's body for the "ooba" type (SillyTavern 1.13,
# public/scripts/textgen-settings.js), with the llama.cpp aliases it adds.
SILLYTAVERN_OOBA_FIELDS = (
    "prompt", "model", "max_new_tokens", "max_tokens", "logprobs", "temperature", "top_p", "typical_p", "typical",
    "sampler_seed", "min_p", "repetition_penalty", "frequency_penalty", "presence_penalty", "top_k", "skew",
    "min_length", "min_tokens", "num_beams", "length_penalty", "early_stopping", "add_bos_token",
    "dynamic_temperature", "dynatemp_low", "dynatemp_high", "dynatemp_range", "dynatemp_exponent",
    "smoothing_factor", "smoothing_curve", "dry_allowed_length", "dry_multiplier", "dry_base",
    "dry_sequence_breakers", "dry_penalty_last_n", "max_tokens_second", "sampler_priority", "samplers",
    "stopping_strings", "stop", "truncation_length", "ban_eos_token", "skip_special_tokens", "include_reasoning",
    "top_a", "tfs", "epsilon_cutoff", "eta_cutoff", "mirostat_mode", "mirostat_tau", "mirostat_eta",
    "custom_token_bans", "banned_strings", "api_type", "api_server", "sampler_order", "xtc_threshold",
    "xtc_probability", "nsigma", "top_n_sigma", "min_keep", "adaptive_target", "adaptive_decay", "stream",
    "bypass_status_check", "rep_pen_size", "rep_pen", "rep_pen_range", "repetition_decay",
    "repetition_penalty_range", "encoder_repetition_penalty", "no_repeat_ngram_size", "penalty_alpha",
    "temperature_last", "speculative_ngram", "do_sample", "seed", "guidance_scale", "negative_prompt",
    "grammar_string", "json_schema", "repeat_penalty", "repeat_last_n", "n_predict", "num_predict", "num_ctx",
    "mirostat", "ignore_eos", "n_probs", "rep_pen_slope", "logit_bias",
)
REQUEST_FIELDS = {"prompt", "model", "stream", "logprobs", "sampler_order"}  # the request itself / KoboldCpp only


def test_every_sillytavern_field_is_applied_or_listed_with_a_reason() -> None:
    known = set(GenerationParams.model_fields) | set(ALIASES) | set(NOT_APPLIED) | REQUEST_FIELDS
    assert [f for f in SILLYTAVERN_OOBA_FIELDS if f not in known] == []
    assert not set(NOT_APPLIED) & set(GenerationParams.model_fields)  # never both applied and "not applied"
    assert set(BACKEND_LIMITS) <= set(GenerationParams.model_fields)
    assert all(reason.strip() for reason in [*NOT_APPLIED.values(), *BACKEND_LIMITS.values()])


def test_list_fields_parse_as_clients_send_them() -> None:
    assert parse_string_list('["\\n", ":", "\\"", "*"]') == ["\n", ":", '"', "*"]  # SillyTavern (JSON)
    assert parse_string_list('"\\n", ":"') == ["\n", ":"]  # text-generation-webui's own form
    assert parse_string_list("a,b, c") == ["a", "b", " c"] and parse_string_list("  ") == []
    params = GenerationParams(custom_token_bans="5, 7\n9", sampler_priority="top_k\ntemperature",
                              banned_strings="Hello", dry_sequence_breakers=["x"])
    assert params.custom_token_bans == [5, 7, 9] and params.sampler_priority == ["top_k", "temperature"]
    assert params.banned_strings == ["Hello"] and params.dry_sequence_breakers == ["x"]
    with pytest.raises(ValueError, match="custom_token_bans"):
        GenerationParams(custom_token_bans="a,b")
    assert GenerationParams(do_sample=False).greedy and not GenerationParams().greedy


def test_own_names_win_over_aliases() -> None:
    params = resolve_params({"mirostat_mode": 2, "mirostat": 0, "rep_pen": 1.1, "repetition_penalty": 1.3,
                             "stopping_strings": ["\nUser:"], "nsigma": 1.5, "min_length": 4})
    assert params.mirostat_mode == 2 and params.repetition_penalty == 1.3
    assert params.stop == ["\nUser:"] and params.top_n_sigma == 1.5 and params.min_tokens == 4


def test_sampler_priority_orders_llama_cpp_stages() -> None:
    default = stage_order(GenerationParams())
    assert default[-1] == "temperature" and default[:2] == ["top_n_sigma", "top_k"]
    custom = stage_order(GenerationParams(sampler_priority=["temperature", "min_p", "dry", "top_k"]))
    assert custom[:3] == ["temperature", "min_p", "top_k"] and len(custom) == len(default)
    last = stage_order(GenerationParams(sampler_priority=["temperature", "top_k"], temperature_last=True))
    assert last[0] == "top_k" and last[-1] == "temperature"
    hf = hf_samplers.warper_order(GenerationParams(sampler_priority=["min_p", "dynamic_temperature"]))
    assert hf[:2] == ["min_p", "temperature"]


def _rows(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=3.0, size=64).astype(np.float32)


def _hf(processor: object, logits: np.ndarray) -> np.ndarray:
    out = processor(torch.zeros((1, 1), dtype=torch.long), torch.from_numpy(logits.copy())[None])  # type: ignore[operator]
    return out[0].numpy()


@pytest.mark.parametrize(("rule", "processor"), [
    (lambda x: logit_rules.top_a(x, 0.2), hf_samplers.TopA(0.2)),
    (lambda x: logit_rules.tail_free(x, 0.9), hf_samplers.TailFree(0.9)),
    (lambda x: logit_rules.quadratic_smoothing(x, 0.5, 2.0), hf_samplers.QuadraticSmoothing(0.5, 2.0)),
])
def test_numpy_rules_match_the_torch_processors(rule, processor) -> None:  # type: ignore[no-untyped-def]
    for seed in range(3):
        logits = _rows(seed)
        ours = logits.copy()
        rule(ours)
        theirs = _hf(processor, logits)
        assert np.array_equal(np.isneginf(ours), np.isneginf(theirs))
        kept = np.isfinite(ours)
        np.testing.assert_allclose(ours[kept], theirs[kept], rtol=1e-5, atol=1e-5)
        assert np.isfinite(ours).sum() >= 1 and ours.argmax() == logits.argmax()


def test_epsilon_and_eta_match_transformers() -> None:
    from transformers import EpsilonLogitsWarper, EtaLogitsWarper

    for seed in range(3):
        logits = _rows(seed)
        for rule, warper in ((logit_rules.epsilon_cutoff, EpsilonLogitsWarper(9e-4)),
                             (logit_rules.eta_cutoff, EtaLogitsWarper(9e-4))):
            ours = logits.copy()
            rule(ours, 9)  # text-generation-webui's units: 1e-4
            assert np.array_equal(np.isneginf(ours), np.isneginf(_hf(warper, logits)))
            assert 0 < np.isfinite(ours).sum() < logits.size


def test_encoder_repetition_favours_the_prompt() -> None:
    logits = np.array([2.0, -2.0, 1.0, 0.5], dtype=np.float32)
    logit_rules.encoder_repetition(logits, np.array([0, 1]), 2.0)
    assert logits.tolist() == [4.0, -1.0, 1.0, 0.5]


def test_extension_sampler_values_are_checked_before_queueing() -> None:
    specs = [sampler_param("my_breakers", ["\n"]), sampler_param("my_strength", 0.5, min=0.0, max=1.0)]
    ctx = SimpleNamespace(extensions=SimpleNamespace(sampler_params=lambda: specs))
    params = GenerationParams(samplers={"my_breakers": "\\n,:", "my_strength": "0.25"})
    assert check_sampler_values(ctx, params).samplers == {"my_breakers": ["\\n", ":"], "my_strength": 0.25}
    with pytest.raises(APIError) as bad:
        check_sampler_values(ctx, GenerationParams(samplers={"my_strength": 3}))
    assert bad.value.status == 400
