"""Each CPU-capable quantizer on a tiny real model: loads, generates, and is really smaller than fp32.

The model is a random Llama with hidden size 256 (quantizers work in blocks of 64+), built from
SmolLM2's tokenizer. Footprints are the real bytes held (webui/engine/memory.py), which for
torchao and quanto differ from transformers' get_memory_footprint().
"""

from __future__ import annotations

from pathlib import Path

import pytest

from webui.engine.engine import Engine
from webui.engine.memory import model_bytes
from webui.engine.protocol import ModelSpec
from webui.engine.worker import GenerationHandle
from webui.errors import ModelLoadError
from webui.generation.params import GenerationParams

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Say something."}]
GREEDY = GenerationParams(temperature=0, max_new_tokens=8)
# bytes saved per weight of a quantized Linear versus fp32 (4 bytes): int8 ~3, 4-bit ~3.5
SAVED_PER_WEIGHT = {"bnb-8bit": 3.0, "torchao-int8": 3.0, "quanto-int8": 3.0, "bnb-4bit": 3.5}


def reply(engine: Engine, messages: list[dict[str, str]], params: GenerationParams) -> GenerationHandle:
    """A chat reply as ChatService asks for one: the model's chat template, then generate."""
    return engine.generate(engine.format_chat(messages), params)


@pytest.fixture(scope="module")
def tiny256(tmp_path_factory: pytest.TempPathFactory, embedded_gguf: Path) -> Path:
    from tests.support.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny256"), embedded_gguf, hidden=256, layers=4)


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    engine = Engine()
    yield engine
    engine.shutdown()


@pytest.fixture(scope="module")
def fp32(engine: Engine, tiny256: Path) -> tuple[int, int]:
    """(real footprint of the fp32 model, number of weights in its decoder Linear layers)."""
    info = engine.load(ModelSpec(str(tiny256), "transformers", {"dtype": "float32"}))
    model = engine.model._model
    linear = sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if name.startswith("model.layers") and hasattr(m, "weight") and m.weight.dim() == 2
    )
    assert info.footprint_bytes == model_bytes(model) > 0
    return info.footprint_bytes, linear


@pytest.mark.parametrize(
    "options",
    [
        {"quantization": "bnb-8bit"},
        {"quantization": "bnb-4bit", "quant_type": "nf4", "use_double_quant": True, "compute_dtype": "float32"},
        {"quantization": "bnb-4bit", "quant_type": "fp4", "compute_dtype": "bfloat16"},
        {"quantization": "torchao-int8"},
        {"quantization": "quanto-int8"},
    ],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_quantizer_loads_generates_and_shrinks(
    engine: Engine, tiny256: Path, fp32: tuple[int, int], options: dict
) -> None:
    fp32_bytes, linear_weights = fp32
    info = engine.load(ModelSpec(str(tiny256), "transformers", options, display_name="tiny256"))
    handle = reply(engine, MESSAGES, GREEDY)
    text = handle.text()
    assert handle.stats.completion_tokens > 0 and text.strip()
    saved = fp32_bytes - info.footprint_bytes
    expected = SAVED_PER_WEIGHT[options["quantization"]] * linear_weights
    assert 0.8 * expected < saved < 1.05 * expected, (info.footprint_bytes, fp32_bytes, expected)
    assert info.load_seconds > 0
    assert engine.model_info.rss_delta_bytes >= 0


@pytest.mark.parametrize("quantization", ["torchao-int8", "quanto-int8"])
def test_get_memory_footprint_lies_and_ours_does_not(
    engine: Engine, tiny256: Path, fp32: tuple[int, int], quantization: str
) -> None:
    info = engine.load(ModelSpec(str(tiny256), "transformers", {"quantization": quantization}))
    reported = engine.worker.call(lambda: engine.model._model.get_memory_footprint())
    assert reported >= fp32[0] * 0.99  # transformers counts the packed int8 weights as fp32
    assert info.footprint_bytes < reported - 2 * fp32[1]


def test_bf16_halves_the_footprint(engine: Engine, tiny256: Path, fp32: tuple[int, int]) -> None:
    info = engine.load(ModelSpec(str(tiny256), "transformers", {"dtype": "bfloat16"}))
    assert abs(info.footprint_bytes - fp32[0] / 2) < 0.01 * fp32[0]
    assert reply(engine, MESSAGES, GREEDY).text().strip()


def test_gguf_through_llama_cpp_and_transformers(engine: Engine, embedded_gguf: Path) -> None:
    question = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    info = engine.load(ModelSpec(
        str(embedded_gguf), "llama.cpp", {"n_ctx": 1024, "threads": 2, "flash_attn": True, "cache_type": "q8_0"}
    ))
    assert info.loader == "llama.cpp" and engine.model_info.context_length == 1024
    weights = embedded_gguf.stat().st_size
    assert weights * 0.9 < info.footprint_bytes < weights * 1.2  # Q4_1 weights + a small q8_0 KV cache
    assert "Paris" in reply(engine, question, GenerationParams(temperature=0, max_new_tokens=12)).text()

    info = engine.load(ModelSpec(str(embedded_gguf), "transformers", {}))
    assert info.loader == "transformers"
    assert info.footprint_bytes > 3 * weights  # dequantized to fp32: 135M parameters x 4 bytes
    assert "Paris" in reply(engine, question, GenerationParams(temperature=0, max_new_tokens=12)).text()


def test_quantizing_a_gguf_through_transformers_is_refused(engine: Engine, embedded_gguf: Path) -> None:
    with pytest.raises(ModelLoadError, match="dequantizes a GGUF"):
        engine.load(ModelSpec(str(embedded_gguf), "transformers", {"quantization": "bnb-4bit"}))


def test_failed_load_leaves_the_app_usable(engine: Engine, tiny256: Path, tmp_path: Path) -> None:
    """A load that fails after the previous model was unloaded: nothing loaded, a clear message, and
    the next load works."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"}')  # no weights, no tokenizer
    engine.load(ModelSpec(str(tiny256), "transformers", {}))
    with pytest.raises(ModelLoadError, match="could not load broken"):
        engine.load(ModelSpec(str(broken), "transformers", {}))
    assert engine.model is None
    with pytest.raises(ModelLoadError, match="No model is loaded"):
        reply(engine, MESSAGES, GREEDY).text()
    engine.load(ModelSpec(str(tiny256), "transformers", {"quantization": "quanto-int8"}))
    assert reply(engine, MESSAGES, GREEDY).text().strip()
