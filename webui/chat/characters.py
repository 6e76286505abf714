"""The set of characters available to chats, read from the character directories."""

from __future__ import annotations

import logging
from pathlib import Path

from webui.chat.cards import CHARACTER_SUFFIXES, load_character
from webui.chat.character import Character
from webui.errors import CharacterError

log = logging.getLogger(__name__)

DEFAULT_CHARACTER = "Assistant"


class CharacterLibrary:
    """Characters by name; later directories override earlier ones with the same name."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories
        self.errors: list[str] = []
        self._by_name: dict[str, Character] = {}
        self.reload()

    def reload(self) -> None:
        self._by_name.clear()
        self.errors.clear()
        for directory in self.directories:
            if not directory.is_dir():
                continue
            for path in sorted(directory.iterdir()):
                if path.suffix.lower() not in CHARACTER_SUFFIXES:
                    continue
                try:
                    char = load_character(path)
                except CharacterError as exc:
                    self.errors.append(str(exc))
                    log.warning("%s", exc)
                    continue
                self._by_name[char.name] = char

    def names(self) -> list[str]:
        return sorted(self._by_name, key=lambda n: (n != DEFAULT_CHARACTER, n.lower()))

    def get(self, name: str) -> Character:
        """The named character, else the default, else a bare one (never fails a chat)."""
        return self._by_name.get(name) or self._by_name.get(DEFAULT_CHARACTER) or Character(name=name or DEFAULT_CHARACTER)
