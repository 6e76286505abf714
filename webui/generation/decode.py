"""What extensions add to one generation inside a backend: logits processors, token changes.

Built per generation by ``webui.chat.hooks.TurnHooks`` and handed to ``Engine.generate`` /
``Engine.chat`` and on to ``LoadedModel.generate(..., hooks=...)``. A backend calls
``processors(ctx, input_ids)`` once the prompt is tokenized (``input_ids``: a torch tensor shaped
``(1, prompt_len)``) and applies the result while decoding: transformers directly, llama.cpp
through ``webui.plugins.for_llama_cpp``. ``modify_tokens`` is transformers only (it may change the
prompt's ids or embeddings); llama.cpp cannot use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webui.plugins.samplers import LogitsProcessor, SamplerContext

BuildProcessors = Callable[[SamplerContext, Any], list[LogitsProcessor]]
ModifyTokens = Callable[[str, Any, Any], tuple[str, Any, Any]]


@dataclass(frozen=True)
class DecodeHooks:
    """Per-generation extension work a backend performs while decoding."""

    processors: BuildProcessors | None = None
    modify_tokens: ModifyTokens | None = None  # (prompt, input_ids, input_embeds) -> same

    def build_processors(self, ctx: SamplerContext, input_ids: Any) -> list[LogitsProcessor]:
        return list(self.processors(ctx, input_ids)) if self.processors is not None else []
