"""text-generation-webui's samplers that llama.cpp has no native sampler for, on numpy logits.

Each rule changes a 1-D float32 logit vector in place (removed tokens get ``-inf``) and keeps at
least the most likely token. They run inside llama.cpp's sampler chain as Python stages
(``webui.engine.llama_samplers``) on the candidates left at that point, so they only look at the
values, never at positions: a truncation removes a tail of the distribution and the smoothing is
monotonic, so a sorted candidate list stays sorted. Units and formulas follow text-generation-webui
(``epsilon_cutoff`` and ``eta_cutoff`` are in units of 1e-4). The transformers versions are in
``webui.generation.hf_samplers``.
"""

from __future__ import annotations

import numpy as np

NEG_INF = np.float32(-np.inf)


def softmax(logits: np.ndarray) -> np.ndarray:
    finite = logits[np.isfinite(logits)]
    top = finite.max() if finite.size else 0.0
    e = np.exp(logits.astype(np.float64) - top)
    total = e.sum()
    return e / total if total > 0 else e


def _remove(logits: np.ndarray, mask: np.ndarray) -> None:
    """Set ``mask``'s tokens to -inf, always keeping the most likely one."""
    mask = mask.copy()
    mask[int(np.argmax(logits))] = False
    logits[mask] = NEG_INF


def top_a(logits: np.ndarray, a: float) -> None:
    """Remove tokens with p < a * p_max²."""
    p = softmax(logits)
    _remove(logits, p < a * p.max() ** 2)


def epsilon_cutoff(logits: np.ndarray, epsilon: float) -> None:
    """Remove tokens with p < epsilon (``epsilon`` in units of 1e-4)."""
    _remove(logits, softmax(logits) < epsilon * 1e-4)


def eta_cutoff(logits: np.ndarray, eta: float) -> None:
    """Remove tokens with p < min(eta, sqrt(eta) * exp(-entropy)) (``eta`` in units of 1e-4)."""
    eta *= 1e-4
    p = softmax(logits)
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    _remove(logits, p < min(eta, np.sqrt(eta) * np.exp(-entropy)))


def tail_free(logits: np.ndarray, z: float) -> None:
    """Tail-free sampling: cut where the normalised second derivative of the sorted probabilities
    has accumulated ``z``."""
    if logits.size < 3:
        return
    order = np.argsort(-logits, kind="stable")
    p = softmax(logits)[order]
    d2 = np.abs(np.diff(p, n=2))
    total = d2.sum()
    if total <= 0:
        return
    cdf = np.cumsum(d2 / total)
    remove_sorted = np.concatenate(([False], cdf > z, [True]))
    mask = np.zeros(logits.size, dtype=bool)
    mask[order] = remove_sorted
    _remove(logits, mask)


def quadratic_smoothing(logits: np.ndarray, factor: float, curve: float) -> None:
    """Quadratic sampling ("smoothing"): logits bent around the maximum by ``factor`` (with the cubic
    ``curve`` term); monotonic, so it reorders nothing."""
    finite = np.isfinite(logits)
    if not finite.any():
        return
    top = logits[finite].max()
    diff = logits[finite] - top
    k = (3 - curve) / 2
    s = (curve - 1) / 2
    logits[finite] = -(k * factor * diff**2) + (s * factor * diff**3) + top


def encoder_repetition(logits: np.ndarray, prompt_ids: np.ndarray, penalty: float) -> None:
    """text-generation-webui's ``encoder_repetition_penalty``: the prompt's tokens are favoured
    (penalty > 1) or avoided (< 1), the inverse of the repetition penalty's rule."""
    if prompt_ids.size == 0:
        return
    values = logits[prompt_ids]
    logits[prompt_ids] = np.where(values < 0, values / penalty, values * penalty)
