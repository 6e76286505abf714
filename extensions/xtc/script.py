"""XTC ("Exclude Top Choices"), as a sampler extension.

With probability ``xtc_probability``, when two or more tokens have a probability of at least
``xtc_threshold``, all of them except the least likely one are removed. This steers away from the
most predictable continuations while keeping a viable one. It never removes newline or EOS
(if it would, it leaves the scores alone), so replies can still end.
Follows the original proposal (p-e-w, text-generation-webui PR #6335). Off while the
probability is 0.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from webui.plugins import SamplerContext, SamplerSpec, sampler_param

params = {"display_name": "XTC (exclude top choices)"}


class XTCLogitsProcessor:
    """Masks all but the least likely of the tokens above the threshold (torch tensors)."""

    def __init__(self, threshold: float, probability: float,
                 special_token_ids: list[int] | None = None, seed: int | None = None) -> None:
        self.threshold = threshold
        self.probability = probability
        self.special_token_ids = list(special_token_ids or [])
        self.rng = random.Random(seed)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        # random() is in [0, 1): probability 0 never fires, 1 always does.
        if self.rng.random() >= self.probability:
            return scores
        sorted_logits, sorted_indices = torch.sort(scores, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        remove_sorted = torch.zeros_like(probs, dtype=torch.bool)
        # Position i is removed when position i+1 also meets the threshold: that marks every
        # token above the threshold except the least likely of them.
        remove_sorted[..., :-1] = probs[..., 1:] >= self.threshold
        remove = remove_sorted.scatter(-1, sorted_indices, remove_sorted)
        if self.special_token_ids and remove[..., self.special_token_ids].any():
            return scores
        return scores.masked_fill(remove, float("-inf"))


def make_processor(params: Mapping[str, Any], ctx: SamplerContext) -> XTCLogitsProcessor:
    special = []
    if ctx.encode is not None:
        newline = ctx.encode("\n")
        if newline:
            special.append(newline[-1])
    if ctx.eos_token_id is not None:
        special.append(ctx.eos_token_id)
    return XTCLogitsProcessor(params["xtc_threshold"], params["xtc_probability"], special, ctx.seed)


def register_samplers() -> list[SamplerSpec]:
    """The XTC sampler and its parameters (names as in text-generation-webui / llama.cpp)."""
    return [SamplerSpec(
        name="xtc",
        factory=make_processor,
        description="Sometimes removes the most likely tokens, keeping the least likely of those "
                    "above the threshold.",
        is_active=lambda p: p["xtc_probability"] > 0,
        params=(
            sampler_param("xtc_threshold", 0.1, min=0.0, max=0.5, step=0.01,
                          label="XTC threshold",
                          info="Tokens at least this likely are candidates for removal"),
            sampler_param("xtc_probability", 0.0, min=0.0, max=1.0, step=0.01,
                          label="XTC probability",
                          info="Chance that XTC acts on a token; 0 disables it"),
        ),
    )]
