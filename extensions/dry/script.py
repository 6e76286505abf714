"""DRY ("Don't Repeat Yourself") repetition penalty, as a sampler extension.

When the last tokens of the context repeat an earlier sequence, the token that followed that
earlier sequence would extend the repetition. If the repeated part is at least
``dry_allowed_length`` tokens long, that token's logit is lowered by

    dry_multiplier * dry_base ** (match_length - dry_allowed_length)

Sequence breakers (e.g. newline, ":") end a match, so repeated formatting is not punished.
The algorithm follows the original DRY proposal (p-e-w, text-generation-webui PR #5677).
Off while ``dry_multiplier`` is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webui.plugins import SamplerContext, SamplerSpec, sampler_param

params = {"display_name": "DRY repetition penalty"}

MAX_MATCH_LENGTH = 50  # caps the exponent (and the work on pathological inputs)
DEFAULT_BREAKERS = ["\n", ":", '"', "*"]


class DRYLogitsProcessor:
    """Lowers the logits of tokens that would extend a repeated sequence (torch tensors)."""

    def __init__(self, multiplier: float, base: float, allowed_length: int,
                 sequence_breakers: set[int], penalty_last_n: int = 0) -> None:
        self.multiplier = multiplier
        self.base = base
        self.allowed_length = allowed_length
        self.sequence_breakers = sequence_breakers
        self.penalty_last_n = penalty_last_n

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.penalty_last_n > 0:
            input_ids = input_ids[:, -self.penalty_last_n:]
        scores = scores.clone()
        for row, ids in enumerate(input_ids.tolist()):
            for token, length in self.match_lengths(ids).items():
                if length >= self.allowed_length:
                    scores[row, token] -= self.multiplier * self.base ** (length - self.allowed_length)
        return scores

    def match_lengths(self, ids: list[int]) -> dict[int, int]:
        """For each token that followed an earlier occurrence of the context's ending: the
        longest repeated run it would extend."""
        lengths: dict[int, int] = {}
        if not ids or ids[-1] in self.sequence_breakers:
            return lengths
        last = ids[-1]
        for i in range(len(ids) - 1):  # the last token always matches itself: skip it
            if ids[i] != last:
                continue
            next_token = ids[i + 1]
            if next_token in self.sequence_breakers:
                continue
            length = 1
            while length < MAX_MATCH_LENGTH:
                j = i - length
                if j < 0:
                    break
                previous = ids[-(length + 1)]
                if ids[j] != previous or previous in self.sequence_breakers:
                    break
                length += 1
            lengths[next_token] = max(length, lengths.get(next_token, 0))
        return lengths


def breaker_ids(breakers: list[str], ctx: SamplerContext) -> set[int]:
    """Token ids of the sequence breakers: the last token of each, encoded after a letter so
    that tokenizers which merge a leading space give the in-text form."""
    if ctx.encode is None:
        return set()
    ids = set()
    for text in breakers:
        encoded = ctx.encode("a" + text)
        if encoded:
            ids.add(encoded[-1])
    return ids


def make_processor(params: Mapping[str, Any], ctx: SamplerContext) -> DRYLogitsProcessor:
    return DRYLogitsProcessor(
        multiplier=params["dry_multiplier"], base=params["dry_base"],
        allowed_length=params["dry_allowed_length"],
        sequence_breakers=breaker_ids(params["dry_sequence_breakers"], ctx),
        penalty_last_n=params["dry_penalty_last_n"])


def register_samplers() -> list[SamplerSpec]:
    """The DRY sampler and its parameters (names as in text-generation-webui / llama.cpp)."""
    return [SamplerSpec(
        name="dry",
        factory=make_processor,
        description="Penalizes tokens that would extend a sequence already seen in the context.",
        is_active=lambda p: p["dry_multiplier"] > 0,
        params=(
            sampler_param("dry_multiplier", 0.0, min=0.0, max=5.0, step=0.01,
                          label="DRY multiplier", info="0 disables DRY; 0.8 is a common value"),
            sampler_param("dry_base", 1.75, min=1.0, max=4.0, step=0.01, label="DRY base",
                          info="How fast the penalty grows with the repeated length"),
            sampler_param("dry_allowed_length", 2, min=1, max=20, step=1,
                          label="DRY allowed length",
                          info="Repeats up to this many tokens are not penalized"),
            sampler_param("dry_sequence_breakers", list(DEFAULT_BREAKERS),
                          label="DRY sequence breakers", info="Strings that end a match"),
            sampler_param("dry_penalty_last_n", 0, min=0, max=65536, step=1,
                          label="DRY range", info="Tokens of context scanned; 0 = all"),
        ),
    )]
