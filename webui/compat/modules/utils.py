"""upstream's ``modules.utils``: gradio(*names), the lists of characters and models."""

from __future__ import annotations

from typing import Any

from webui.compat.bridge import current


def gradio(*keys: Any) -> list[Any]:
    """The named components (``shared.gradio[name]``) for event inputs/outputs, as upstream."""
    if len(keys) == 1 and isinstance(keys[0], (list, tuple)):
        keys = tuple(keys[0])
    components = current().gradio
    return [components[k] for k in keys]


def get_available_characters() -> list[str]:
    """The characters' names, read from their folders now (as upstream scans its folder on each call)."""
    bridge = current()
    if bridge.chat is None:
        return []
    bridge.chat.characters.reload()
    return bridge.chat.characters.names()


def get_available_models() -> list[str]:
    from webui.engine.catalog import scan_models_dir

    bridge = current()
    if bridge.settings is None:
        return []
    return ["None", *[e.label for e in scan_models_dir(bridge.settings.models_path)]]
