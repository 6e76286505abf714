"""What the transformers backend hands ``model.generate()`` for ``GenerationParams``.

transformers' own processors wherever it has one: temperature, top_k, top_p, min_p, typical_p,
epsilon/eta cutoff (``EpsilonLogitsWarper``, ``EtaLogitsWarper``), repetition penalty,
no_repeat_ngram, encoder repetition penalty, ``suppress_tokens`` (ban EOS, custom_token_bans),
``min_new_tokens``, and classifier-free guidance with the negative prompt
(``UnbatchedClassifierFreeGuidanceLogitsProcessor``). Small processors here for what it lacks: top_a,
tail-free, quadratic smoothing, dynamic temperature, top-n-sigma, DRY, XTC and Mirostat (v2; mode 1
runs v2 too).

Order: with neutral ``sampler_priority`` and ``temperature_last`` off, and none of ours active,
transformers orders its own warpers (temperature first). Otherwise the whole sampling pipeline is
built here in text-generation-webui's order (or ``sampler_priority``'s) and transformers' warpers
are left neutral.

Log-probabilities: ``LogprobRecorder`` reads the model's raw logits of each step from the output
layer (a forward hook), so they are the model's, before any processor, as on llama.cpp.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from webui.engine.protocol import TokenLogprob
from webui.generation.params import GenerationParams

# text-generation-webui's default sampler_priority (the warpers; penalties always come first)
HF_ORDER = ("top_n_sigma", "temperature", "quadratic_sampling", "top_k", "top_p", "typical_p", "epsilon_cutoff",
            "eta_cutoff", "tfs", "top_a", "min_p", "mirostat", "xtc")
ALIASES = {"dynamic_temperature": "temperature"}


def _neg_inf(scores: Any) -> float:
    return float("-inf")


class TopA:
    def __init__(self, a: float) -> None:
        self.a = a

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        probs = scores.softmax(dim=-1)
        limit = self.a * probs.max(dim=-1, keepdim=True).values ** 2
        remove = probs < limit
        remove.scatter_(-1, scores.argmax(dim=-1, keepdim=True), False)
        return scores.masked_fill(remove, _neg_inf(scores))


class TailFree:
    def __init__(self, z: float) -> None:
        self.z = z

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        sorted_logits, order = torch.sort(scores, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        d2 = probs.diff(dim=-1).diff(dim=-1).abs()
        cdf = (d2 / d2.sum(dim=-1, keepdim=True).clamp_min(1e-12)).cumsum(dim=-1)
        remove_sorted = cdf > self.z
        ones = torch.ones_like(remove_sorted[..., :1])
        remove_sorted = torch.cat([~ones, remove_sorted, ones], dim=-1)
        remove_sorted[..., 0] = False
        remove = remove_sorted.scatter(-1, order, remove_sorted)
        return scores.masked_fill(remove, _neg_inf(scores))


class QuadraticSmoothing:
    def __init__(self, factor: float, curve: float) -> None:
        self.factor, self.curve = factor, curve

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        top = scores.max(dim=-1, keepdim=True).values
        diff = scores - top
        k, s = (3 - self.curve) / 2, (self.curve - 1) / 2
        bent = -(k * self.factor * diff**2) + (s * self.factor * diff**3) + top
        return torch.where(torch.isfinite(scores), bent, scores)


class DynamicTemperature:
    """Temperature between low and high by the normalised entropy (``exponent`` shapes the curve)."""

    def __init__(self, low: float, high: float, exponent: float) -> None:
        self.low, self.high, self.exponent = low, high, exponent

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        probs = scores.float().softmax(dim=-1)
        logp = probs.clamp_min(1e-30).log()
        entropy = -(probs * logp).sum(dim=-1, keepdim=True)
        finite = scores.isfinite().sum(dim=-1, keepdim=True).clamp_min(2).float()
        normalized = (entropy / finite.log()).clamp(0, 1)
        temperature = self.low + (self.high - self.low) * normalized.pow(self.exponent)
        return scores / temperature.clamp_min(1e-4).to(scores.dtype)


class TopNSigma:
    def __init__(self, n: float) -> None:
        self.n = n

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        finite = scores.isfinite()
        values = scores.masked_fill(~finite, 0.0)
        count = finite.sum(dim=-1, keepdim=True).clamp_min(1)
        mean = values.sum(dim=-1, keepdim=True) / count
        std = (((values - mean) ** 2) * finite).sum(dim=-1, keepdim=True).div(count).sqrt()
        limit = scores.max(dim=-1, keepdim=True).values - self.n * std
        return scores.masked_fill(scores < limit, _neg_inf(scores))


class XTC:
    """With probability p, removes every token above the threshold but the least likely of them."""

    def __init__(self, threshold: float, probability: float, seed: int | None) -> None:
        self.threshold, self.probability = threshold, probability
        self.rng = random.Random(seed)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.rng.random() >= self.probability:
            return scores
        sorted_logits, order = torch.sort(scores, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        remove_sorted = torch.zeros_like(probs, dtype=torch.bool)
        remove_sorted[..., :-1] = probs[..., 1:] >= self.threshold
        return scores.masked_fill(remove_sorted.scatter(-1, order, remove_sorted), _neg_inf(scores))


class MirostatV2:
    """Truncates to tokens whose surprise is at most mu; mu follows the observed surprise toward tau."""

    def __init__(self, tau: float, eta: float) -> None:
        self.tau, self.eta = tau, eta
        self.mu = 2 * tau
        self._log2: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._log2 is not None:
            surprise = -float(self._log2[0, int(input_ids[0, -1])])
            if math.isfinite(surprise):
                self.mu -= self.eta * (surprise - self.tau)
        log2 = torch.log_softmax(scores.float(), dim=-1) / math.log(2)
        keep = -log2 <= self.mu
        keep.scatter_(-1, scores.argmax(dim=-1, keepdim=True), True)
        out = scores.masked_fill(~keep, _neg_inf(scores))
        self._log2 = torch.log_softmax(out.float(), dim=-1) / math.log(2)
        return out


class DRY:
    """DRY: a token that would extend a repeat of at least ``allowed`` tokens loses
    ``multiplier * base ** (length - allowed)``; sequence breakers end a match."""

    def __init__(self, multiplier: float, base: float, allowed: int, breakers: set[int], last_n: int) -> None:
        self.multiplier, self.base, self.allowed = multiplier, base, allowed
        self.breakers, self.last_n = breakers, last_n

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        for row, ids in enumerate(input_ids.tolist()):
            ids = ids[-self.last_n:] if self.last_n > 0 else ids
            for token, length in self.match_lengths(ids).items():
                if length >= self.allowed:
                    scores[row, token] -= self.multiplier * self.base ** min(length - self.allowed, 50)
        return scores

    def match_lengths(self, ids: list[int]) -> dict[int, int]:
        lengths: dict[int, int] = {}
        if not ids or ids[-1] in self.breakers:
            return lengths
        last = ids[-1]
        for i in range(len(ids) - 1):
            if ids[i] != last or ids[i + 1] in self.breakers:
                continue
            length = 1
            while length < 50 and i - length >= 0:
                previous = ids[-(length + 1)]
                if ids[i - length] != previous or previous in self.breakers:
                    break
                length += 1
            lengths[ids[i + 1]] = max(length, lengths.get(ids[i + 1], 0))
        return lengths


def dry_breaker_ids(tokenizer: Any, breakers: list[str]) -> set[int]:
    """The last token of each breaker, encoded after a letter (the in-text form)."""
    out: set[int] = set()
    for text in breakers:
        ids = tokenizer("a" + text, add_special_tokens=False)["input_ids"]
        if ids:
            out.add(int(ids[-1]))
    return out


def own_warpers_active(p: GenerationParams) -> bool:
    """Whether the sampling pipeline is built here (see the module doc)."""
    return bool(p.sampler_priority or p.temperature_last or p.dynamic_temperature or p.smoothing_factor > 0
                or p.top_a > 0 or p.tfs < 1 or p.top_n_sigma > 0 or p.xtc_probability > 0 or p.mirostat_mode)


def warper_order(p: GenerationParams) -> list[str]:
    order: list[str] = []
    for name in p.sampler_priority:
        name = ALIASES.get(name, name)
        if name in HF_ORDER and name not in order:
            order.append(name)
    order += [n for n in HF_ORDER if n not in order]
    if p.temperature_last:
        order = [n for n in order if n != "temperature"] + ["temperature"]
    return order


def _warper(name: str, p: GenerationParams, seed: int | None) -> Any | None:
    from transformers import (
        EpsilonLogitsWarper,
        EtaLogitsWarper,
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
        TypicalLogitsWarper,
    )

    if name == "temperature":
        if p.dynamic_temperature:
            low, high = sorted((p.dynatemp_low, p.dynatemp_high))
            return DynamicTemperature(low, high, p.dynatemp_exponent)
        return TemperatureLogitsWarper(p.temperature) if p.temperature != 1.0 else None
    table: dict[str, tuple[bool, Any]] = {
        "top_n_sigma": (p.top_n_sigma > 0, lambda: TopNSigma(p.top_n_sigma)),
        "quadratic_sampling": (p.smoothing_factor > 0, lambda: QuadraticSmoothing(p.smoothing_factor,
                                                                                   p.smoothing_curve)),
        "top_k": (p.top_k > 0, lambda: TopKLogitsWarper(p.top_k)),
        "top_p": (p.top_p < 1.0, lambda: TopPLogitsWarper(p.top_p)),
        "typical_p": (p.typical_p < 1.0, lambda: TypicalLogitsWarper(p.typical_p)),
        "epsilon_cutoff": (p.epsilon_cutoff > 0, lambda: EpsilonLogitsWarper(p.epsilon_cutoff * 1e-4)),
        "eta_cutoff": (p.eta_cutoff > 0, lambda: EtaLogitsWarper(p.eta_cutoff * 1e-4)),
        "tfs": (p.tfs < 1.0, lambda: TailFree(p.tfs)),
        "top_a": (p.top_a > 0, lambda: TopA(p.top_a)),
        "min_p": (p.min_p > 0, lambda: MinPLogitsWarper(p.min_p)),
        "mirostat": (p.mirostat_mode > 0, lambda: MirostatV2(p.mirostat_tau, p.mirostat_eta)),
        "xtc": (p.xtc_probability > 0, lambda: XTC(p.xtc_threshold, p.xtc_probability, seed)),
    }
    active, make = table[name]
    return make() if active else None


def sampling_kwargs(p: GenerationParams, seed: int | None) -> tuple[dict[str, Any], list[Any]]:
    """(generate() kwargs, processors to run after the penalties) for the sampling pipeline."""
    if p.greedy:
        return {"do_sample": False}, []
    if not own_warpers_active(p):
        kwargs: dict[str, Any] = {"do_sample": True, "temperature": p.temperature, "top_p": p.top_p,
                                  "top_k": p.top_k or None}
        if p.min_p > 0:
            kwargs["min_p"] = p.min_p
        if p.typical_p < 1:
            kwargs["typical_p"] = p.typical_p
        if p.epsilon_cutoff > 0:
            kwargs["epsilon_cutoff"] = p.epsilon_cutoff * 1e-4
        if p.eta_cutoff > 0:
            kwargs["eta_cutoff"] = p.eta_cutoff * 1e-4
        return kwargs, []
    warpers = [w for w in (_warper(name, p, seed) for name in warper_order(p)) if w is not None]
    return {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0}, warpers


def penalty_kwargs(p: GenerationParams, tokenizer: Any, negative_ids: Any | None) -> tuple[dict[str, Any], list[Any]]:
    """(generate() kwargs, processors) for what is not sampling: min_tokens, encoder repetition,
    guidance with the negative prompt, DRY (bans and the repetition penalties are the backend's)."""
    kwargs: dict[str, Any] = {}
    processors: list[Any] = []
    if p.min_tokens > 0:
        kwargs["min_new_tokens"] = p.min_tokens
    if p.encoder_repetition_penalty != 1.0:
        kwargs["encoder_repetition_penalty"] = p.encoder_repetition_penalty
    if p.guidance_scale != 1.0:
        kwargs["guidance_scale"] = p.guidance_scale
        if negative_ids is not None:
            kwargs["negative_prompt_ids"] = negative_ids
    if p.dry_multiplier > 0:
        processors.append(DRY(p.dry_multiplier, p.dry_base, p.dry_allowed_length,
                              dry_breaker_ids(tokenizer, p.dry_sequence_breakers), p.dry_penalty_last_n))
    return kwargs, processors


class LogprobRecorder:
    """The model's raw next-token log-probabilities of each step, read from the output layer."""

    def __init__(self, tokenizer: Any, top_n: int, skip_special: bool) -> None:
        self.tok, self.top_n, self.skip_special = tokenizer, top_n, skip_special
        self._pending: Any = None

    def hook(self, _module: Any, _inputs: Any, output: Any) -> None:
        if self._pending is None:  # the first forward of a step (guidance runs a second one)
            self._pending = output[0, -1].float().log_softmax(dim=-1).cpu()

    def take(self, token: int) -> TokenLogprob | None:
        import torch

        logprobs, self._pending = self._pending, None
        if logprobs is None:
            return None
        top: list[tuple[str, tuple[int, ...], float]] = []
        if self.top_n:
            values, ids = torch.topk(logprobs, self.top_n)
            for i, v in zip(ids.tolist(), values.tolist()):
                text = self.tok.decode([i])
                top.append((text, tuple(text.encode("utf-8")), float(v)))
        text = self.tok.decode([token], skip_special_tokens=self.skip_special)
        return TokenLogprob(text, float(logprobs[token]), tuple(text.encode("utf-8")), tuple(top))

    @contextmanager
    def attached(self, model: Any) -> Iterator[LogprobRecorder]:
        handle = model.get_output_embeddings().register_forward_hook(self.hook)
        try:
            yield self
        finally:
            handle.remove()


def with_bos(tokenizer: Any, inputs: Any, add: bool) -> Any:
    """``add_bos_token``: True puts the BOS token first when the tokenizer adds one and the prompt
    lacks it; False removes a leading BOS (a chat template's, say)."""
    import torch

    ids = inputs["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is None:
        return inputs
    starts = ids.shape[1] > 0 and int(ids[0, 0]) == bos
    if add and not starts and bos in tokenizer("", add_special_tokens=True)["input_ids"]:
        ids = torch.cat([torch.tensor([[bos]], dtype=ids.dtype, device=ids.device), ids], dim=1)
    elif not add and starts:
        ids = ids[:, 1:]
    else:
        return inputs
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
