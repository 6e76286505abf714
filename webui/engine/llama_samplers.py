"""llama.cpp's own sampler chain for ``GenerationParams``, built through llama-cpp-python's low-level API.

Every parameter llama.cpp has a sampler for runs natively (C++, no Python per token):

=========================================  =====================================================
logit_bias, ban_eos_token, custom_token_bans ``llama_sampler_init_logit_bias`` (bans are -inf)
repetition/presence/frequency penalties    a Python stage with the shared numpy rules (faster than
                                           llama.cpp's ``penalties`` over a full vocabulary: see
                                           ``_add_penalties``)
dry_*                                      ``llama_sampler_init_dry`` over prompt + reply
top_n_sigma, top_k, typical_p, top_p,      ``_top_n_sigma``, ``_top_k``, ``_typical``, ``_top_p``,
min_p, xtc_*                               ``_min_p``, ``_xtc``
temperature / dynamic_temperature          ``_temp`` / ``_temp_ext``
mirostat_mode 1 / 2                        ``_mirostat`` / ``_mirostat_v2`` (instead of ``_dist``)
temperature 0 or do_sample false           ``_greedy``
=========================================  =====================================================

Python stages (``llama_sampler_init`` with a Python ``apply``) run only when a request asks for what
llama.cpp lacks: no_repeat_ngram_size, encoder_repetition_penalty, min_tokens, per-position bans of
``banned_strings``, and the extensions' logits processors, in one stage right after the penalties
(where the candidates are still the whole vocabulary in id order); top_a, tfs, epsilon/eta cutoff
and smoothing as stages among the truncation samplers, in ``sampler_priority`` order.

Default order (no ``sampler_priority``): bias, penalties, DRY, Python stage, top_n_sigma, top_k,
typical_p, top_p, min_p, epsilon, eta, tfs, top_a, xtc, smoothing, temperature, then dist: llama.cpp's
temperature-last order, as llama-cpp-python's ``create_completion`` had it.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from webui.generation import logit_rules
from webui.generation.params import GenerationParams
from webui.generation.penalties import PenaltyConfig, SequencePenalties

# A Python stage: (logits view, token ids view) of the current candidates; changes logits in place.
Stage = Callable[[np.ndarray, np.ndarray], None]

# text-generation-webui's sampler_priority names -> this chain's truncation stages
PRIORITY_NAMES = {
    "top_n_sigma": "top_n_sigma", "top_k": "top_k", "typical_p": "typical_p", "top_p": "top_p", "min_p": "min_p",
    "epsilon_cutoff": "epsilon_cutoff", "eta_cutoff": "eta_cutoff", "tfs": "tfs", "top_a": "top_a", "xtc": "xtc",
    "quadratic_sampling": "smoothing", "temperature": "temperature", "dynamic_temperature": "temperature",
}
DEFAULT_ORDER = ("top_n_sigma", "top_k", "typical_p", "top_p", "min_p", "epsilon_cutoff", "eta_cutoff", "tfs",
                 "top_a", "xtc", "smoothing", "temperature")


def stage_order(params: GenerationParams) -> list[str]:
    """The truncation stages in the order ``sampler_priority`` asks (unknown names are ignored,
    missing ones follow in the default order); ``temperature_last`` moves temperature to the end."""
    order: list[str] = []
    for name in params.sampler_priority:
        stage = PRIORITY_NAMES.get(name)
        if stage is not None and stage not in order:
            order.append(stage)
    order += [s for s in DEFAULT_ORDER if s not in order]
    if params.temperature_last:
        order = [s for s in order if s != "temperature"] + ["temperature"]
    return order


_TOKEN_DTYPE = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


@dataclass
class SamplerChain:
    """An owned ``llama_sampler`` chain; ``sample()`` draws and accepts the next token. Free it after use."""

    chain: Any
    keep: list[Any] = field(default_factory=list)  # ctypes callbacks and structs the C side points to
    native: list[str] = field(default_factory=list)  # what was added, in order (for tests and the docs)
    error: BaseException | None = None  # raised by a Python stage (ctypes cannot carry it through C)

    def add(self, name: str, sampler: Any) -> None:
        import llama_cpp

        llama_cpp.llama_sampler_chain_add(self.chain, sampler)
        self.native.append(name)

    def add_stage(self, name: str, stage: Stage, accept: Callable[[int], None] | None = None) -> None:
        """A Python stage, as a llama_sampler allocated by llama.cpp (so the chain may free it).
        ``accept``: told each token the chain picks."""
        import llama_cpp

        def apply(_smpl: Any, cur_p: Any) -> None:
            arr = cur_p.contents
            n = int(arr.size)
            if n == 0:
                return
            buf = (llama_cpp.llama_token_data * n).from_address(ctypes.addressof(arr.data.contents))
            rec = np.frombuffer(buf, dtype=_TOKEN_DTYPE)
            try:
                stage(rec["logit"], rec["id"])
            except BaseException as exc:  # noqa: BLE001 - re-raised by sample(), on the Python side
                self.error = self.error or exc
            arr.sorted = False  # the stage may have changed the order; later samplers sort again

        iface = llama_cpp.llama_sampler_i()
        name_fn = llama_cpp.llama_sampler_i_name(lambda _s: b"webui-" + name.encode())
        apply_fn = llama_cpp.llama_sampler_i_apply(apply)
        iface.name = name_fn
        iface.apply = apply_fn
        self.keep += [iface, name_fn, apply_fn]
        if accept is not None:
            accept_fn = llama_cpp.llama_sampler_i_accept(lambda _s, token: accept(int(token)))
            iface.accept = accept_fn
            self.keep.append(accept_fn)
        self.add("py:" + name, llama_cpp.llama_sampler_init(ctypes.pointer(iface), None))

    def sample(self, ctx: Any) -> int:
        import llama_cpp

        token = int(llama_cpp.llama_sampler_sample(self.chain, ctx, -1))
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return token

    def free(self) -> None:
        import llama_cpp

        if self.chain is not None:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None


@dataclass
class ChainInputs:
    """What the chain needs besides the parameters."""

    n_vocab: int
    n_ctx: int
    vocab: Any  # the model's llama_vocab pointer (DRY tokenizes its breakers)
    seed: int
    prompt_ids: Sequence[int]  # the context so far: the prompt and the reply's tokens (penalties, DRY)
    reply_ids: Sequence[int] = ()  # the reply's tokens so far (presence/frequency count only these)
    eog_ids: Sequence[int] = ()
    prep: Stage | None = None  # the full-vocabulary Python stage (see module doc); None: not needed


def _bias_sampler(n_vocab: int, bias: dict[int, float]) -> Any:
    import llama_cpp

    arr = (llama_cpp.llama_logit_bias * len(bias))()
    for i, (token, value) in enumerate(bias.items()):
        arr[i].token = token
        arr[i].bias = value
    return llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(bias), arr)


def _accept_all(sampler: Any, ids: Sequence[int]) -> Any:
    import llama_cpp

    for token in ids:
        llama_cpp.llama_sampler_accept(sampler, int(token))
    return sampler


def build_chain(params: GenerationParams, inputs: ChainInputs, *, terminal: bool = True) -> SamplerChain:
    """The sampler chain for ``params`` (see the module doc for what goes where). ``terminal`` False
    leaves out the last sampler that picks the token (dist, greedy, mirostat), so that
    ``llama_sampler_apply`` shows the distribution it would draw from (the Logits view)."""
    import llama_cpp

    chain = SamplerChain(llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params()))
    try:
        _add_front(chain, params, inputs)
        if params.greedy:
            if terminal:
                chain.add("greedy", llama_cpp.llama_sampler_init_greedy())
            return chain
        if params.mirostat_mode in (1, 2):
            _add_temperature(chain, params)
            if not terminal:
                return chain
            if params.mirostat_mode == 1:
                sampler = llama_cpp.llama_sampler_init_mirostat(
                    inputs.n_vocab, inputs.seed, params.mirostat_tau, params.mirostat_eta, 100)
            else:
                sampler = llama_cpp.llama_sampler_init_mirostat_v2(
                    inputs.seed, params.mirostat_tau, params.mirostat_eta)
            chain.add(f"mirostat_v{params.mirostat_mode}", sampler)
            return chain
        for stage in stage_order(params):
            _add_truncation(chain, stage, params, inputs)
        if terminal:
            chain.add("dist", llama_cpp.llama_sampler_init_dist(inputs.seed))
    except BaseException:
        chain.free()
        raise
    return chain


def _add_front(chain: SamplerChain, params: GenerationParams, inputs: ChainInputs) -> None:
    """Bias and bans, the penalties, DRY, then the full-vocabulary Python stage."""
    import llama_cpp

    bias = {int(k): float(v) for k, v in params.logit_bias.items()}
    banned = set(params.custom_token_bans) | (set(inputs.eog_ids) if params.ban_eos_token else set())
    bias.update({int(t): float("-inf") for t in banned if 0 <= int(t) < inputs.n_vocab})
    if bias:
        chain.add("logit_bias", _bias_sampler(inputs.n_vocab, bias))
    _add_penalties(chain, params, inputs)
    if params.dry_multiplier > 0:
        breakers = [b.encode("utf-8") for b in params.dry_sequence_breakers if b]
        arr = (ctypes.c_char_p * max(len(breakers), 1))(*breakers)
        chain.keep.append(arr)
        sampler = llama_cpp.llama_sampler_init_dry(
            inputs.vocab, params.dry_multiplier, params.dry_base, params.dry_allowed_length,
            params.dry_penalty_last_n or inputs.n_ctx, arr, len(breakers))
        chain.add("dry", _accept_all(sampler, inputs.prompt_ids))
    if inputs.prep is not None:
        chain.add_stage("processors", inputs.prep)


def _add_penalties(chain: SamplerChain, params: GenerationParams, inputs: ChainInputs) -> None:
    """Repetition, presence and frequency penalties: the shared rules (webui.generation.penalties) as a
    Python stage. llama.cpp's ``penalties`` sampler computes the same values (checked against these
    rules while it was in the chain) but looks every vocabulary entry up in a hash map at each step:
    measured on the embedded model (49k entries, greedy, this 2-core CPU) +0.6 ms a token, against
    +0.15 ms for the numpy rule, which touches only the tokens it penalises."""
    config = PenaltyConfig(
        repetition_penalty=params.repetition_penalty, repetition_range=params.repetition_penalty_range,
        presence_penalty=params.presence_penalty, frequency_penalty=params.frequency_penalty)
    if not config.active:
        return
    state = SequencePenalties(config)
    history = list(inputs.prompt_ids)
    state.update(history[: len(history) - len(inputs.reply_ids)])  # the prompt: presence/frequency skip it
    state.update(history)

    def apply(logits: np.ndarray, ids: np.ndarray) -> None:
        if ids.size == inputs.n_vocab:  # the whole vocabulary in id order (nothing before it reorders)
            state.update(history)
            state.apply(logits)

    chain.add_stage("penalties", apply, accept=history.append)


def _add_temperature(chain: SamplerChain, params: GenerationParams) -> None:
    import llama_cpp

    if params.dynamic_temperature:
        low, high = sorted((params.dynatemp_low, params.dynatemp_high))
        chain.add("temp_ext", llama_cpp.llama_sampler_init_temp_ext(
            (low + high) / 2, (high - low) / 2, params.dynatemp_exponent))
    elif params.temperature != 1.0:
        chain.add("temp", llama_cpp.llama_sampler_init_temp(params.temperature))


def _add_truncation(chain: SamplerChain, stage: str, params: GenerationParams, inputs: ChainInputs) -> None:
    """One truncation stage, if its parameter is not neutral."""
    import llama_cpp

    p = params
    if stage == "temperature":
        _add_temperature(chain, p)
    elif stage == "top_n_sigma" and p.top_n_sigma > 0:
        chain.add("top_n_sigma", llama_cpp.llama_sampler_init_top_n_sigma(p.top_n_sigma))
    elif stage == "top_k" and p.top_k > 0:
        chain.add("top_k", llama_cpp.llama_sampler_init_top_k(p.top_k))
    elif stage == "typical_p" and p.typical_p < 1.0:
        chain.add("typical", llama_cpp.llama_sampler_init_typical(p.typical_p, 1))
    elif stage == "top_p" and p.top_p < 1.0:
        chain.add("top_p", llama_cpp.llama_sampler_init_top_p(p.top_p, 1))
    elif stage == "min_p" and p.min_p > 0:
        chain.add("min_p", llama_cpp.llama_sampler_init_min_p(p.min_p, 1))
    elif stage == "xtc" and p.xtc_probability > 0:
        chain.add("xtc", llama_cpp.llama_sampler_init_xtc(p.xtc_probability, p.xtc_threshold, 1, inputs.seed))
    elif stage == "epsilon_cutoff" and p.epsilon_cutoff > 0:
        chain.add_stage(stage, lambda logits, _ids: logit_rules.epsilon_cutoff(logits, p.epsilon_cutoff))
    elif stage == "eta_cutoff" and p.eta_cutoff > 0:
        chain.add_stage(stage, lambda logits, _ids: logit_rules.eta_cutoff(logits, p.eta_cutoff))
    elif stage == "tfs" and p.tfs < 1.0:
        chain.add_stage(stage, lambda logits, _ids: logit_rules.tail_free(logits, p.tfs))
    elif stage == "top_a" and p.top_a > 0:
        chain.add_stage(stage, lambda logits, _ids: logit_rules.top_a(logits, p.top_a))
    elif stage == "smoothing" and p.smoothing_factor > 0:
        chain.add_stage(stage, lambda logits, _ids: logit_rules.quadratic_smoothing(
            logits, p.smoothing_factor, p.smoothing_curve))
