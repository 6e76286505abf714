"""What extensions add to one generation inside a backend: logits processors, token changes.

Built per generation by ``webui.chat.hooks.TurnHooks`` and handed to ``Engine.generate`` and on
to ``LoadedModel.generate(..., hooks=...)``. A backend whose ``BackendInfo`` declares
``extension_processors`` calls ``processors(ctx, input_ids)`` once the prompt is tokenized
(``input_ids``: a torch tensor shaped ``(1, prompt_len)``) and applies the result while decoding:
transformers directly, llama.cpp through ``webui.plugins.for_llama_cpp``. ``modify_tokens`` is for
backends that declare ``token_hooks`` (transformers: it may change the prompt's ids or embeddings).
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


def transformers_decode_kwargs(hooks: DecodeHooks | None, tokenizer: Any, prompt: str, inputs: Any,
                               seed: int) -> tuple[Any, dict[str, Any]]:
    """For the transformers backend: ``(inputs, extra generate() kwargs)`` with the hooks applied.

    tokenizer_modifier may replace the prompt's ids and add ``inputs_embeds``; the processors go
    in as ``logits_processor``.
    """
    if hooks is None:
        return inputs, {}
    import torch
    from transformers import LogitsProcessorList

    if hooks.modify_tokens is not None:
        _, ids, embeds = hooks.modify_tokens(prompt, inputs["input_ids"], None)
        if ids is not None and ids is not inputs["input_ids"]:
            ids = torch.as_tensor(ids, device=inputs["input_ids"].device).reshape(1, -1)
            inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if embeds is not None:
            inputs = {**inputs, "inputs_embeds": embeds}
    ctx = SamplerContext(encode=lambda text: tokenizer(text, add_special_tokens=False)["input_ids"],
                         eos_token_id=tokenizer.eos_token_id, seed=seed if seed >= 0 else None)
    processors = hooks.build_processors(ctx, inputs["input_ids"])
    return inputs, ({"logits_processor": LogitsProcessorList(processors)} if processors else {})


def llama_cpp_logits_processor(hooks: DecodeHooks | None, llm: Any, prompt: str, seed: int) -> Any:
    """For the llama.cpp backend: a ``llama_cpp.LogitsProcessorList`` of the hooks' processors
    (each adapted with ``for_llama_cpp``), or None. tokenizer_modifier cannot apply here."""
    if hooks is None:
        return None
    import torch
    from llama_cpp import LogitsProcessorList

    from webui.plugins.samplers import for_llama_cpp

    def encode(text: str) -> list[int]:
        return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    ids = torch.tensor([llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)], dtype=torch.long)
    ctx = SamplerContext(encode=encode, eos_token_id=int(llm.token_eos()), seed=seed if seed >= 0 else None)
    processors = hooks.build_processors(ctx, ids)
    return LogitsProcessorList([for_llama_cpp(p) for p in processors]) if processors else None
