"""What the ExtensionManager does for extensions written for text-generation-webui: its
``modules`` package and ``extensions.<name>`` imports, its history shape in the hooks that take
``history``, and import errors said in its terms."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from webui.compat import PROVIDED, alias_extension, install_packages
from webui.compat.bridge import SLOT, CompatBridge
from webui.compat.history import from_upstream, split_pending, to_upstream
from webui.plugins.loader import ExtensionSource

DOCS = "docs/extensions.md#extensions-written-for-text-generation-webui"
# hooks whose ``history`` argument an upstream-style extension receives in upstream's shape
HISTORY_HOOKS = frozenset({"history_modifier", "custom_generate_chat_prompt"})


def calling(is_upstream: bool, hook: str) -> contextlib.AbstractContextManager[None]:
    """Around an extension's hook call: Gradio 4's ``gr.Dataset`` samples in an upstream-style ``ui()``."""
    if is_upstream and hook == "ui":
        from webui.compat.gradio_compat import upstream_components

        return upstream_components()
    return contextlib.nullcontext()


def prepare_import(bridge: CompatBridge, directories: Sequence[Path]) -> None:
    """Before importing an extension: ``modules`` and ``extensions`` importable, this bridge current."""
    SLOT.bridge = bridge
    install_packages(list(directories))


def after_import(source: ExtensionSource, package_name: str) -> None:
    if source.kind == "directory":
        alias_extension(source.name, package_name)


def missing_module_message(name: str, missing: str | None, source: ExtensionSource) -> str:
    """Why ``import <missing>`` failed, and what to do (never "add modules to requirements.txt")."""
    if missing and missing.split(".")[0] == "modules":
        return (f"extension {name!r} imports text-generation-webui's {missing}, which this app does not provide "
                f"(provided: {', '.join(f'modules.{m}' for m in sorted(PROVIDED - {'modules'}))}; see {DOCS})")
    hint = (f"pip install -r {source.requirements_file}" if source.requirements_file is not None
            and source.requirements_file.is_file()
            else "pip install the package that provides it; the extension's author should list it in its "
                 "requirements.txt")
    return f"extension {name!r} cannot be imported: module {missing!r} is not installed ({hint})"


def import_error_message(name: str, exc: ImportError) -> str | None:
    """``from modules.x import y`` where this app's ``modules.x`` lacks ``y``; None for other errors."""
    module = getattr(exc, "name", None) or ""
    if module.split(".")[0] != "modules":
        return None
    return (f"extension {name!r} uses something text-generation-webui's {module} has that this app does not "
            f"provide: {exc} (see {DOCS})")


def unprovided_modules(used: Sequence[str]) -> list[str]:
    """The ``modules.<name>`` a script imports that this app does not provide."""
    return [f"modules.{m}" for m in used if m not in PROVIDED]


def adapt_history(hook: str, values: Mapping[str, Any]) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    """For an upstream-style extension: ``values`` with ``history`` (and ``state['history']``) in
    upstream's shape, without the pending user message (upstream passes it as the input), and how to
    turn its result back. Changes it makes in place to ``state`` reach the caller's ``state``."""
    out = dict(values)
    state = out.get("state")
    shaped_state = None
    if isinstance(state, dict) and isinstance(state.get("history"), list):
        shaped_state = {**state, "history": to_upstream(split_pending(state["history"])[0])}
        out["state"] = shaped_state
    restore: Callable[[Any], Any] = _same
    history = out.get("history")
    if hook in HISTORY_HOOKS and isinstance(history, list):
        rest, pending = split_pending(history)
        system = [m for m in rest if m.get("role") == "system"]  # upstream's history has none: kept aside
        out["history"] = to_upstream(rest)
        if hook == "history_modifier":
            def restore(result: Any) -> Any:
                if result is None:
                    return None
                return system + from_upstream(result) + ([pending] if pending is not None else [])
    if shaped_state is None:
        return out, restore
    original = state

    def back(result: Any) -> Any:
        for key, value in shaped_state.items():  # in-place changes, as upstream's hooks make them
            if key != "history":
                original[key] = value
        if hook == "state_modifier" and isinstance(result, dict):
            return {**result, "history": original["history"]}
        return restore(result)

    return out, back


def _same(result: Any) -> Any:
    return result
