"""Per-model load settings, saved in the data dir so a model reloads with its last options."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webui.atomic_file import write_json_atomic
from webui.engine.catalog import resolve_model
from webui.engine.options import BY_NAME, flag_values, normalize, saved_view
from webui.engine.protocol import ModelSpec
from webui.engine.registry import pick_loader

log = logging.getLogger(__name__)
FILE_NAME = "model-settings.json"


@dataclass
class SavedModel:
    loader: str
    options: dict[str, Any] = field(default_factory=dict)


class ModelSettingsStore:
    """``{model path or URL: {"loader": ..., "options": {...}}}`` in one JSON file, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> ModelSettingsStore:
        return cls(data_dir / FILE_NAME)

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> SavedModel | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("loader"), str):
            return None
        options = entry.get("options")
        return SavedModel(entry["loader"], dict(options) if isinstance(options, dict) else {})

    def put(self, key: str, loader: str, options: dict[str, Any]) -> None:
        """Remember ``loader`` and ``options`` for ``key`` (secrets such as API keys are left out)."""
        with self._lock:
            data = self._read()
            data[key] = {"loader": loader, "options": saved_view(options)}
            write_json_atomic(self.path, data, sort_keys=True)


def spec_with_saved(spec: ModelSpec, store: ModelSettingsStore, overrides: dict[str, Any] | None = None) -> ModelSpec:
    """``spec`` with the model's saved loader/options filled in; ``overrides`` (flags) win over both."""
    saved = store.get(spec.path)
    options: dict[str, Any] = {}
    loader = spec.loader
    if saved is not None:
        loader = loader or saved.loader
        if saved.loader == (loader or pick_loader(spec)):
            options.update({k: v for k, v in saved.options.items() if k in BY_NAME})
    options.update(spec.options)
    options.update(overrides or {})
    return ModelSpec(path=spec.path, loader=loader, options=options, display_name=spec.display_name)


def startup_spec(settings: Any) -> ModelSpec:
    """What to load at start: ``--model`` (or the embedded default) with saved options, then flags."""
    spec = resolve_model(settings.model, settings.loader, models_dir=settings.models_path)
    return spec_with_saved(spec, ModelSettingsStore.in_data_dir(settings.data_dir), flag_values(settings.model_dump()))


def load_and_remember(engine: Any, spec: ModelSpec, store: ModelSettingsStore) -> Any:
    """Load ``spec`` on the engine and, once it loaded, save its loader and options for next time."""
    info = engine.load(spec)
    try:
        store.put(spec.path, info.loader, normalize(info.loader, spec.options, gpu=True))
    except OSError as exc:
        log.warning("could not save the settings of %s: %s", spec.path, exc)
    return info
