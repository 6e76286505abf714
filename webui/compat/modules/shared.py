"""upstream's ``modules.shared``, read from the app on every access (module ``__getattr__``).

``tokenizer`` (encode/decode/eos_token_id through the loaded model; None while none is loaded),
``model`` (the loaded model object, None while none is), ``model_name``, ``args``, ``settings``,
``gradio`` (the named components), ``user_data_dir``, ``input_elements``, ``is_chat()``,
``processing_message``, ``stop_everything``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webui.compat.bridge import INPUT_ELEMENTS, LiveMapping, current
from webui.compat.tokenizer import TokenizerProxy

processing_message = "*Is typing...*"
stop_everything = False
need_restart = False
gradio = LiveMapping(lambda bridge: bridge.gradio)
settings = LiveMapping(lambda bridge: bridge.shared_settings)


def is_chat() -> bool:
    """Always True: every generation here belongs to a chat or the API."""
    return True


_LIVE = frozenset({"tokenizer", "model", "model_name", "args", "input_elements", "user_data_dir"})


def __getattr__(name: str) -> Any:
    if name not in _LIVE:
        raise AttributeError(f"module 'modules.shared' has no attribute {name!r} (not provided by this app)")
    bridge = current()
    if name == "tokenizer":
        return TokenizerProxy(bridge) if bridge.model_loaded() else None
    if name == "model":
        return bridge.engine.model if bridge.engine is not None else None
    if name == "model_name":
        return bridge.engine.model_info.name if bridge.model_loaded() and bridge.engine.model_info else "None"
    if name == "args":
        return bridge.args()
    if name == "input_elements":
        return list(INPUT_ELEMENTS)
    return Path(bridge.settings.data_dir) if bridge.settings is not None else Path("user_data")  # user_data_dir
