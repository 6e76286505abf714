"""upstream's ``modules.text_generation``: encode, decode, get_encoded_length, generate_reply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from webui.compat.bridge import current


def encode(prompt: str, add_special_tokens: bool = True, add_bos_token: bool = True,
           truncation_length: int | None = None) -> Any:
    """The loaded model's token ids for ``prompt``, shaped ``(1, n)`` like upstream (a torch tensor)."""
    import torch

    ids = current().tokenize(str(prompt))
    if truncation_length is not None and truncation_length > 0:
        ids = ids[-truncation_length:]
    return torch.tensor([ids], dtype=torch.long)


def decode(output_ids: Any, skip_special_tokens: bool = True) -> str:
    from webui.compat.tokenizer import _flat_ids

    return current().detokenize(_flat_ids(output_ids))


def get_encoded_length(prompt: str) -> int:
    """The prompt's length in tokens, as context truncation counts it."""
    bridge = current()
    if bridge.chat is not None:
        return bridge.chat.hooks.tokenized_length(str(prompt), bridge.count_tokens)
    return bridge.count_tokens(str(prompt))


def generate_reply(question: str, state: dict[str, Any], stopping_strings: list[str] | None = None,
                   is_chat: bool = False, escape_html: bool = False, for_ui: bool = False) -> Iterator[str]:
    """Yields the cumulative reply to the raw prompt ``question`` (the completions path, with the
    extension hooks), with the generation parameters found in ``state``."""
    from webui.generation.params import GenerationParams

    bridge = current()
    if bridge.chat is None:
        raise RuntimeError("modules.text_generation: no app is attached")
    fields = {k: v for k, v in (state or {}).items() if k in GenerationParams.model_fields}
    if stopping_strings:
        fields["stop"] = [*fields.get("stop", []), *stopping_strings]
    params = GenerationParams.model_validate(fields)
    for progress in bridge.chat.complete(str(question), params):
        yield progress.text

