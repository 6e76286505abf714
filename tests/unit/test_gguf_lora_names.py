"""The PEFT -> GGUF LoRA export on a small synthetic Llama-shaped GGUF: tensor names from gguf's own
map, the q/k row permutation (checked against transformers' independent reverse permutation), the
adapter metadata llama.cpp reads, scale folding, and one clear message for what cannot be mapped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from webui.training.gguf_lora import GGUFLoraError, export_gguf_lora, gguf_tensor_name, permute_rows

HIDDEN, HEADS, KV_HEADS, FFN, LAYERS, RANK = 16, 4, 2, 32, 2, 4
KV = HIDDEN // HEADS * KV_HEADS
# HF module -> (GGUF tensor, out, in)
MODULES = {
    "self_attn.q_proj": ("attn_q", HIDDEN, HIDDEN),
    "self_attn.k_proj": ("attn_k", KV, HIDDEN),
    "self_attn.v_proj": ("attn_v", KV, HIDDEN),
    "self_attn.o_proj": ("attn_output", HIDDEN, HIDDEN),
    "mlp.gate_proj": ("ffn_gate", FFN, HIDDEN),
    "mlp.up_proj": ("ffn_up", FFN, HIDDEN),
    "mlp.down_proj": ("ffn_down", HIDDEN, FFN),
}


def write_base(path: Path, arch: str = "llama") -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_block_count(LAYERS)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_embedding_length(HIDDEN)
    for layer in range(LAYERS):
        for tensor, out, inp in MODULES.values():
            writer.add_tensor(f"blk.{layer}.{tensor}.weight", np.zeros((out, inp), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_adapter(folder: Path, *, config: dict | None = None, extra: dict | None = None,
                  modules: dict = MODULES, seed: int = 0) -> dict[str, np.ndarray]:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for layer in range(LAYERS):
        for module, (_t, out, inp) in modules.items():
            key = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{key}.lora_A.weight"] = rng.standard_normal((RANK, inp)).astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = rng.standard_normal((out, RANK)).astype(np.float32)
    tensors.update(extra or {})
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    cfg = {"peft_type": "LORA", "r": RANK, "lora_alpha": 8, "target_modules": ["q_proj"], **(config or {})}
    (folder / "adapter_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return tensors


def read_out(path: Path) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    fields = {name: f.contents() for name, f in reader.fields.items()}
    tensors = {t.name: np.array(t.data).reshape(tuple(reversed(t.shape.tolist()))) for t in reader.tensors}
    return fields, tensors


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write_base(tmp_path / "base.gguf")


def test_gguf_name_map_for_llama() -> None:
    import gguf

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 8)
    got = {m: gguf_tensor_name(name_map, f"model.layers.3.{m}") for m in MODULES}
    assert got == {m: f"blk.3.{t}.weight" for m, (t, _o, _i) in MODULES.items()}
    assert gguf_tensor_name(name_map, "model.layers.3.self_attn.rotary_emb") is None


def test_permutation_is_what_transformers_undoes() -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    rows = np.arange(HIDDEN * 3, dtype=np.float32).reshape(HIDDEN, 3)
    permuted = permute_rows(rows, HEADS)
    assert not np.array_equal(permuted, rows)
    undo = LlamaTensorProcessor()._reverse_permute_weights
    assert np.array_equal(undo(permuted, HEADS, HEADS), rows)
    k_rows = rows[:KV]
    assert np.array_equal(undo(permute_rows(k_rows, KV_HEADS), HEADS, KV_HEADS), k_rows)


def test_export_writes_names_metadata_and_permuted_qk(tmp_path: Path, base: Path) -> None:
    adapter = tmp_path / "my-adapter"
    src = write_adapter(adapter)
    out = export_gguf_lora(adapter, base, adapter / "adapter.gguf")
    fields, tensors = read_out(out)
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "llama" and fields["adapter.lora.alpha"] == pytest.approx(8.0)
    expected = {f"blk.{i}.{t}.weight.lora_{ab}" for i in range(LAYERS) for t, _o, _n in MODULES.values()
                for ab in "ab"}
    assert set(tensors) == expected
    for layer in range(LAYERS):
        for module, (tensor, out_dim, in_dim) in MODULES.items():
            key = f"base_model.model.model.layers.{layer}.{module}"
            a, b = tensors[f"blk.{layer}.{tensor}.weight.lora_a"], tensors[f"blk.{layer}.{tensor}.weight.lora_b"]
            assert a.shape == (RANK, in_dim) and b.shape == (out_dim, RANK)
            assert np.array_equal(a, src[f"{key}.lora_A.weight"])
            heads = {"attn_q": HEADS, "attn_k": KV_HEADS}.get(tensor)
            want = src[f"{key}.lora_B.weight"]
            assert np.array_equal(b, permute_rows(want, heads) if heads else want), tensor
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter.gguf", "adapter_config.json",
                                                          "adapter_model.safetensors"]


def test_qwen2_keeps_the_rows_as_they_are(tmp_path: Path) -> None:
    base = write_base(tmp_path / "qwen.gguf", arch="qwen2")
    src = write_adapter(tmp_path / "a")
    _f, tensors = read_out(export_gguf_lora(tmp_path / "a", base, tmp_path / "a.gguf"))
    assert np.array_equal(tensors["blk.0.attn_q.weight.lora_b"],
                          src["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"])


def test_rslora_and_alpha_pattern_are_folded_into_lora_b(tmp_path: Path, base: Path) -> None:
    src = write_adapter(tmp_path / "a", config={"use_rslora": True, "lora_alpha": 8,
                                                "alpha_pattern": {"v_proj": 2}})
    _f, tensors = read_out(export_gguf_lora(tmp_path / "a", base, tmp_path / "a.gguf"))
    key = "base_model.model.model.layers.1.{}.lora_B.weight"
    # llama.cpp scales by alpha / rank = 8 / 4; PEFT by alpha / sqrt(rank) (v: 2 / sqrt(4))
    np.testing.assert_allclose(tensors["blk.1.attn_output.weight.lora_b"],
                               src[key.format("self_attn.o_proj")] * (8 / 2) / (8 / 4), rtol=1e-6)
    np.testing.assert_allclose(tensors["blk.1.attn_v.weight.lora_b"],
                               src[key.format("self_attn.v_proj")] * (2 / 2) / (8 / 4), rtol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("arch", "architecture is not supported"),
    ("shape", "does not fit this model"),
    ("dora", "DoRA"),
    ("embedding", "not a LoRA matrix"),
    ("missing", "not a PEFT LoRA adapter"),
    ("not-lora", "not a LoRA adapter"),
    ("module", "has no tensor in this llama GGUF"),
])
def test_what_cannot_be_mapped_fails_with_one_message(tmp_path: Path, base: Path, case: str, message: str) -> None:
    adapter = tmp_path / "a"
    if case == "arch":
        base = write_base(tmp_path / "phi.gguf", arch="phi3")
        write_adapter(adapter)
    elif case == "shape":
        write_adapter(adapter, modules={"self_attn.q_proj": ("attn_q", HIDDEN * 2, HIDDEN)})
    elif case == "dora":
        write_adapter(adapter, config={"use_dora": True})
    elif case == "embedding":
        write_adapter(adapter, extra={"base_model.model.model.embed_tokens.lora_embedding_A":
                                      np.zeros((RANK, 8), dtype=np.float32)})
    elif case == "missing":
        adapter.mkdir()
    elif case == "not-lora":
        write_adapter(adapter, config={"peft_type": "IA3"})
    elif case == "module":
        write_adapter(adapter, modules={"self_attn.rotary_proj": ("x", HIDDEN, HIDDEN)})
    with pytest.raises(GGUFLoraError, match=message):
        export_gguf_lora(adapter, base, tmp_path / "out" / "adapter.gguf")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())  # nothing half-written
