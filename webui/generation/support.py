"""Which generation parameters each backend applies, as data (the Parameters tab reports the rest)."""

from __future__ import annotations

from webui.generation.params import GenerationParams

ALL_PARAMS = frozenset(GenerationParams.model_fields) - {"samplers"}
# Handled by the engine/chat layer for every backend, whatever the backend supports.
ENGINE_PARAMS = frozenset({"stop", "truncation_length", "max_new_tokens"})

# What each backend's generate() applies today (keep in step with the backends). Both local backends
# apply every parameter; the penalties mean the same on both (webui/generation/penalties.py).
LOCAL_PARAMS = ENGINE_PARAMS | {
    "temperature", "top_p", "top_k", "min_p", "typical_p", "seed", "logit_bias", "ban_eos_token",
    "repetition_penalty", "repetition_penalty_range", "presence_penalty", "frequency_penalty", "no_repeat_ngram_size",
}
SUPPORTED: dict[str, frozenset[str]] = {
    "llama.cpp": LOCAL_PARAMS,
    "transformers": LOCAL_PARAMS,
    # an OpenAI-compatible server gets what webui.engine.remote_backend.sampling_body sends
    "remote": ENGINE_PARAMS
    | {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty", "seed"},
    "fake": ALL_PARAMS,  # the test backend
}


def unsupported(loader: str | None) -> list[str]:
    """Parameter names the given loader ignores (empty when unknown or no model is loaded)."""
    if not loader or loader not in SUPPORTED:
        return []
    return sorted(ALL_PARAMS - SUPPORTED[loader])
