"""LoRA adapters on the real embedded SmolLM2, on both backends, against peft's own numbers.

The module builds two PEFT adapters on SmolLM2 (loaded once through transformers, dequantized from
the embedded GGUF) with random, large LoRA matrices, so they change the model's answers, and takes
peft's own logits as the reference. Then:
- transformers backend: the adapter applied at runtime gives peft's logits; two with weights give
  peft's ``cat`` weighted combination; removing them gives the base logits back;
- llama.cpp backend on the real GGUF: the adapter, exported as a GGUF LoRA on demand, changes the
  next token exactly where peft's does (a wrong tensor name or a missing q/k row permutation
  changes it elsewhere); removing it gives the base answers back;
- merge and save writes a model folder that answers as base + adapter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from webui.engine.engine import Engine
from webui.engine.protocol import ModelSpec
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.training.lora_library import LoraLibrary
from webui.training.types import GGUF_ADAPTER_FILE, METADATA_FILE, LoraMetadata

pytestmark = pytest.mark.slow

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPTS = ["The capital of France is", "Once upon a time", "1, 2, 3, 4,", "My favourite food is",
           "The sky is", "def hello():", "Water boils at", "The best way to learn is"]
MIX = (["alpha", "beta"], [0.7, -0.4])
CLEAR = 1.0  # logit margin between the top two tokens for a top-1 comparison across backends


@dataclass
class Lab:
    data_dir: Path
    hf_dir: Path  # the dequantized SmolLM2 saved as a transformers folder (reloads in about a second)
    gguf: Path
    tokenizer: Any
    base: Any  # [prompts, vocab] logits of the base model
    ref: dict[str, Any]  # peft's logits: "alpha", "mix"
    greedy_alpha: str  # peft's greedy 8-token continuation of PROMPTS[0] with alpha


def next_logits(model: Any, tokenizer: Any) -> Any:
    import torch

    rows = []
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
            rows.append(model(ids).logits[0, -1].float())
    return torch.stack(rows)


def make_adapter(model: Any, folder: Path, seed: int) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, init_lora_weights=False, lora_dropout=0.0)
    peft = get_peft_model(model, config)  # init_lora_weights=False: random B, so it changes the answers
    peft.save_pretrained(folder)
    meta = LoraMetadata(name=folder.name, base_model="SmolLM2-135M-Instruct", method="sft", data_source="test",
                        data_sha256="0" * 64, data_format="test", hyperparams={"rank": 8}, train_loss=[],
                        val_loss=[], perplexity_before=None, perplexity_after=None,
                        created_at="2026-11-30T08:00:00+00:00")
    (folder / METADATA_FILE).write_text(json.dumps(meta.to_dict()), encoding="utf-8")
    return peft.unload()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, embedded_gguf: Path) -> Lab:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("lora")
    data_dir = root / "data"
    loras = data_dir / "loras"
    tok = AutoTokenizer.from_pretrained(embedded_gguf.parent, gguf_file=embedded_gguf.name)
    model = AutoModelForCausalLM.from_pretrained(embedded_gguf.parent, gguf_file=embedded_gguf.name,
                                                 dtype=torch.float32).eval()
    base = next_logits(model, tok)
    model = make_adapter(model, loras / "alpha", seed=0)
    model = make_adapter(model, loras / "beta", seed=1)
    peft = PeftModel.from_pretrained(model, str(loras / "alpha"), adapter_name="alpha").eval()
    ref = {"alpha": next_logits(peft, tok)}
    ids = tok(PROMPTS[0], return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = peft.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.eos_token_id)
    greedy_alpha = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    peft.load_adapter(str(loras / "beta"), adapter_name="beta")
    peft.add_weighted_adapter(MIX[0], MIX[1], "mix", combination_type="cat")
    peft.set_adapter("mix")
    ref["mix"] = next_logits(peft, tok)
    model = peft.unload()
    assert torch.allclose(next_logits(model, tok), base), "peft did not give the base model back"
    model.hf_quantizer.remove_quantization_config(model)  # a GGUF-loaded model refuses save_pretrained otherwise
    hf_dir = root / "smollm2-hf"
    model.save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    return Lab(data_dir, hf_dir, embedded_gguf, tok, base, ref, greedy_alpha)


@pytest.fixture(scope="module")
def hf_engine(lab: Lab) -> Iterator[Engine]:
    engine = Engine()
    engine.load(ModelSpec(path=str(lab.hf_dir), loader="transformers", options={"dtype": "float32"}))
    yield engine
    engine.shutdown()


@pytest.fixture(scope="module")
def llama_engine(lab: Lab) -> Iterator[Engine]:
    engine = Engine()
    engine.load(ModelSpec(path=str(lab.gguf), loader="llama.cpp", options={"n_ctx": 512}))
    yield engine
    engine.shutdown()


def engine_logits(engine: Engine, lab: Lab) -> Any:
    """The logits of the model object the transformers backend generates with."""
    return engine.worker.call(lambda: next_logits(engine.model._model, lab.tokenizer))  # type: ignore[union-attr]


def greedy(engine: Engine, prompt: str, n: int) -> str:
    return engine.generate(prompt, GenerationParams(temperature=0.0, max_new_tokens=n)).text()


def clear_top1(logits: Any) -> list[int | None]:
    """Each prompt's top token, or None where the top two are too close to compare across backends."""
    top = logits.topk(2, dim=-1)
    return [int(i[0]) if float(v[0] - v[1]) > CLEAR else None for v, i in zip(top.values, top.indices)]


