"""A loaded model's real memory footprint.

``get_memory_footprint()`` multiplies each parameter's numel by its element size, which is wrong
for tensor subclasses that pack weights (torchao's Int8Tensor and quanto's WeightQBytesTensor
report the fp32 size). Here we walk into such tensors and add up the storage they really hold,
and bitsandbytes' quantization state too. The RSS delta around a load is a cross-check.
"""

from __future__ import annotations

import os
from typing import Any


def _tensor_bytes(t: Any, seen: set[tuple[int, int]]) -> int:
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is not None and type(t).__name__ not in ("Parameter", "Tensor"):
        try:
            names, _ = t.__tensor_flatten__()
        except (TypeError, AttributeError, RuntimeError):
            names = []
        if names:
            return sum(_tensor_bytes(getattr(t, n), seen) for n in names)
    if getattr(t, "is_meta", False):
        return 0
    try:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError, AttributeError):
        return int(t.numel() * t.element_size())
    if key in seen or key[0] == 0:
        return 0
    seen.add(key)
    return int(key[1])


def _bnb_extra(t: Any, seen: set[tuple[int, int]]) -> int:
    """bitsandbytes keeps scales beside the packed data: Int8Params.SCB, Params4bit.quant_state."""
    import torch

    total = 0
    scb = getattr(t, "SCB", None)
    if isinstance(scb, torch.Tensor):
        total += _tensor_bytes(scb, seen)
    state = getattr(t, "quant_state", None)
    while state is not None:
        for name in ("absmax", "code", "offset"):
            value = getattr(state, name, None)
            if isinstance(value, torch.Tensor):
                total += _tensor_bytes(value, seen)
        state = getattr(state, "state2", None)
    return total


def model_bytes(model: Any) -> int:
    """Bytes of every parameter and buffer as stored (shared storage counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for t in [*model.parameters(), *model.buffers()]:
        total += _tensor_bytes(t, seen) + _bnb_extra(t, seen)
    return total


def rss_bytes() -> int:
    """Resident set size of this process (0 where it cannot be read)."""
    try:
        with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - optional cross-check only
        return 0


def human(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
