"""A PEFT LoRA adapter as a GGUF LoRA that llama.cpp applies to the GGUF model it was trained on.

The tensor names come from the ``gguf`` package's own map (``gguf.get_tensor_name_map`` for the
base's architecture, read from the base GGUF), the layout from llama.cpp's converters:

- ``<gguf tensor name>.lora_a`` holds PEFT's ``lora_A`` (rank x in) and ``.lora_b`` its ``lora_B``
  (out x rank), as they are: GGUF stores them reversed, which is the shape llama.cpp checks against
  the base tensor;
- llama.cpp's HF -> GGUF conversion permutes the rows of Llama's q_proj/k_proj weights (the rotary
  layout; ``LlamaModel.permute`` in convert_hf_to_gguf.py), so lora_b of q and k gets the same
  row permutation (the rows of B A are the rows of B);
- ``adapter.lora.alpha`` with the rank of each tensor gives llama.cpp's scale alpha / rank. PEFT
  scales rsLoRA (alpha / sqrt(rank)) and per-module ranks/alphas differently; that difference is
  folded into lora_b, so llama.cpp computes exactly PEFT's scale.

Anything that cannot be mapped (another architecture, a fused projection, embeddings, DoRA) fails
with one message instead of producing a file llama.cpp would apply wrongly.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webui.errors import UserFacingError

# Architectures whose HF linear layers map one to one onto GGUF tensors, and whether q/k rows are
# permuted on conversion (convert_hf_to_gguf: LlamaModel permutes, Qwen2/Qwen3/Gemma do not).
PERMUTES_QK = {"llama": True, "qwen2": False, "qwen3": False, "gemma": False, "gemma2": False}
PEFT_PREFIX = "base_model.model."


class GGUFLoraError(UserFacingError):
    """The adapter cannot be written as a GGUF LoRA for this base model."""


@dataclass(frozen=True)
class BaseInfo:
    """What the export needs to know about the base GGUF."""

    arch: str
    block_count: int
    head_count: int
    head_count_kv: int
    shapes: dict[str, tuple[int, ...]]  # GGUF tensor name -> (out, in), numpy order


def read_base(base_gguf: Path) -> BaseInfo:
    """Architecture, head counts and tensor shapes of a GGUF model (the weights are not read)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(base_gguf))
    except (OSError, ValueError) as exc:
        raise GGUFLoraError(f"Cannot read the base model {base_gguf}: {exc}") from exc

    def field(key: str, default: Any = None) -> Any:
        found = reader.fields.get(key)
        return found.contents() if found is not None else default

    arch = str(field("general.architecture", ""))
    try:
        info = BaseInfo(
            arch=arch,
            block_count=int(field(f"{arch}.block_count")),
            head_count=int(field(f"{arch}.attention.head_count")),
            head_count_kv=int(field(f"{arch}.attention.head_count_kv", field(f"{arch}.attention.head_count"))),
            shapes={t.name: tuple(int(n) for n in reversed(t.shape.tolist())) for t in reader.tensors},
        )
    except (TypeError, ValueError) as exc:
        raise GGUFLoraError(f"{base_gguf.name} lacks the {arch!r} metadata a LoRA export needs ({exc}).") from exc
    return info


def permute_rows(rows: Any, n_head: int) -> Any:
    """llama.cpp's q/k permutation (convert_hf_to_gguf ``LlamaModel.permute``) of a matrix's rows."""
    shape = rows.shape
    return rows.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def gguf_tensor_name(name_map: Any, hf_module: str) -> str | None:
    """``model.layers.3.self_attn.q_proj`` -> ``blk.3.attn_q.weight`` (None: the map lacks it)."""
    return name_map.get_name(hf_module + ".weight", try_suffixes=(".weight",))


