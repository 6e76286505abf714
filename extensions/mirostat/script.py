"""Mirostat v2, as a sampler extension.

Keeps the surprise (-log2 p) of the generated text near a target ``mirostat_tau``: at each step
tokens whose surprise exceeds ``mu`` are removed (the most likely one always stays), and after
the token is chosen ``mu -= mirostat_eta * (observed_surprise - tau)``, where the observed
surprise is measured on the truncated, renormalised distribution. ``mu`` starts at ``2 * tau``.

Unlike implementations that sample inside the processor, this one only truncates, and reads the
token actually chosen from ``input_ids`` at the next step, so the engine's sampler still draws
the token. Mirostat is meant to replace top-k/top-p: leave those neutral while it is on.
Algorithm: Basu et al. 2020, as in llama.cpp's ``mirostat_v2`` sampler. On when
``mirostat_mode`` is 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from webui.plugins import SamplerSpec, sampler_param

params = {"display_name": "Mirostat v2"}


class MirostatV2LogitsProcessor:
    """Truncates to tokens with surprise <= mu; one instance per generation (it keeps mu)."""

    def __init__(self, tau: float, eta: float) -> None:
        self.tau = tau
        self.eta = eta
        self.mu: list[float] | None = None
        self._previous_log2: Any = None  # (batch, vocab) log2-probs of the last truncation

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.mu is None:
            self.mu = [2.0 * self.tau] * scores.shape[0]
        if self._previous_log2 is not None and input_ids.shape[-1] > 0:
            self.observe(input_ids[:, -1].tolist())
        log2_probs = torch.log_softmax(scores.float(), dim=-1) / math.log(2)
        mu = torch.tensor(self.mu, dtype=log2_probs.dtype).unsqueeze(-1)
        keep = -log2_probs <= mu
        keep.scatter_(-1, scores.argmax(dim=-1, keepdim=True), True)
        truncated = scores.masked_fill(~keep, float("-inf"))
        self._previous_log2 = torch.log_softmax(truncated.float(), dim=-1) / math.log(2)
        return truncated

    def observe(self, chosen: list[int]) -> None:
        """Update mu from the tokens chosen after the previous call."""
        assert self.mu is not None
        for row, token in enumerate(chosen):
            surprise = -float(self._previous_log2[row, token])
            if math.isfinite(surprise):  # a token outside the kept set: nothing to learn
                self.mu[row] -= self.eta * (surprise - self.tau)


def make_processor(params: Mapping[str, Any]) -> MirostatV2LogitsProcessor:
    return MirostatV2LogitsProcessor(params["mirostat_tau"], params["mirostat_eta"])


def register_samplers() -> list[SamplerSpec]:
    """The Mirostat v2 sampler and its parameters (names as in text-generation-webui)."""
    return [SamplerSpec(
        name="mirostat",
        factory=make_processor,
        description="Adapts truncation so the text's surprise stays near tau (Mirostat v2).",
        is_active=lambda p: p["mirostat_mode"] == 2,
        params=(
            sampler_param("mirostat_mode", 0, choices=[0, 2], label="Mirostat mode",
                          info="2 turns Mirostat v2 on; 0 is off"),
            sampler_param("mirostat_tau", 5.0, min=0.0, max=10.0, step=0.01,
                          label="Mirostat tau", info="Target surprise in bits"),
            sampler_param("mirostat_eta", 0.1, min=0.0, max=1.0, step=0.01,
                          label="Mirostat eta", info="Learning rate of mu"),
        ),
    )]
