"""Avoid words: lowers the logit of the token each listed word starts with, so the model says something else.

A sampler extension written for the tests of the sampler mechanism (``register_samplers``, typed
sampler parameters that become API fields and Parameters-tab sliders, ``SamplerContext.encode``, a
fresh stateful processor per generation). Each word is looked up in two forms: inside running text
(after a space) and at the very start of the reply. ``avoid_from_token`` leaves the first N tokens
of the reply alone (the processor counts them from the prompt length it sees first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from webui.plugins import SamplerContext, SamplerSpec, sampler_param

params = {"display_name": "Avoid words"}


def first_tokens(words: list[str], encode: Callable[[str], list[int]] | None) -> set[int]:
    """The first token of each word, in running text (encoded after "a " and the "a" part removed) and alone."""
    if encode is None:
        return set()
    prefix = encode("a")
    found: set[int] = set()
    for word in (w for w in words if w):
        in_text = encode("a " + word)
        if in_text[:len(prefix)] == prefix and len(in_text) > len(prefix):
            found.add(in_text[len(prefix)])
        alone = encode(word)
        if alone:
            found.add(alone[0])
    return found


class AvoidWords:
    """Subtracts ``penalty`` from the given tokens' logits once ``start_after`` reply tokens exist."""

    def __init__(self, token_ids: set[int], penalty: float, start_after: int) -> None:
        self.token_ids = sorted(token_ids)
        self.penalty = penalty
        self.start_after = start_after
        self.prompt_length: int | None = None  # learned on the first call: processors live for one generation

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.prompt_length is None:
            self.prompt_length = int(input_ids.shape[-1])
        if not self.token_ids or int(input_ids.shape[-1]) - self.prompt_length < self.start_after:
            return scores
        out = scores.clone()
        out[:, self.token_ids] -= self.penalty
        return out


def make_processor(params: Mapping[str, Any], ctx: SamplerContext) -> AvoidWords:
    return AvoidWords(first_tokens(params["avoid_words"], ctx.encode), params["avoid_penalty"],
                      params["avoid_from_token"])


def register_samplers() -> list[SamplerSpec]:
    return [SamplerSpec(
        name="avoid_words",
        factory=make_processor,
        description="Lowers the first token of each listed word.",
        is_active=lambda p: p["avoid_penalty"] > 0 and any(p["avoid_words"]),
        params=(
            sampler_param("avoid_words", [], label="Words to avoid", info="A JSON list of words"),
            sampler_param("avoid_penalty", 0.0, min=0.0, max=100.0, step=0.5, label="Avoid penalty",
                          info="Subtracted from the logit; 0 disables"),
            sampler_param("avoid_from_token", 0, min=0, max=4096, step=1, label="Avoid from token",
                          info="Reply tokens left alone first"),
        ),
    )]
