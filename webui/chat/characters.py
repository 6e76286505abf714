"""The set of characters available to chats, read from the character directories."""

from __future__ import annotations

import logging
from pathlib import Path

from webui.chat.cards import discover_characters
from webui.chat.character import Character

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
        self._by_name, self.errors = discover_characters(self.directories)
        for error in self.errors:
            log.warning("%s", error)

    def names(self) -> list[str]:
        return sorted(self._by_name, key=lambda n: (n != DEFAULT_CHARACTER, n.lower()))

    def get(self, name: str) -> Character:
        """The named character, else the default, else a bare one (never fails a chat)."""
        return self._by_name.get(name) or self._by_name.get(DEFAULT_CHARACTER) or Character(name=name or DEFAULT_CHARACTER)
