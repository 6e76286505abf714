"""upstream's ``modules.ui``: create_refresh_button, gather_interface_values, the button symbols."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from webui.compat.bridge import INPUT_ELEMENTS

# upstream draws these as emoji; text renders on every machine
refresh_symbol = "Refresh"
delete_symbol = "Delete"
save_symbol = "Save"


def list_interface_input_elements() -> list[str]:
    return list(INPUT_ELEMENTS)


def gather_interface_values(*args: Any) -> dict[str, Any]:
    """The values of ``shared.input_elements`` components (in that order) as upstream's ``state``."""
    return dict(zip(list_interface_input_elements(), args))


def create_refresh_button(refresh_component: Any, refresh_method: Callable[[], Any],
                          refreshed_args: dict[str, Any] | Callable[[], dict[str, Any]],
                          elem_class: str | list[str] = "", interactive: bool = True) -> gr.Button:
    """A button that calls ``refresh_method`` and updates ``refresh_component`` with ``refreshed_args``."""

    def refresh() -> Any:
        refresh_method()
        args = refreshed_args() if callable(refreshed_args) else refreshed_args
        return gr.update(**(args or {}))

    classes = [elem_class] if isinstance(elem_class, str) and elem_class else list(elem_class or [])
    button = gr.Button(refresh_symbol, elem_classes=classes, interactive=interactive, size="sm")
    button.click(refresh, inputs=[], outputs=[refresh_component])
    return button