def test_transformers_applies_the_adapter_as_peft_does(hf_engine: Engine, lab: Lab) -> None:
    import torch

    library = LoraLibrary(lab.data_dir)
    applied = hf_engine.apply_loras(["alpha"], library=library)
    assert [(x.name, x.weight) for x in applied] == [("alpha", 1.0)] and hf_engine.loras == applied
    with_adapter = engine_logits(hf_engine, lab)
    assert (with_adapter - lab.base).abs().max() > 1.0, "the adapter should change the model"
    assert torch.allclose(with_adapter, lab.ref["alpha"], atol=1e-3, rtol=1e-4)
    assert greedy(hf_engine, PROMPTS[0], 8) == lab.greedy_alpha  # generate() runs with it too
    hf_engine.remove_loras()
    assert hf_engine.loras == []
    assert torch.allclose(engine_logits(hf_engine, lab), lab.base, atol=1e-4)


def test_transformers_two_adapters_with_weights_are_peft_cat_combination(hf_engine: Engine, lab: Lab) -> None:
    import torch

    hf_engine.apply_loras(MIX[0], MIX[1], library=LoraLibrary(lab.data_dir))
    try:
        mixed = engine_logits(hf_engine, lab)
        assert torch.allclose(mixed, lab.ref["mix"], atol=1e-3, rtol=1e-4)
        assert not torch.allclose(mixed, lab.ref["alpha"], atol=0.1)
    finally:
        hf_engine.apply_loras([], library=LoraLibrary(lab.data_dir))  # an empty list removes them too
    assert torch.allclose(engine_logits(hf_engine, lab), lab.base, atol=1e-4)


