"""Read character files into :class:`~webui.chat.character.Character`.

Supported here: Oobabooga YAML/JSON (``name``, ``greeting``, ``context``).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from webui.chat.character import Character
from webui.errors import CharacterError

CHARACTER_SUFFIXES = (".yaml", ".yml", ".json")


def load_character(path: Path) -> Character:
    """Parse one character file; raise CharacterError with a clear message if it cannot be."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CharacterError(f"Cannot read character file {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CharacterError(f"Character file {path.name} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict) or not str(data.get("name", "")).strip():
        raise CharacterError(f"Character file {path.name} has no 'name' field.")
    return Character(
        name=str(data["name"]).strip(),
        first_mes=str(data.get("greeting", "") or ""),
        description=str(data.get("context", "") or ""),
        source_path=str(path),
    )
