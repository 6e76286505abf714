"""Generation parameters shared by every backend, the UI and the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
        default_factory=dict, description="parameters of extension samplers (e.g. dry_multiplier), by name"
    )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


# What the local decoding path applies, the same on llama.cpp and transformers: the samplers through each
# library, and the penalties, no_repeat_ngram_size and ban_eos_token through our own processor
# (webui.generation.penalties), so they mean the same on both. Each local backend declares this set.
LOCAL_DECODING_PARAMS = frozenset({
    "temperature", "top_p", "top_k", "min_p", "typical_p", "seed", "logit_bias", "ban_eos_token",
    "repetition_penalty", "repetition_penalty_range", "presence_penalty", "frequency_penalty",
    "no_repeat_ngram_size",
})