def read_adapter(adapter_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The adapter's config and its tensors (torch, on the CPU)."""
    config_path = adapter_dir / "adapter_config.json"
    weights = adapter_dir / "adapter_model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise GGUFLoraError(f"{adapter_dir} is not a PEFT LoRA adapter (adapter_config.json and "
                            "adapter_model.safetensors expected).")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        from safetensors.torch import load_file

        tensors = load_file(str(weights), device="cpu")
    except (OSError, ValueError, RuntimeError) as exc:
        raise GGUFLoraError(f"Cannot read the adapter in {adapter_dir}: {exc}") from exc
    if not isinstance(config, dict) or str(config.get("peft_type", "")).upper() != "LORA":
        raise GGUFLoraError(f"{adapter_dir.name} is not a LoRA adapter (peft_type {config.get('peft_type')!r}).")
    for key, what in (("use_dora", "DoRA"), ("modules_to_save", "fully trained modules (modules_to_save)")):
        if config.get(key):
            raise GGUFLoraError(f"{adapter_dir.name} uses {what}, which llama.cpp's LoRA format cannot hold.")
    if config.get("lora_bias"):
        raise GGUFLoraError(f"{adapter_dir.name} trains LoRA biases, which llama.cpp's LoRA format cannot hold.")
    return config, tensors


def module_scale(config: dict[str, Any], module: str, rank: int) -> float:
    """PEFT's scaling of one module: alpha / rank (alpha / sqrt(rank) with rsLoRA), per-module
    patterns included."""
    alpha = float(config.get("lora_alpha", 8))
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if module == pattern or module.endswith("." + pattern):
            alpha = float(value)
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def lora_pairs(tensors: dict[str, Any], adapter_name: str) -> dict[str, tuple[Any, Any]]:
    """HF module name -> (lora_A, lora_B)."""
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        name = key.removeprefix(PEFT_PREFIX)
        for part in ("A", "B"):
            suffix = f".lora_{part}.weight"
            if name.endswith(suffix):
                pairs.setdefault(name.removesuffix(suffix), {})[part] = tensor
                break
        else:
            raise GGUFLoraError(f"{adapter_name} holds {key}, which is not a LoRA matrix; llama.cpp's LoRA "
                                "format holds only lora_A/lora_B of linear layers.")
    incomplete = [m for m, ab in pairs.items() if set(ab) != {"A", "B"}]
    if incomplete:
        raise GGUFLoraError(f"{adapter_name} lacks lora_A or lora_B for {incomplete[0]}.")
    return {m: (ab["A"], ab["B"]) for m, ab in pairs.items()}


def convert(adapter_dir: Path, base: BaseInfo) -> tuple[float, list[tuple[str, Any]]]:
    """The adapter's alpha and its GGUF tensors (float32 numpy arrays), checked against ``base``."""
    import gguf
    import torch

    if base.arch not in PERMUTES_QK:
        raise GGUFLoraError(f"Exporting a LoRA for the {base.arch!r} architecture is not supported (supported: "
                            f"{', '.join(sorted(PERMUTES_QK))}).")
    arch_ids = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    name_map = gguf.get_tensor_name_map(arch_ids[base.arch], base.block_count)
    config, tensors = read_adapter(adapter_dir)
    pairs = lora_pairs(tensors, adapter_dir.name)
    if not pairs:
        raise GGUFLoraError(f"{adapter_dir.name} holds no LoRA matrices.")
    alpha = float(config.get("lora_alpha", 8))
    out: list[tuple[str, Any]] = []
    for module, (lora_a, lora_b) in sorted(pairs.items()):
        target = gguf_tensor_name(name_map, module)
        if target is None or target not in base.shapes:
            raise GGUFLoraError(f"{adapter_dir.name}: the module {module} has no tensor in this {base.arch} GGUF "
                                f"(mapped to {target!r}); it cannot be exported.")
        rank = int(lora_a.shape[0])
        expected = base.shapes[target]
        if (int(lora_b.shape[0]), int(lora_a.shape[1])) != expected:
            raise GGUFLoraError(f"{adapter_dir.name} does not fit this model: {module} is "
                                f"{int(lora_b.shape[0])}x{int(lora_a.shape[1])} in the adapter, {expected[0]}x"
                                f"{expected[1]} in the GGUF. Was it trained on another base model?")
        b = lora_b.to(torch.float32)
        if PERMUTES_QK[base.arch] and target.endswith((".attn_q.weight", ".attn_k.weight")):
            heads = base.head_count if target.endswith(".attn_q.weight") else base.head_count_kv
            b = permute_rows(b, heads)
        factor = module_scale(config, module, rank) / (alpha / rank)  # 1.0 unless rsLoRA / patterns
        if not math.isclose(factor, 1.0):
            b = b * factor
        out.append((target + ".lora_a", lora_a.to(torch.float32).contiguous().numpy()))
        out.append((target + ".lora_b", b.contiguous().numpy()))
    return alpha, out


def export_gguf_lora(adapter_dir: Path, base_gguf: Path, out_path: Path) -> Path:
    """Write ``adapter_dir`` (PEFT LoRA) as a GGUF LoRA for ``base_gguf`` to ``out_path``, atomically
    (a temp file in the same folder, renamed at the end). Raises GGUFLoraError."""
    import gguf

    base = read_base(base_gguf)
    alpha, tensors = convert(adapter_dir, base)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".gguf", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp), arch=base.arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(adapter_dir.name)
        for name, array in tensors:
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    except OSError as exc:
        raise GGUFLoraError(f"Cannot write {out_path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return out_path
