"""Which generation parameters each loader applies (the Parameters tab reports the rest).

Derived from what each registered backend declares (``BackendInfo.params``), so a new backend
appears here without an edit.
"""

from __future__ import annotations

from webui.engine.registry import backend_info, loader_names
from webui.generation.params import GenerationParams

ALL_PARAMS = frozenset(GenerationParams.model_fields) - {"samplers"}
# Handled by the engine/chat layer for every backend, whatever the backend declares.
ENGINE_PARAMS = frozenset({"stop", "truncation_length", "max_new_tokens"})


def applied(loader: str) -> frozenset[str]:
    """Every parameter that takes effect with ``loader``."""
    return ENGINE_PARAMS | backend_info(loader).params


def unsupported(loader: str | None) -> list[str]:
    """Parameter names the given loader ignores (empty when unknown or no model is loaded)."""
    if not loader or loader not in loader_names():
        return []
    return sorted(ALL_PARAMS - applied(loader))
