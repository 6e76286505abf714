"""Sensible LoRA settings for a base model: learning rate, rank and alpha by model size, and the
modules to adapt, found from the architecture.

The modules are peft's "all-linear" choice (every ``nn.Linear`` / GPT-2 ``Conv1D`` except the output
head), restricted to the repeated decoder blocks, and named by their last path component the way
``LoraConfig.target_modules`` takes them ("q_proj", "up_proj", ...). They are found on a model
built on the ``meta`` device from the config alone, so no weights are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from webui.training.types import Hyperparams, Method

_BLOCK = re.compile(r"\.\d+\.")  # a module inside a numbered block: model.layers.3.self_attn.q_proj

# (largest parameter count, learning rate, rank, alpha): smaller models take a higher rate and
# need less rank; the QLoRA paper's 2e-4 for 7B-13B and 1e-4 above sit in the middle rows.
_SIZE_TABLE: tuple[tuple[float, float, int, int], ...] = (
    (1.5e9, 3e-4, 8, 16),
    (15e9, 2e-4, 16, 32),
    (40e9, 1e-4, 32, 64),
    (float("inf"), 1e-4, 64, 128),
)
DPO_LR_FACTOR = 0.25  # preference tuning moves the policy away from a reference: a gentler rate


@dataclass(frozen=True)
class ModelDefaults:
    """What ``Hyperparams`` fields left as ``None`` become for one model."""

    n_params: int
    learning_rate: float
    rank: int
    alpha: int
    target_modules: list[str]


def size_defaults(n_params: int, method: Method = "sft") -> tuple[float, int, int]:
    """(learning rate, rank, alpha) for a model of ``n_params`` parameters."""
    for limit, lr, rank, alpha in _SIZE_TABLE:
        if n_params <= limit:
            break
    return (lr * DPO_LR_FACTOR if method == "dpo" else lr), rank, alpha


def _linear_classes() -> tuple[type, ...]:
    import torch
    from transformers.pytorch_utils import Conv1D

    classes: list[type] = [torch.nn.Linear, Conv1D]
    try:  # a 4-bit base (QLoRA) has bitsandbytes layers in place of nn.Linear
        import bitsandbytes as bnb

        classes += [bnb.nn.Linear4bit, bnb.nn.Linear8bitLt]
    except ImportError:  # pragma: no cover - bitsandbytes is in requirements.txt
        pass
    return tuple(classes)


def find_target_modules(model: Any) -> list[str]:
    """The last names of the linear layers inside the model's repeated blocks, output head excluded."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    classes = _linear_classes()
    names: set[str] = set()
    for path, module in model.named_modules():
        if module is head or not isinstance(module, classes) or not _BLOCK.search(f".{path}."):
            continue
        names.add(path.rsplit(".", 1)[-1])
    return sorted(names)


def meta_model(config: Any) -> Any:
    """The model ``config`` describes, on the meta device (no memory, no weights read)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def model_defaults(config: Any, method: Method = "sft") -> ModelDefaults:
    """Defaults for the model ``config`` describes (a transformers ``PretrainedConfig``)."""
    model = meta_model(config)
    n_params = sum(p.numel() for p in model.parameters())
    lr, rank, alpha = size_defaults(n_params, method)
    modules = find_target_modules(model)
    return ModelDefaults(n_params=n_params, learning_rate=lr, rank=rank, alpha=alpha, target_modules=modules)


def resolved(hyper: Hyperparams, defaults: ModelDefaults) -> Hyperparams:
    """A copy of ``hyper`` with every ``None`` LoRA setting filled from ``defaults`` (recorded as used)."""
    values = hyper.to_dict()
    values["learning_rate"] = hyper.learning_rate if hyper.learning_rate is not None else defaults.learning_rate
    values["rank"] = hyper.rank if hyper.rank is not None else defaults.rank
    values["alpha"] = hyper.alpha if hyper.alpha is not None else 2 * values["rank"] if hyper.rank else defaults.alpha
    values["target_modules"] = list(hyper.target_modules or defaults.target_modules)
    return Hyperparams(**values)
