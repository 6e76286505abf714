"""Generation parameters shared by every backend, the UI and the API."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class GenerationParams(BaseModel):
    """Sampling and stopping settings for one reply.

    ``extra="forbid"`` so a typo in an API body or preset is an error, not a silent no-op.
    Defaults are the neutral values (no effect) except temperature/top_p, which follow the
    common chat defaults.
    """

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(default=512, ge=1, le=32768)
    temperature: float = Field(default=0.7, ge=0.0, le=5.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    typical_p: float = Field(default=1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.0, gt=0.0, le=5.0)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    repetition_penalty_range: int = Field(default=0, ge=0, description="last N tokens penalised; 0 = all")
    no_repeat_ngram_size: int = Field(default=0, ge=0)
    ban_eos_token: bool = Field(default=False, description="never end the reply on the EOS token")
    truncation_length: int = Field(default=0, ge=0, description="prompt token budget; 0 = the model's context")
    seed: int = Field(default=-1, description="-1 picks a random seed")
    stop: list[str] = Field(default_factory=list, description="Custom stop strings")
    logit_bias: dict[int, float] = Field(
        default_factory=dict, description="token id -> value added to its logit (OpenAI logit_bias, -100..100)"
    )
    samplers: dict[str, Any] = Field(
        default_factory=dict, description="parameters of extension samplers (e.g. my_sampler_strength), by name"
    )
    # -- text-generation-webui's samplers (the names SillyTavern sends); neutral defaults ------------
    do_sample: bool = Field(default=True, description="false: always the most likely token (greedy)")
    temperature_last: bool = Field(default=False, description="apply temperature after the truncation samplers")
    dynamic_temperature: bool = Field(default=False, description="temperature between dynatemp_low and _high by "
                                                                 "the distribution's entropy")
    dynatemp_low: float = Field(default=1.0, ge=0.0, le=5.0)
    dynatemp_high: float = Field(default=1.0, ge=0.0, le=5.0)
    dynatemp_exponent: float = Field(default=1.0, ge=0.01, le=5.0)
    smoothing_factor: float = Field(default=0.0, ge=0.0, le=10.0, description="quadratic sampling; 0 = off")
    smoothing_curve: float = Field(default=1.0, ge=1.0, le=10.0)
    top_a: float = Field(default=0.0, ge=0.0, le=1.0, description="drop tokens below top_a * p_max^2; 0 = off")
    tfs: float = Field(default=1.0, gt=0.0, le=1.0, description="tail-free sampling z; 1 = off")
    epsilon_cutoff: float = Field(default=0.0, ge=0.0, le=9.0, description="in units of 1e-4; 0 = off")
    eta_cutoff: float = Field(default=0.0, ge=0.0, le=20.0, description="in units of 1e-4; 0 = off")
    top_n_sigma: float = Field(default=0.0, ge=0.0, le=10.0, description="keep logits within n std devs of the "
                                                                         "max; 0 = off")
    encoder_repetition_penalty: float = Field(default=1.0, gt=0.0, le=5.0, description="> 1 favours the "
                                                                                       "prompt's tokens")
    min_tokens: int = Field(default=0, ge=0, le=32768, description="end-of-text is banned until this many tokens")
    custom_token_bans: list[int] = Field(default_factory=list, description="token ids never generated "
                                                                           "(a list or '1,2,3')")
    banned_strings: list[str] = Field(default_factory=list, description="text never generated: on a match the "
                                                                        "reply rewinds and bans the token")
    add_bos_token: bool = Field(default=True, description="start the prompt with BOS (when the model wants one)")
    skip_special_tokens: bool = Field(default=True, description="leave special tokens out of the reply's text")
    sampler_priority: list[str] = Field(default_factory=list, description="the truncation samplers' order "
                                                                          "(text-generation-webui names)")
    guidance_scale: float = Field(default=1.0, ge=0.0, le=10.0, description="classifier-free guidance; 1 = off")
    negative_prompt: str = Field(default="", max_length=65536)
    mirostat_mode: int = Field(default=0, ge=0, le=2, description="1 or 2: Mirostat v1/v2 replaces truncation")
    mirostat_tau: float = Field(default=5.0, ge=0.0, le=20.0)
    mirostat_eta: float = Field(default=0.1, ge=0.0, le=1.0)
    dry_multiplier: float = Field(default=0.0, ge=0.0, le=5.0, description="DRY repetition penalty; 0 = off")
    dry_base: float = Field(default=1.75, ge=1.0, le=4.0)
    dry_allowed_length: int = Field(default=2, ge=1, le=50)
    dry_penalty_last_n: int = Field(default=0, ge=0, le=1 << 20, description="tokens scanned; 0 = the context")
    dry_sequence_breakers: list[str] = Field(default_factory=lambda: list(DRY_BREAKERS), description=(
        'strings that end a DRY match: a list, a JSON list, or text-generation-webui\'s "\\n", ":" form'))
    xtc_threshold: float = Field(default=0.1, ge=0.0, le=0.5)
    xtc_probability: float = Field(default=0.0, ge=0.0, le=1.0, description="XTC; 0 = off")
    logprobs: int | None = Field(default=None, ge=0, le=20, description="record each token's log-probability "
                                                                        "and the N most likely (None: off)")

    @field_validator("dry_sequence_breakers", "banned_strings", mode="before")
    @classmethod
    def _string_list(cls, value: Any) -> Any:
        return parse_string_list(value) if isinstance(value, str) else value

    @field_validator("custom_token_bans", mode="before")
    @classmethod
    def _token_ids(cls, value: Any) -> Any:
        if isinstance(value, str):  # text-generation-webui / SillyTavern: "1,2,3"
            parts = [p.strip() for p in value.replace("\n", ",").split(",") if p.strip()]
            try:
                return [int(p) for p in parts]
            except ValueError:
                raise ValueError("custom_token_bans must be token ids separated by commas") from None
        return value

    @field_validator("sampler_priority", mode="before")
    @classmethod
    def _priority(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.replace(",", "\n").splitlines() if p.strip()]
        return value

    @field_validator("sampler_priority")
    @classmethod
    def _priority_names(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in SAMPLER_PRIORITY_NAMES]
        if unknown:
            raise ValueError(f"unknown sampler names {unknown[:5]}; use text-generation-webui's: "
                             f"{', '.join(SAMPLER_PRIORITY_NAMES)}")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or not self.do_sample


DRY_BREAKERS = ("\n", ":", '"', "*")
# text-generation-webui's sampler_priority names (its default order; SillyTavern sends this list)
SAMPLER_PRIORITY_NAMES = (
    "repetition_penalty", "presence_penalty", "frequency_penalty", "dry", "top_n_sigma", "temperature",
    "dynamic_temperature", "quadratic_sampling", "top_k", "top_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
    "tfs", "top_a", "min_p", "mirostat", "xtc", "encoder_repetition_penalty", "no_repeat_ngram",
)


def parse_string_list(text: str) -> list[str]:
    """A list of strings as clients send it: a JSON list (SillyTavern), text-generation-webui's quoted
    comma list (``"\\n", ":"``), or plain comma-separated text (``a,b``); an empty string is an empty list."""
    text = text.strip()
    if not text:
        return []
    for candidate in (text, f"[{text}]"):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return parsed
    return [part for part in text.split(",") if part]


# What the local decoding path applies, the same on llama.cpp and transformers: the samplers through each
# library, and the penalties, no_repeat_ngram_size and ban_eos_token through our own processor
# (webui.generation.penalties), so they mean the same on both. Each local backend declares this set.
LOCAL_DECODING_PARAMS = frozenset({
    "temperature", "top_p", "top_k", "min_p", "typical_p", "seed", "logit_bias", "ban_eos_token",
    "repetition_penalty", "repetition_penalty_range", "presence_penalty", "frequency_penalty",
    "no_repeat_ngram_size",
    # text-generation-webui's samplers: llama.cpp's own sampler chain (webui.engine.llama_samplers) and
    # transformers' processors (webui.generation.hf_samplers); see webui.generation.support for the rest
    "do_sample", "temperature_last", "dynamic_temperature", "dynatemp_low", "dynatemp_high", "dynatemp_exponent",
    "smoothing_factor", "smoothing_curve", "top_a", "tfs", "epsilon_cutoff", "eta_cutoff", "top_n_sigma",
    "encoder_repetition_penalty", "min_tokens", "custom_token_bans", "add_bos_token",
    "skip_special_tokens", "sampler_priority", "mirostat_mode", "mirostat_tau", "mirostat_eta",
    "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n", "dry_sequence_breakers",
    "xtc_threshold", "xtc_probability", "logprobs",
})
# banned_strings rewinds the reply when one appears: llama.cpp's decode loop is ours and can; transformers'
# generate() cannot take tokens back (see webui.generation.support).
REWIND_PARAMS = frozenset({"banned_strings"})
# Classifier-free guidance needs the model run a second time on the negative prompt: transformers does it
# (its UnbatchedClassifierFreeGuidanceLogitsProcessor); llama.cpp does not (see webui.generation.support).
GUIDANCE_PARAMS = frozenset({"guidance_scale", "negative_prompt"})
