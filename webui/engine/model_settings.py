"""Per-model load settings, saved in the data dir so a model reloads with its last options."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webui.atomic_file import write_json_atomic
from webui.bounded_parse import load_json
from webui.engine.catalog import resolve_model
from webui.engine.options import BY_NAME, flag_values, normalize, saved_view
from webui.engine.protocol import ModelSpec
from webui.engine.registry import loader_names, pick_loader
from webui.errors import ModelLoadError, UserFacingError
from webui.problems import Problem, Problems
from webui.training.lora_library import LoraLibrary

log = logging.getLogger(__name__)
FILE_NAME = "model-settings.json"


class ModelSettingsError(UserFacingError):
    """model-settings.json exists but does not hold a JSON object; it is never overwritten then."""


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
        """The saved settings; a broken file is an error (not {}), so a save never overwrites it."""
        if not self.path.is_file():
            return {}
        try:
            data = load_json(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: not JSON, not UTF-8, nested too deep
            raise ModelSettingsError(f"Cannot read the model settings file {self.path} ({exc}). "
                                     "Fix or delete the file.") from exc
        if not isinstance(data, dict):
            raise ModelSettingsError(f"The model settings file {self.path} does not hold a JSON object. "
                                     "Fix or delete the file.")
        return data

    def problem(self) -> str | None:
        """Why the file cannot be used, or None (also when there is none yet)."""
        try:
            self._read()
        except ModelSettingsError as exc:
            return str(exc)
        return None

    def get(self, key: str) -> SavedModel | None:
        """The saved loader and options of ``key``; None when none (or the file cannot be read)."""
        try:
            entry = self._read().get(key)
        except ModelSettingsError:
            return None  # reported by problem(); the model opens with its defaults
        if not isinstance(entry, dict) or entry.get("loader") not in loader_names():
            return None
        options = entry.get("options")
        return SavedModel(entry["loader"], dict(options) if isinstance(options, dict) else {})

    def put(self, key: str, loader: str, options: dict[str, Any]) -> None:
        """Remember ``loader`` and ``options`` for ``key`` (secrets such as API keys are left out)."""
        with self._lock:
            data = self._read()
            data[key] = {"loader": loader, "options": saved_view(options)}
            write_json_atomic(self.path, data, sort_keys=True)


def spec_with_saved(spec: ModelSpec, store: ModelSettingsStore | None,
                    overrides: dict[str, Any] | None = None) -> ModelSpec:
    """``spec`` with the model's saved loader/options filled in (none without a ``store``);
    ``overrides`` (flags) win over both."""
    saved = store.get(spec.path) if store is not None else None
    options: dict[str, Any] = {}
    loader = spec.loader
    if saved is not None:
        loader = loader or saved.loader
        if saved.loader == (loader or pick_loader(spec)):
            options.update({k: v for k, v in saved.options.items() if k in BY_NAME})
    options.update(spec.options)
    options.update(overrides or {})
    return ModelSpec(path=spec.path, loader=loader, options=options, display_name=spec.display_name)


def startup_spec(settings: Any, *, saved: bool = True) -> ModelSpec:
    """What to load at start: ``--model`` (or the embedded default) with saved options, then flags."""
    spec = resolve_model(settings.model, settings.loader, models_dir=settings.models_path)
    store = ModelSettingsStore.in_data_dir(settings.data_dir) if saved else None
    return spec_with_saved(spec, store, flag_values(settings.model_dump()))


def load_at_startup(engine: Any, settings: Any, problems: Problems) -> Any:
    """Load the start-up model. When it fails with the options saved in model-settings.json (a
    hand-edited value, say), that is reported and it loads with its defaults and the flags, without
    saving them: the saved options stay for the user to fix (a passing failure, such as running out
    of GPU memory, must not erase hand-tuned options). A model that fails without them too (a bad
    ``--model``) raises ModelLoadError."""
    store = ModelSettingsStore.in_data_dir(settings.data_dir)
    spec = startup_spec(settings)
    try:
        info = load_and_remember(engine, spec, store)
    except ModelLoadError as exc:
        plain = startup_spec(settings, saved=False)
        if plain == spec:
            raise
        problems.report("saved model options", [Problem.of(
            "model settings", store.path, f"the options saved for {spec.path} were not used: {exc}")])
        info = engine.load(plain)
    apply_startup_loras(engine, settings, problems)
    return info


def startup_lora_names(settings: Any) -> list[str]:
    """``--lora a --lora b`` or ``--lora a,b`` (WEBUI_LORA / settings.yaml: a list or "a,b")."""
    return [name.strip() for item in settings.lora for name in str(item).split(",") if name.strip()]


def apply_startup_loras(engine: Any, settings: Any, problems: Problems) -> None:
    """Apply the ``--lora`` adapters to the start-up model. One that does not exist, or that the
    model cannot take, is listed in Problems (with why) and the app starts without it."""
    names = startup_lora_names(settings)
    if not names:
        return
    library = LoraLibrary(settings.data_dir)
    found: list[str] = []
    skipped: list[Problem] = []
    for name in names:
        try:
            library.get(name)
            found.append(name)
        except UserFacingError as exc:
            skipped.append(Problem.of("LoRA adapter", library.root / name, f"not applied (--lora): {exc}"))
    if found:
        try:
            engine.apply_loras(found, library=library)
        except UserFacingError as exc:
            skipped += [Problem.of("LoRA adapter", library.root / name, f"not applied (--lora): {exc}")
                        for name in found]
    problems.report("startup adapters", skipped)


def load_and_remember(engine: Any, spec: ModelSpec, store: ModelSettingsStore) -> Any:
    """Load ``spec`` on the engine and, once it loaded, save its loader and options for next time."""
    info = engine.load(spec)
    try:
        store.put(spec.path, info.loader, normalize(info.loader, spec.options, gpu=True))
    except (OSError, UserFacingError) as exc:
        log.warning("could not save the settings of %s: %s", spec.path, exc)
    return info
