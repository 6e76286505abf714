"""Quantization for the transformers loader: configs built from options, pre-quantized checkpoints.

On-the-fly: bitsandbytes 8-bit / 4-bit (nf4, fp4, double quant, compute dtype), torchao int8
weight-only and optimum-quanto int8 (all four run on CPU). A checkpoint that is already quantized
(GPTQ, AWQ, compressed-tensors, serialized bitsandbytes, fp8, ...) says so in config.json and is
loaded with its own config; when the package it needs is missing, the user gets one "install X" line.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webui.errors import ModelLoadError

# quant_method in config.json -> (import name, pip package) the checkpoint needs, in order.
PREQUANTIZED_NEEDS: dict[str, list[tuple[str, str]]] = {
    "gptq": [("optimum", "optimum"), ("gptqmodel", "gptqmodel")],
    "awq": [("gptqmodel", "gptqmodel")],
    "compressed-tensors": [("compressed_tensors", "compressed-tensors")],
    "bitsandbytes": [("bitsandbytes", "bitsandbytes")],
    "fp8": [],
    "fbgemm_fp8": [("fbgemm_gpu", "fbgemm-gpu")],
    "torchao": [("torchao", "torchao")],
    "quanto": [("optimum.quanto", "optimum-quanto")],
    "hqq": [("hqq", "hqq")],
    "eetq": [("eetq", "eetq")],
    "aqlm": [("aqlm", "aqlm")],
    "mxfp4": [("kernels", "kernels")],
}
# Methods whose kernels exist only for CUDA; on CPU transformers fails deep inside, so say it first.
CUDA_ONLY_METHODS = {"awq", "fbgemm_fp8", "eetq", "aqlm", "hqq"}


@dataclass(frozen=True)
class PreQuantized:
    method: str
    details: dict[str, Any]

    @property
    def label(self) -> str:
        d = self.details
        bits = d.get("bits") or (4 if d.get("load_in_4bit") else 8 if d.get("load_in_8bit") else None)
        return f"{self.method}{f' {bits}-bit' if bits else ''}"


def detect_prequantized(folder: Path) -> PreQuantized | None:
    """Read config.json's ``quantization_config`` (None for a plain checkpoint)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    qc = config.get("quantization_config") if isinstance(config, dict) else None
    if not isinstance(qc, dict):
        return None
    method = str(
        qc.get("quant_method") or ("bitsandbytes" if qc.get("load_in_4bit") or qc.get("load_in_8bit") else "unknown")
    )
    return PreQuantized(method.lower(), qc)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_prequantized(pq: PreQuantized, *, cuda: bool) -> None:
    """Raise a clear ModelLoadError when this machine cannot load the pre-quantized checkpoint."""
    if pq.method in CUDA_ONLY_METHODS and not cuda:
        raise ModelLoadError(f"This checkpoint is pre-quantized with {pq.label}, whose kernels need a CUDA GPU.")
    missing = [pip for module, pip in PREQUANTIZED_NEEDS.get(pq.method, []) if not _has_module(module)]
    if missing:
        raise ModelLoadError(
            f"This checkpoint is pre-quantized with {pq.label}; loading it needs "
            f"{' and '.join(missing)}: pip install {' '.join(missing)}"
        )


def _need(module: str, pip: str, what: str) -> None:
    if not _has_module(module):
        raise ModelLoadError(f"{what} needs {pip}: pip install {pip}")


NEEDS: dict[str, tuple[str, str, str]] = {
    "bnb-8bit": ("bitsandbytes", "bitsandbytes", "8-bit quantization"),
    "bnb-4bit": ("bitsandbytes", "bitsandbytes", "4-bit quantization"),
    "torchao-int8": ("torchao", "torchao", "torchao int8 quantization"),
    "quanto-int8": ("optimum.quanto", "optimum-quanto", "quanto int8 quantization"),
}


def quantization_needs(options: dict[str, Any]) -> None:
    """Raise "pip install X" when the chosen quantization's package is missing."""
    need = NEEDS.get(options.get("quantization", "none"))
    if need:
        _need(*need)


def build_quantization_config(options: dict[str, Any]) -> Any | None:
    """The transformers quantization config for normalized ``options`` (None: no quantization)."""
    method = options.get("quantization", "none")
    if method == "none":
        return None
    quantization_needs(options)
    import torch
    from transformers import BitsAndBytesConfig

    if method == "bnb-8bit":
        return BitsAndBytesConfig(
            load_in_8bit=True, llm_int8_enable_fp32_cpu_offload=bool(options.get("fp32_cpu_offload"))
        )
    if method == "bnb-4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=options.get("quant_type", "nf4"),
            bnb_4bit_use_double_quant=bool(options.get("use_double_quant")),
            bnb_4bit_compute_dtype=getattr(torch, options.get("compute_dtype", "float32")),
        )
    if method == "torchao-int8":
        from torchao.quantization import Int8WeightOnlyConfig
        from transformers import TorchAoConfig

        return TorchAoConfig(Int8WeightOnlyConfig())
    if method == "quanto-int8":
        from transformers import QuantoConfig

        return QuantoConfig(weights="int8")
    raise ModelLoadError(f"Unknown quantization {method!r}.")
