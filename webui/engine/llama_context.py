"""Reusing llama.cpp's KV cache across requests, so a long chat is not read again every turn.

Three mechanisms, tried in this order by ``load_prompt`` before the new tokens are evaluated:

1. **Prefix reuse** (exact): the tokens the context already holds that the new prompt starts with
   are kept; only the rest is evaluated.
2. **Saved states** (exact): after each reply the context's KV cache is saved, keyed by its tokens
   (llama-cpp-python's ``LlamaRAMCache``: least recently used first out, within a byte budget). A
   prompt that shares a longer beginning with a saved state than with the live context (another
   chat, another API client) restores that state instead of reading its chat again.
3. **Context shift** (an approximation): when a chat outgrows the context, the prompt builder drops
   its oldest turns, so the prompt's beginning changes. If the cached tokens still hold the rest of
   the new prompt further on, the dropped turns are removed from the KV cache and the tokens after
   them are moved back (``llama_memory_seq_rm`` + ``llama_memory_seq_add``, as llama-server and
   KoboldCpp's ContextShift do), so only the new turn is evaluated. The kept tokens' keys and values
   were computed while the dropped turns were still visible, so a reply can differ from one computed
   from scratch on the same visible prompt; bench/context_reuse.py measures how often. Everything
   computed after them leans on them, so the approximation stays in the cache (and in the states saved
   from it) until that part is read again: ``PromptStates`` remembers from which position each cache
   is approximate, and ``LoadReport.approximate`` says whether a prompt reused such tokens (the chat
   marks those replies).

The text the model is given is the one ``show prompt`` and ``/v1/internal/chat-prompt`` show in
every case; only how much of it is read again changes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PROBE = 8  # tokens matched to find where the new prompt's rest sits in the cache
MIN_SHIFT_REUSE = 32  # a shift that saves fewer tokens than this is not worth the approximation


@dataclass(frozen=True)
class Shift:
    """A context shift: keep ``keep`` tokens, remove the next ``drop``, move the ``reuse`` after them back."""

    keep: int
    drop: int
    reuse: int


def common_prefix(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> int:
    """How many tokens ``a`` and ``b`` share at their start."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differs = np.nonzero(np.asarray(a[:n]) != np.asarray(b[:n]))[0]
    return int(differs[0]) if differs.size else n


def plan_shift(cached: Sequence[int] | np.ndarray, new: Sequence[int], *,
               min_reuse: int = MIN_SHIFT_REUSE) -> Shift | None:
    """The shift that lets ``new`` reuse the most of ``cached`` beyond their common beginning, if any
    reuses at least ``min_reuse`` tokens (None otherwise)."""
    cached = np.asarray(cached, dtype=np.int64)
    new_arr = np.asarray(new, dtype=np.int64)
    keep = common_prefix(cached, new_arr)
    rest = new_arr[keep:]
    if len(rest) < max(min_reuse, PROBE) or len(cached) - keep <= PROBE:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(cached[keep + 1:], PROBE)
    starts = np.nonzero((windows == rest[:PROBE]).all(axis=1))[0] + keep + 1
    best: Shift | None = None
    for start in starts:
        reuse = common_prefix(cached[start:], rest)
        if best is None or reuse > best.reuse:
            best = Shift(keep=keep, drop=int(start) - keep, reuse=reuse)
    if best is None or best.reuse < min_reuse:
        return None
    # at least the prompt's last token is evaluated again, for its logits
    return Shift(best.keep, best.drop, min(best.reuse, len(new_arr) - 1 - keep))


def can_shift(llm: Any) -> bool:
    """Whether this context's memory supports moving positions (not every architecture's does)."""
    import llama_cpp

    memory = llm._ctx.memory
    return memory is not None and bool(llama_cpp.llama_memory_can_shift(memory))


def apply_shift(llm: Any, shift: Shift) -> None:
    """Remove the dropped tokens from the KV cache and move the reused ones back by ``shift.drop``."""
    ctx, keep, drop, reuse = llm._ctx, shift.keep, shift.drop, shift.reuse
    ctx.kv_cache_seq_rm(0, keep, keep + drop)
    ctx.kv_cache_seq_shift(0, keep + drop, keep + drop + reuse, -drop)
    ctx.kv_cache_seq_rm(0, keep + reuse, -1)
    llm.input_ids[keep:keep + reuse] = llm.input_ids[keep + drop:keep + drop + reuse].copy()
    llm.n_tokens = keep + reuse


