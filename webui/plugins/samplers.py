"""Sampler declarations that extensions return from ``register_samplers()``.

A sampler is a logits processor (``(input_ids, scores) -> scores`` on torch tensors, shaped
``(batch, seq)`` and ``(batch, vocab)`` like transformers' LogitsProcessor) plus typed parameters.
Parameter names are global (they become API fields and Parameters-tab sliders), so use the
names other servers use (``dry_multiplier``, ``xtc_threshold``...).

A new processor is built for every generation (processors may keep state between tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from webui.plugins.calling import plan_call
from webui.plugins.params import ParamSpec, infer_specs

if TYPE_CHECKING:
    import numpy as np
    import torch

LogitsProcessor = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class SamplerContext:
    """What a processor factory may need from the loaded model (all optional)."""

    encode: Callable[[str], list[int]] | None = None  # text -> token ids, no special tokens
    eos_token_id: int | None = None
    seed: int | None = None  # for samplers that draw random numbers; None: unseeded


def sampler_param(name: str, default: Any, *, min: float | None = None,
                  max: float | None = None, step: float | None = None,
                  choices: Sequence[Any] | None = None, label: str | None = None,
                  info: str | None = None) -> ParamSpec:
    """A typed sampler parameter; the type comes from ``default`` as for extension params."""
    meta = {"min": min, "max": max, "step": step, "label": label, "info": info}
    if choices is not None:
        meta["choices"] = list(choices)
    return infer_specs({name: default}, {name: meta})[name]


@dataclass(frozen=True)
class SamplerSpec:
    """One sampler: its processor factory and the parameters it reads.

    ``factory(params)`` or ``factory(params, ctx)`` builds the processor; ``params`` holds every
    declared parameter (defaults filled in, values coerced). ``is_active(params)`` says whether
    the values ask for this sampler at all (e.g. multiplier > 0); None means always.
    """

    name: str
    factory: Callable[..., LogitsProcessor]
    params: tuple[ParamSpec, ...] = ()
    description: str = ""
    is_active: Callable[[Mapping[str, Any]], bool] | None = None
    # Backends it works with: transformers directly, llama.cpp through ``for_llama_cpp``.
    backends: tuple[str, ...] = ("transformers", "llama.cpp")
    extension: str = field(default="", compare=False)  # set by the manager

    def defaults(self) -> dict[str, Any]:
        return {p.key: p.default for p in self.params}

    def resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """This sampler's parameters from ``values`` (missing -> default), coerced; ParamError."""
        return {p.key: p.coerce(values[p.key]) if p.key in values else p.default
                for p in self.params}

    def active(self, values: Mapping[str, Any]) -> bool:
        return True if self.is_active is None else bool(self.is_active(self.resolve(values)))

    def build(self, values: Mapping[str, Any], ctx: SamplerContext | None = None) -> LogitsProcessor:
        available = {"params": self.resolve(values), "ctx": ctx or SamplerContext()}
        args, kwargs = plan_call(self.factory, ("params", "ctx")).bind(available)
        return self.factory(*args, **kwargs)


def for_llama_cpp(processor: LogitsProcessor) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Adapt a torch processor to llama-cpp-python's ``(input_ids, scores)`` numpy 1-D form."""
    import numpy as np
    import torch

    def call(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        ids = torch.from_numpy(np.asarray(input_ids, dtype=np.int64)).unsqueeze(0)
        logits = torch.from_numpy(np.array(scores, dtype=np.float32)).unsqueeze(0)
        out = processor(ids, logits)
        return out.squeeze(0).numpy().astype(scores.dtype, copy=False)

    return call
