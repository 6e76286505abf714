"""``shared.tokenizer`` for extensions written for text-generation-webui: the loaded model's own
tokenizer, reached through the engine (no second copy is loaded)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webui.compat.bridge import CompatBridge


class TokenizerProxy:
    """``encode``/``decode``/``eos_token_id``/``bos_token_id`` as a transformers tokenizer offers them."""

    def __init__(self, bridge: CompatBridge) -> None:
        self._bridge = bridge

    def encode(self, text: str, add_special_tokens: bool = True, **_: Any) -> list[int]:
        """Token ids (no BOS: upstream extensions take ``encode(x)[-1]`` for a single token)."""
        return self._bridge.tokenize(str(text))

    def decode(self, ids: Any, skip_special_tokens: bool = False, **_: Any) -> str:
        return self._bridge.detokenize(_flat_ids(ids))

    def __call__(self, text: str, **kwargs: Any) -> dict[str, list[int]]:
        ids = self.encode(text, **kwargs)
        return {"input_ids": ids, "attention_mask": [1] * len(ids)}

    def convert_ids_to_tokens(self, ids: Any) -> list[str]:
        return [self._bridge.detokenize([i]) for i in _flat_ids(ids)]

    @property
    def eos_token_id(self) -> int | None:
        return self._bridge.special_token_id("eos")

    @property
    def bos_token_id(self) -> int | None:
        return self._bridge.special_token_id("bos")

    def __len__(self) -> int:
        info = self._bridge.require_engine().model_info
        return int(info.vocab_size or 0) if info else 0


def _flat_ids(ids: Any) -> list[int]:
    """An int, a list, or a tensor (1-D, or shaped (1, n) as upstream passes) as a list of ints."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    items = list(ids) if isinstance(ids, Iterable) else [ids]
    if len(items) == 1 and isinstance(items[0], (list, tuple)):
        items = list(items[0])
    return [int(i) for i in items]
