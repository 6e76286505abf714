"""Which generation parameters each backend applies, as data (the Parameters tab reports the rest)."""

from __future__ import annotations

from webui.generation.params import GenerationParams

ALL_PARAMS = frozenset(GenerationParams.model_fields) - {"samplers"}
# Handled by the engine/chat layer for every backend, whatever the backend supports.
ENGINE_PARAMS = frozenset({"stop", "truncation_length", "max_new_tokens"})

# What each backend's generate() passes on today (keep in step with the backends).
SUPPORTED: dict[str, frozenset[str]] = {
    "llama.cpp": ENGINE_PARAMS
    | {
        "temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty", "presence_penalty",
        "frequency_penalty", "seed",
    },
    "transformers": ENGINE_PARAMS
    | {"temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty", "seed"},
    "fake": ALL_PARAMS,  # the test backend
}


def unsupported(loader: str | None) -> list[str]:
    """Parameter names the given loader ignores (empty when unknown or no model is loaded)."""
    if not loader or loader not in SUPPORTED:
        return []
    return sorted(ALL_PARAMS - SUPPORTED[loader])
