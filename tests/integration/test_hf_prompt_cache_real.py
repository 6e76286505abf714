"""The transformers backend's prompt cache on a real (tiny, random) Llama with SmolLM2's tokenizer.

Every reply computed with the cache of the previous request is compared with the reply to the same
prompt computed from scratch (the cache cleared first). The tiny model's weights are scaled up so its
greedy replies depend on the whole prompt (at the usual init scale it repeats one token whatever it
reads, and a wrongly cut cache would go unnoticed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from webui.engine.protocol import GenerationStats, ModelSpec
from webui.engine.transformers_backend import TransformersBackend, TransformersModel
from webui.generation.params import GenerationParams

pytestmark = pytest.mark.slow

GREEDY = GenerationParams(temperature=0, max_new_tokens=12, seed=1)
SYSTEM = "You are a helpful assistant who answers questions about the weather and the sea."


@pytest.fixture(scope="module")
def sharp_llama(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """The tiny Llama with its weights (all but the norms) times 10: replies that follow the prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("sharp-llama")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "norm" not in name:
                weight.mul_(10)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def model(sharp_llama: Path) -> Any:
    loaded = TransformersBackend().load(ModelSpec(path=str(sharp_llama)))
    yield loaded
    loaded.unload()


def run(model: TransformersModel, prompt: str, params: GenerationParams = GREEDY) -> tuple[str, GenerationStats]:
    pieces: list[str] = []

    def emit(text: str, n_tokens: int = 1, logprobs: Any = None) -> bool:
        pieces.append(text)
        return True

    stats = model.generate(prompt, params, emit)
    return "".join(pieces), stats


def fresh(model: TransformersModel, prompt: str, params: GenerationParams = GREEDY) -> str:
    """The reply computed from scratch (the cache cleared, so nothing is reused)."""
    model.prompt_cache.clear()
    text, stats = run(model, prompt, params)
    assert stats.cached_tokens == 0
    return text


def chat(model: TransformersModel, *turns: str) -> str:
    messages = [{"role": "system", "content": SYSTEM}]
    for i, text in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return model.format_chat(messages)


@pytest.mark.parametrize("params", [
    GREEDY,
    GREEDY.model_copy(update={"guidance_scale": 1.5, "negative_prompt": "Talk about mountains."}),
], ids=["greedy", "guidance"])
def test_next_turn_and_diverging_prompt_give_the_fresh_reply(model: TransformersModel,
                                                             params: GenerationParams) -> None:
    first = chat(model, "What is the weather like today by the sea?")
    model.prompt_cache.clear()
    reply, stats = run(model, first, params)
    assert stats.cached_tokens == 0 and reply

    # the next turn extends the first chat: its whole first prompt comes from the cache
    second = chat(model, "What is the weather like today by the sea?", reply, "And tomorrow, will it rain?")
    cached_reply, stats = run(model, second, params)
    first_len = model.count_tokens(first)
    assert first_len <= stats.cached_tokens < stats.prompt_tokens
    assert cached_reply == fresh(model, second, params)

    # the same prompt again (regenerate): everything but its last token comes from the cache
    again, stats = run(model, second, params)
    assert stats.cached_tokens == stats.prompt_tokens - 1
    assert again == cached_reply

    # a prompt that diverges midway (the first question edited): only the system block is reused
    edited = chat(model, "What is the weather like in the mountains?", reply, "And tomorrow, will it rain?")
    edited_reply, stats = run(model, edited, params)
    system_len = model.count_tokens(chat(model)) - 3  # the generation prompt's tokens are not shared
    assert system_len <= stats.cached_tokens < first_len
    assert edited_reply == fresh(model, edited, params)
    assert edited_reply != cached_reply  # the model reads its prompt: a wrong cache would show


def test_sampling_with_a_seed_gives_the_same_text_both_ways(model: TransformersModel) -> None:
    params = GenerationParams(temperature=1.0, top_p=0.95, max_new_tokens=16, seed=1234)
    first = chat(model, "Tell me about the tides.")
    reply = fresh(model, first, params)
    second = chat(model, "Tell me about the tides.", reply, "Why are there two a day?")
    cached_reply, stats = run(model, second, params)
    assert stats.cached_tokens > 0
    assert cached_reply == fresh(model, second, params)


def test_a_short_common_prefix_is_read_again(model: TransformersModel) -> None:
    run(model, "Hello there, how are you today? The sea is calm and the sky is blue.")
    _, stats = run(model, "Hello world, a different start entirely.")
    assert stats.cached_tokens == 0  # "Hello" alone is under the minimum


def test_inspection_leaves_the_cache_as_it_was(model: TransformersModel) -> None:
    prompt = chat(model, "Will the wind drop tonight?")
    model.prompt_cache.clear()
    run(model, prompt)
    kept = model.prompt_cache.tokens
    model.next_token_probs(prompt + "It", 5, GREEDY)
    assert model.prompt_cache.tokens == kept
    _, stats = run(model, prompt)
    assert stats.cached_tokens == stats.prompt_tokens - 1


def test_a_lora_change_drops_the_cache(model: TransformersModel, sharp_llama: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "lora"
    torch.manual_seed(3)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False, lora_dropout=0.0)  # random B: the adapter changes the replies
    get_peft_model(AutoModelForCausalLM.from_pretrained(sharp_llama), config).save_pretrained(folder)

    prompt = chat(model, "Is the harbour open?")
    model.prompt_cache.clear()
    base_reply, _ = run(model, prompt)
    try:
        model.apply_adapters([(folder, 1.0)])
        with_lora, stats = run(model, prompt)
        assert stats.cached_tokens == 0  # the cache was computed without the adapter
        assert with_lora != base_reply
        assert with_lora == fresh(model, prompt)
        run(model, prompt)
    finally:
        model.clear_adapters()
    back, stats = run(model, prompt)
    assert stats.cached_tokens == 0
    assert back == base_reply


def test_the_engine_reports_the_reused_tokens(sharp_llama: Path) -> None:
    from webui.engine.engine import Engine

    engine = Engine()
    try:
        engine.load(ModelSpec(path=str(sharp_llama), loader="transformers"))
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Is the lighthouse lit?"}]
        first = engine.generate(engine.format_chat(messages), GREEDY)
        reply = first.text()
        assert first.stats.cached_tokens == 0
        messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": "Since when?"}]
        second = engine.generate(engine.format_chat(messages), GREEDY)
        second.text()
        assert second.stats.cached_tokens >= engine.count_tokens(engine.format_chat(messages[:2]))
    finally:
        engine.shutdown()
