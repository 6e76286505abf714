"""PromptCache's bookkeeping on real transformers caches (filled with known tensors, no model run);
tests/integration/test_hf_prompt_cache_real.py checks the replies on a real model."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from webui.engine.hf_prompt_cache import PromptCache, common_prefix

LAYERS, HEADS, DIM = 2, 2, 4


def config(**extra: Any) -> Any:
    from transformers import LlamaConfig, MistralConfig

    fields = dict(vocab_size=100, hidden_size=HEADS * DIM * 2, intermediate_size=16, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS * 2, num_key_value_heads=HEADS)
    if "sliding_window" in extra:
        return MistralConfig(**fields, **extra)
    return LlamaConfig(**fields, **extra)


def model(cache_implementation: str | None = None, **extra: Any) -> Any:
    """What PromptCache reads of a model: its config and generation config."""
    from transformers import GenerationConfig

    return SimpleNamespace(config=config(**extra),
                           generation_config=GenerationConfig(cache_implementation=cache_implementation))


def fill(cache: Any, ids: list[int]) -> None:
    """Append one position per id, its keys and values all equal to the id (as generate() would)."""
    import torch

    start = cache.get_seq_length()
    for layer in range(LAYERS):
        values = torch.tensor(ids, dtype=torch.float32).reshape(1, 1, -1, 1).expand(1, HEADS, len(ids), DIM)
        cache.update(values.clone(), values.clone(), layer)
    assert cache.get_seq_length() == start + len(ids)


def positions(cache: Any) -> list[int]:
    return [int(v) for v in cache.layers[0].keys[0, 0, :, 0]]


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([5], [6]) == 0


def test_a_new_request_gets_an_empty_cache_and_the_next_reuses_the_common_prefix() -> None:
    m, store = model(), PromptCache(min_reuse=3)
    first = list(range(10, 20))
    reuse = store.take(m, first)
    assert reuse is not None and reuse.reused == 0 and reuse.cache.get_seq_length() == 0
    fill(reuse.cache, first + [90, 91])  # the prompt and the reply but its last token
    store.keep(reuse.cache, first + [90, 91, 92])
    assert store.tokens == 12

    second = first[:6] + [50, 51, 52]  # diverges after 6 tokens
    again = store.take(m, second)
    assert again is not None and again.cache is reuse.cache and again.reused == 6
    assert positions(again.cache) == first[:6]  # cut back to exactly the shared tokens
    assert store.tokens == 0  # taken out until keep() puts it back


def test_the_same_prompt_leaves_one_token_to_compute() -> None:
    m, store = model(), PromptCache(min_reuse=3)
    ids = list(range(1, 9))
    reuse = store.take(m, ids)
    fill(reuse.cache, ids + [40])
    store.keep(reuse.cache, ids + [40, 41])
    again = store.take(m, ids)
    assert again.reused == len(ids) - 1 and positions(again.cache) == ids[:-1]


def test_a_short_common_prefix_starts_fresh() -> None:
    m, store = model(), PromptCache(min_reuse=4)
    ids = [1, 2, 3, 4, 5, 6]
    reuse = store.take(m, ids)
    fill(reuse.cache, ids)
    store.keep(reuse.cache, ids + [7])
    other = store.take(m, [1, 2, 3, 9, 9, 9])
    assert other.reused == 0 and other.cache is not reuse.cache and other.cache.get_seq_length() == 0
    assert store.tokens == 0


def test_keep_refuses_a_cache_longer_than_its_tokens() -> None:
    m, store = model(), PromptCache(min_reuse=1)
    reuse = store.take(m, [1, 2, 3])
    fill(reuse.cache, [1, 2, 3, 4])
    store.keep(reuse.cache, [1, 2, 3])
    assert store.tokens == 0


@pytest.mark.parametrize("make", [lambda: model("static"), lambda: model(sliding_window=4)],
                         ids=["static cache", "sliding window"])
def test_models_whose_cache_cannot_be_cut_back_never_reuse(make: Any) -> None:
    store = PromptCache(min_reuse=1)
    assert store.take(make(), [1, 2, 3]) is None


def test_clear_forgets() -> None:
    m, store = model(), PromptCache(min_reuse=1)
    reuse = store.take(m, [1, 2, 3])
    fill(reuse.cache, [1, 2])
    store.keep(reuse.cache, [1, 2, 3])
    store.clear()
    assert store.tokens == 0 and store.take(m, [1, 2, 3]).reused == 0
