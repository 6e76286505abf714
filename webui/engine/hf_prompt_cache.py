"""The transformers backend's prompt cache: the KV cache of the last request, reused by the next one
where its tokens start the same way (a chat's next turn, a regenerated reply, an API client resending
the conversation).

One cache per loaded model (``TransformersModel.prompt_cache``): transformers' own ``DynamicCache``,
holding the last request's prompt and reply. The next request keeps the longest common token prefix
(``Cache.crop``), leaves at least one prompt token to compute (generate() needs one to predict from),
and hands it to ``generate()``, which reads only the rest. Only the last request's cache is kept, so
the memory it takes is one context's worth of KV at most; chats taking turns read their prompt again.

Reuse is exact: the cached keys and values are those a fresh read computes for the same tokens at the
same positions. The sampling settings, guidance (its unconditional branch runs on a cache of its own)
and extension processors only choose tokens, which the cache records, so they never make it stale.
What does: other weights (LoRA adapters applied or removed: the model calls ``clear``), another model
(a new ``TransformersModel``, with its own empty cache), and prompts given as embeddings
(tokenizer_modifier's ``inputs_embeds``: those never touch the cache). Models whose cache cannot be
cut back exactly (sliding-window or recurrent layers) or that use a static cache (the *compile*
option) never reuse: ``take`` returns None and generate() builds its own cache.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Shorter common prefixes are read again: cropping costs nothing, but nothing is saved either.
MIN_REUSE = 8


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens ``a`` and ``b`` share from the start."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def cache_kwarg(model: Any) -> str:
    """The name generate() takes a Cache under: ``cache`` in recent transformers (``past_key_values``,
    deprecated there, in earlier 5.x releases)."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def exactly_croppable(cache: Any) -> bool:
    """Whether cutting ``cache`` back leaves exactly the keys and values of the tokens kept (full
    attention layers only: a sliding window forgets, a recurrent state cannot be rewound)."""
    return bool(cache.layers) and not any(cache.is_sliding) and not any(cache.is_linear) and cache.is_croppable


@dataclass
class Reuse:
    """The cache to pass to generate() for one request."""

    cache: Any  # a transformers DynamicCache
    reused: int  # prompt tokens already in it (generate() reads only the ones after them)


class PromptCache:
    """The last request's KV cache on one model, and the tokens it holds. Used on the inference
    worker only (one generation at a time)."""

    def __init__(self, min_reuse: int = MIN_REUSE) -> None:
        self.min_reuse = min_reuse
        self._cache: Any = None
        self._ids: list[int] = []

    @property
    def tokens(self) -> int:
        """How many tokens the kept cache holds (0: none kept)."""
        return len(self._ids)

    def clear(self) -> None:
        """Forget the kept cache (the weights changed, or the model is unloaded)."""
        self._cache, self._ids = None, []

    def take(self, model: Any, ids: list[int]) -> Reuse | None:
        """The cache for a request whose prompt is ``ids``: the kept one cut back to the common prefix
        when that is at least ``min_reuse`` tokens, else a new empty one; None when this model cannot
        reuse a cache. The kept cache leaves the store (generate() extends it in place): ``keep`` puts
        it back once the reply is done, so a failed generation leaves nothing stale behind."""
        stored, stored_ids = self._cache, self._ids
        self.clear()
        if model.generation_config.cache_implementation is not None:
            return None  # a static cache (the compile option): generate() refuses another
        if stored is not None:
            n = min(common_prefix(stored_ids, ids), len(ids) - 1)
            if n >= self.min_reuse:
                extra = stored.get_seq_length() - n
                if extra > 0:
                    stored.crop(-extra)  # a negative count removes that many tokens from the end
                return Reuse(stored, n)
        from transformers import DynamicCache

        cache = DynamicCache(config=model.config)
        return Reuse(cache, 0) if exactly_croppable(cache) else None

    def keep(self, cache: Any, sequence: list[int]) -> None:
        """Keep ``cache`` after a generation over ``sequence`` (prompt + reply ids): it holds the
        keys and values of the first ``get_seq_length()`` of them (the last token is never fed back)."""
        n = int(cache.get_seq_length())
        if n > len(sequence):  # not what this generation left: keep nothing rather than a mismatch
            return
        self._cache, self._ids = cache, list(sequence[:n])