def test_an_adapter_for_another_model_is_refused_and_the_base_stays(hf_engine: Engine, lab: Lab,
                                                                    tiny_llama_dir: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    tiny = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    other = lab.data_dir / "loras" / "tiny-one"
    get_peft_model(tiny, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(other)
    library = LoraLibrary(lab.data_dir)
    hf_engine.apply_loras(["alpha"], library=library)
    with pytest.raises(UserFacingError, match="tiny-one could not be applied.*another base model"):
        hf_engine.apply_loras(["tiny-one"], library=library)
    assert hf_engine.loras == []
    assert torch.allclose(engine_logits(hf_engine, lab), lab.base, atol=1e-4)
    with pytest.raises(UserFacingError, match="No LoRA adapter named 'nope'"):
        hf_engine.apply_loras(["nope"], library=library)


def llama_logits(engine: Engine) -> Any:
    """llama.cpp's next-token logits for PROMPTS on the engine's own context (its adapters set)."""
    import llama_cpp
    import numpy as np

    def run() -> Any:
        llm = engine.model._llm  # type: ignore[union-attr]
        rows = []
        for prompt in PROMPTS:
            llm.reset()
            llm.eval(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
            pointer = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
            rows.append(np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).copy())
        llm.reset()
        return np.stack(rows)

    return engine.worker.call(run)


def correlation(a: Any, b: Any) -> float:
    """The mean over prompts of the Pearson correlation of two [prompts, vocab] logit arrays."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]))


def assert_same_answers(llama: Any, reference: Any, what: str, min_corr: float = 0.99) -> None:
    """llama.cpp's logits follow the reference (Q4_1 weights on both sides; llama.cpp quantizes
    activations, hence a correlation rather than equality) and pick the same top token wherever
    the reference's top two are clearly apart. Measured here: 0.999 for the base, 0.998 with the
    adapter, 0.954 with the adapter exported without the q/k row permutation (0.82 against the base)."""
    corr = correlation(llama, reference.numpy())
    assert corr > min_corr, f"{what}: llama.cpp's logits correlate {corr:.4f} with peft's"
    tops = clear_top1(reference)
    compared = [i for i, t in enumerate(tops) if t is not None]
    assert len(compared) >= 3, f"{what}: too few clear answers to compare ({tops})"
    assert [int(llama[i].argmax()) for i in compared] == [tops[i] for i in compared], what


def test_llamacpp_applies_the_exported_adapter_like_peft(llama_engine: Engine, lab: Lab) -> None:
    library = LoraLibrary(lab.data_dir)
    gguf_file = lab.data_dir / "loras" / "alpha" / GGUF_ADAPTER_FILE
    gguf_file.unlink(missing_ok=True)
    base = llama_logits(llama_engine)
    assert_same_answers(base, lab.base, "base")
    before = [greedy(llama_engine, p, 3) for p in PROMPTS]
    llama_engine.apply_loras(["alpha"], library=library)
    assert gguf_file.is_file()  # exported on demand from the PEFT files
    adapted = llama_logits(llama_engine)
    assert_same_answers(adapted, lab.ref["alpha"], "alpha")
    assert correlation(adapted, lab.ref["alpha"].numpy()) > correlation(adapted, lab.base.numpy()) + 0.05
    after = [greedy(llama_engine, p, 3) for p in PROMPTS]  # generate() uses it, no stale cached prefix
    assert after != before
    llama_engine.remove_loras()
    assert [greedy(llama_engine, p, 3) for p in PROMPTS] == before
    import numpy as np

    assert np.allclose(llama_logits(llama_engine), base, atol=1e-3)


def test_llamacpp_weights_scale_the_adapters(llama_engine: Engine, lab: Lab) -> None:
    import numpy as np

    library = LoraLibrary(lab.data_dir)
    base = llama_logits(llama_engine)
    llama_engine.apply_loras(MIX[0], MIX[1], library=library)
    assert_same_answers(llama_logits(llama_engine), lab.ref["mix"], "0.7 alpha - 0.4 beta")
    llama_engine.apply_loras(["alpha"], [0.0], library=library)  # weight 0: the base model
    assert np.allclose(llama_logits(llama_engine), base, atol=1e-3)
    llama_engine.remove_loras()


def test_reload_starts_from_the_base_model(llama_engine: Engine, lab: Lab) -> None:
    llama_engine.apply_loras(["alpha"], library=LoraLibrary(lab.data_dir))
    assert [x.name for x in llama_engine.loras] == ["alpha"]
    llama_engine.load(ModelSpec(path=str(lab.gguf), loader="llama.cpp", options={"n_ctx": 512}))
    assert llama_engine.loras == []


def test_merge_and_save_writes_base_plus_adapter(lab: Lab, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from webui.engine.adapters import merge_and_save

    out = merge_and_save(lab.hf_dir, [(lab.data_dir / "loras" / "alpha", 1.0)], tmp_path / "models" / "smol-alpha")
    assert (out / "config.json").is_file() and not list(out.parent.glob(".tmp-*"))
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert torch.allclose(next_logits(merged, lab.tokenizer), lab.ref["alpha"], atol=1e-3, rtol=1e-4)
    with pytest.raises(UserFacingError, match="already exists"):
        merge_and_save(lab.hf_dir, [(lab.data_dir / "loras" / "alpha", 1.0)], out)