class PromptStates:
    """Saved KV states of sequence 0, keyed by their tokens, within ``capacity_bytes`` (LRU).

    Only the KV cache is saved (``llama_state_seq_get_data``), not the logits: ``load_prompt``
    always evaluates at least the prompt's last token again."""

    def __init__(self, capacity_bytes: int) -> None:
        from llama_cpp import LlamaRAMCache

        self.capacity_bytes = capacity_bytes
        self._cache = LlamaRAMCache(capacity_bytes)
        # from which position a context shift made the KV cache approximate (None: exact throughout):
        # the live context's, and each saved state's by its key
        self.live_approximate_from: int | None = None
        self._approximate_from: dict[tuple[int, ...], int] = {}

    def __len__(self) -> int:
        return len(self._cache.cache_state)

    def clear(self) -> None:
        self._cache.cache_state.clear()
        self._approximate_from.clear()

    def save(self, llm: Any) -> None:
        """Keep the context's current state (a state it extends is dropped: it is superseded)."""
        import llama_cpp
        from llama_cpp.llama import LlamaState

        n = int(llm.n_tokens)
        if self.capacity_bytes <= 0 or n == 0:
            return
        size = int(llama_cpp.llama_state_seq_get_size(llm._ctx.ctx, 0))
        if size > self.capacity_bytes:
            return
        buf = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(llm._ctx.ctx, buf, size, 0))
        if written <= 0:
            return
        key = tuple(int(t) for t in llm.input_ids[:n])
        for old in [k for k in self._cache.cache_state if len(k) <= n and key[:len(k)] == k]:
            del self._cache.cache_state[old]
        state = LlamaState(input_ids=llm.input_ids[:n].copy(), scores=np.empty((0, 0), dtype=np.single), n_tokens=n,
                           llama_state=bytes(buf)[:written], llama_state_size=written, seed=0)
        self._cache[key] = state
        self._approximate_from.pop(key, None)
        if self.live_approximate_from is not None:
            self._approximate_from[key] = self.live_approximate_from
        for gone in [k for k in self._approximate_from if k not in self._cache.cache_state]:  # evicted
            del self._approximate_from[gone]

    def states(self) -> list[Any]:
        """The saved states (llama-cpp-python ``LlamaState`` objects), least recently used first."""
        return list(self._cache.cache_state.values())

    def restore(self, llm: Any, state: Any) -> bool:
        """Load ``state`` into the context (False, and an empty context, if llama.cpp refuses it)."""
        import llama_cpp

        key = tuple(int(t) for t in state.input_ids)
        if key in self._cache.cache_state:
            self._cache.cache_state.move_to_end(key)
        llama_cpp.llama_memory_clear(llm._ctx.memory, True)
        src = (ctypes.c_uint8 * state.llama_state_size).from_buffer_copy(state.llama_state)
        if int(llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, src, state.llama_state_size, 0)) == 0:
            llm.reset()
            return False
        llm.input_ids[:state.n_tokens] = state.input_ids
        llm.n_tokens = state.n_tokens
        self.live_approximate_from = self._approximate_from.get(key)
        return True


@dataclass(frozen=True)
class _Start:
    """One way to start: from the live context or a saved state, as is or shifted."""

    usable: int  # prompt tokens whose KV cache is reused
    state: Any = None  # a saved state to restore first (None: the live context)
    shift: Shift | None = None


def _best_start(llm: Any, tokens: Sequence[int], states: PromptStates | None, shift: bool) -> _Start:
    """The start that reuses the most of the prompt; the live context wins ties, then exact reuse."""
    limit = len(tokens) - 1
    sources = [(None, llm.input_ids[:llm.n_tokens])]
    if states is not None:
        sources += [(state, state.input_ids) for state in reversed(states.states())]  # most recent first
    best = _Start(0)
    for state, cached in sources:
        exact = min(common_prefix(cached, tokens), limit)
        if exact > best.usable:
            best = _Start(exact, state)
        plan = plan_shift(cached, tokens) if shift else None
        if plan is not None and plan.keep + plan.reuse > max(best.usable, exact):
            best = _Start(plan.keep + plan.reuse, state, plan)
    return best


@dataclass
class LoadReport:
    """How a prompt was loaded: tokens reused (and how), tokens evaluated."""

    prompt_tokens: int
    reused: int
    evaluated: int
    restored: bool = False  # from a saved state
    shifted: int = 0  # tokens removed from the cache by a context shift
    # the reused KV cache holds tokens computed after a context shift (this one or an earlier one):
    # the reply may differ from a fresh read of the same prompt
    approximate: bool = False


def load_prompt(llm: Any, tokens: Sequence[int], states: PromptStates | None = None, *,
                shift: bool = True) -> LoadReport:
    """Evaluate ``tokens``, reusing as much KV cache as the mechanisms above allow, from the live
    context or a saved state (at least the last token is evaluated again, for its logits)."""
    start = _best_start(llm, tokens, states, shift and can_shift(llm))
    prefix, restored, shifted = start.usable, False, 0
    if start.state is not None:
        restored = states is not None and states.restore(llm, start.state)
        if not restored:
            prefix = 0
    approximate_from = states.live_approximate_from if states is not None else None
    if start.shift is not None and (restored or start.state is None):
        apply_shift(llm, start.shift)
        shifted = start.shift.drop
        approximate_from = min(start.shift.keep, approximate_from if approximate_from is not None else len(tokens))
    if prefix > 0 and llm._ctx.kv_cache_seq_rm(-1, prefix, -1):
        llm.n_tokens = prefix
    else:
        llm.reset()
        prefix = 0
    approximate = approximate_from is not None and prefix > approximate_from
    if states is not None:  # the rest is read now: exact, unless it follows approximate tokens
        states.live_approximate_from = approximate_from if approximate else None
    llm.eval(list(tokens[prefix:]))
    return LoadReport(prompt_tokens=len(tokens), reused=prefix, evaluated=len(tokens) - prefix, restored=restored,
                      shifted=shifted, approximate=approximate)
