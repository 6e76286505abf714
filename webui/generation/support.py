"""Which generation parameters each loader applies (the Parameters tab reports the rest).

Derived from what each registered backend declares (``BackendInfo.params``), so a new backend
appears here without an edit.
"""

from __future__ import annotations

from webui.engine.registry import backend_info, loader_names
from webui.generation.params import GenerationParams

ALL_PARAMS = frozenset(GenerationParams.model_fields) - {"samplers"}
# Handled by the engine/chat layer for every backend, whatever the backend declares.
ENGINE_PARAMS = frozenset({"stop", "truncation_length", "max_new_tokens"})


def applied(loader: str) -> frozenset[str]:
    """Every parameter that takes effect with ``loader``."""
    return ENGINE_PARAMS | backend_info(loader).params


def unsupported(loader: str | None) -> list[str]:
    """Parameter names the given loader ignores (empty when unknown or no model is loaded)."""
    if not loader or loader not in loader_names():
        return []
    return sorted(ALL_PARAMS - applied(loader))


# Fields SillyTavern's "Text Generation WebUI" type sends that no backend here applies, and why. They are
# accepted (a request never fails for them) and listed back in the X-Ignored-Params response header.
NOT_APPLIED: dict[str, str] = {
    "num_beams": "beam search returns one best sequence at the end; replies here stream token by token",
    "length_penalty": "a beam-search setting (see num_beams)",
    "early_stopping": "a beam-search setting (see num_beams)",
    "penalty_alpha": "contrastive search was removed from transformers 5 and llama.cpp never had it",
    "grammar_string": "constrained decoding (GBNF) is not built yet",
    "json_schema": "constrained decoding (JSON schema) is not built yet",
    "max_tokens_second": "a speed cap for slow readers; replies are streamed as fast as they are made",
    "min_keep": "every truncation sampler here keeps at least one token; a larger floor is not offered",
    "skew": "a TabbyAPI/exllama sampler with no llama.cpp or transformers equivalent",
    "adaptive_target": "llama.cpp's adaptive-p sampler is not wired yet",
    "adaptive_decay": "llama.cpp's adaptive-p sampler is not wired yet",
    "speculative_ngram": "a TabbyAPI setting",
    "rep_pen_slope": "a KoboldCpp setting with no equivalent in text-generation-webui's samplers",
    "repetition_decay": "a TabbyAPI setting",
    "rep_pen_size": "a KoboldCpp setting",
    "num_ctx": "the context size is the loaded model's (Model tab or --n-ctx), not a per-request value",
    "include_reasoning": "replies are returned as the model writes them (no reasoning split)",
    "dynatemp_range": "dynatemp_low/dynatemp_high say the same",
    "api_type": "SillyTavern's own setting, not a sampler",
    "api_server": "SillyTavern's own setting, not a sampler",
    "legacy_api": "SillyTavern's own setting, not a sampler",
    "bypass_status_check": "SillyTavern's own setting, not a sampler",
    "n_probs": "llama-server's logprobs; send logprobs",
    "cache_prompt": "the prompt cache is always on (llama.cpp)",
}
# Applied by one local backend only, and why the other cannot.
BACKEND_LIMITS: dict[str, str] = {
    "guidance_scale": "llama.cpp: classifier-free guidance needs the model run on the negative prompt beside the "
                      "prompt; only transformers does that (UnbatchedClassifierFreeGuidanceLogitsProcessor)",
    "negative_prompt": "llama.cpp: see guidance_scale",
    "banned_strings": "transformers: generate() cannot take tokens back, and a banned string is only known once "
                      "written; llama.cpp rewinds and bans the token there",
}
