"""Which parts of a data dir are user content, and the stores an export reads and an import writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import Engine

from webui.archive.layout import (
    JSON_SETTINGS,
    LIBRARY_DIRS,
    LORAS_DIR,
    SERVER_ONLY_SETTINGS,
    SETTINGS_YAML,
    ArchiveProblem,
    safe_part,
)
from webui.config import Settings
from webui.engine.options import NOT_SAVED
from webui.storage.db import ensure_data_dir, open_database, sqlite_url
from webui.storage.personas import PersonaRepository
from webui.storage.repository import ChatRepository


@dataclass
class DataDir:
    """A data dir with its chat and persona stores (``db``: the engine to close, when we opened it)."""

    path: Path
    models_path: Path
    chats: ChatRepository
    personas: PersonaRepository
    db: Engine | None = None

    @classmethod
    def open(cls, settings: Settings) -> DataDir:
        """Open (create, migrate) the data dir and database ``settings`` name, as the app would."""
        ensure_data_dir(settings.data_dir)
        db = open_database(settings.database_url or sqlite_url(settings.data_dir))
        return cls(settings.data_dir, settings.models_path, ChatRepository(db), PersonaRepository(db), db)

    def close(self) -> None:
        if self.db is not None:
            self.db.dispose()


def library_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """``(archive name, file)`` for the characters, presets, templates and LoRA metadata in ``data_dir``."""
    for folder, suffixes in LIBRARY_DIRS.items():
        directory = data_dir / folder
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if path.is_file() and safe_part(path.name) and path.suffix.lower() in suffixes:
                    yield f"{folder}/{path.name}", path
    loras = data_dir / LORAS_DIR
    if loras.is_dir():
        for adapter in sorted(p for p in loras.iterdir() if p.is_dir() and safe_part(p.name)):
            for path in sorted(adapter.glob("*.json")):
                if path.is_file() and safe_part(path.name):
                    yield f"{LORAS_DIR}/{adapter.name}/{path.name}", path


def model_files(models_path: Path) -> Iterator[tuple[str, Path]]:
    """``(path relative to the models dir, file)`` for every file there (hidden ones and partial
    downloads, which start with a dot, left out)."""
    if not models_path.is_dir():
        return
    for path in sorted(models_path.rglob("*")):
        rel = path.relative_to(models_path)
        if path.is_file() and all(safe_part(part) for part in rel.parts):
            yield rel.as_posix(), path


def secret_settings() -> dict[str, str]:
    """settings.yaml keys left out of an archive, with why."""
    return {**SERVER_ONLY_SETTINGS, **{name: "an API key" for name in NOT_SAVED}}


def exported_settings_yaml(path: Path) -> tuple[bytes, list[str]]:
    """settings.yaml as it goes into an archive, and a note per key left out.

    Without such keys the file is copied byte for byte (comments kept); otherwise the remaining
    mapping is written anew.
    """
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ArchiveProblem(f"Cannot read {path}: {exc}. Fix it (the app would not start with it either).") from exc
    if not isinstance(data, dict):
        raise ArchiveProblem(f"{path} must be a YAML mapping of setting names to values.")
    secrets = secret_settings()
    dropped = [key for key in data if key in secrets]
    if not dropped:
        return raw, []
    kept = {key: value for key, value in data.items() if key not in secrets}
    notes = [f"settings.yaml: {key} ({secrets[key]})" for key in dropped]
    return yaml.safe_dump(kept, sort_keys=False, allow_unicode=True).encode("utf-8"), notes


def exported_json_settings(path: Path) -> bytes:
    """model-settings.json or extensions.json as it goes into an archive (API keys never)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArchiveProblem(f"Cannot read {path}: {exc}. Fix or delete it, then export again.") from exc
    if path.name == "model-settings.json" and isinstance(data, dict):
        data = {key: _without_secrets(entry) for key, entry in data.items()}
    return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")


def _without_secrets(entry: Any) -> Any:
    if isinstance(entry, dict) and isinstance(entry.get("options"), dict):
        return {**entry, "options": {k: v for k, v in entry["options"].items() if k not in NOT_SAVED}}
    return entry


def settings_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """The settings files present in ``data_dir``."""
    for name in (SETTINGS_YAML, *JSON_SETTINGS):
        if (data_dir / name).is_file():
            yield name, data_dir / name
