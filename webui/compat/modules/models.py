"""upstream's ``modules.models``: load_model and unload_model, through the app's engine."""

from __future__ import annotations

from typing import Any

from webui.compat.bridge import current


def load_model(model_name: str, loader: str | None = None) -> tuple[Any, Any]:
    """Load ``model_name`` (a name in the models dir, a path, or a server URL) as the Model tab does,
    with its saved options; returns ``(shared.model, shared.tokenizer)`` like upstream."""
    from webui.compat.tokenizer import TokenizerProxy
    from webui.engine.catalog import resolve_model
    from webui.engine.model_settings import ModelSettingsStore, load_and_remember, spec_with_saved

    bridge = current()
    engine, settings = bridge.require_engine(), bridge.settings
    if settings is None:
        raise RuntimeError("modules.models: no app is attached")
    store = ModelSettingsStore.in_data_dir(settings.data_dir)
    spec = spec_with_saved(resolve_model(model_name, loader, models_dir=settings.models_path), store, {})
    load_and_remember(engine, spec, store)
    return engine.model, TokenizerProxy(bridge)


def unload_model(keep_model_name: bool = False) -> None:
    current().require_engine().unload()
