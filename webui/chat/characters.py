"""The set of characters available to chats, read from the character directories."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from webui.chat.cards import SkippedFile, discover_characters, save_character_yaml
from webui.chat.character import Character
from webui.errors import CharacterError
from webui.problems import Problem, Problems

log = logging.getLogger(__name__)

DEFAULT_CHARACTER = "Assistant"


class CharacterLibrary:
    """Characters by name; later directories override earlier ones with the same name.

    The files each reload skips are reported to ``problems`` (source "characters") when given,
    else logged.
    """

    def __init__(self, directories: list[Path], problems: Problems | None = None) -> None:
        self.directories = directories
        self.skipped: list[SkippedFile] = []
        self._problems = problems
        self._by_name: dict[str, Character] = {}
        # Saves, deletes and reloads run one at a time: two overlapping reloads could otherwise finish
        # in the wrong order and put back the older set of characters. Readers never wait.
        self._writing = threading.RLock()
        self.reload()

    def reload(self) -> None:
        with self._writing:  # reported under the lock too, so the list follows the last reload
            self._by_name, self.skipped = discover_characters(self.directories)
            if self._problems is not None:
                self._problems.report("characters", [Problem.of("character", f.path, f.reason) for f in self.skipped])
                return
        for skipped in self.skipped:
            log.warning("skipped character %s: %s", skipped.path, skipped.reason)

    def names(self) -> list[str]:
        return sorted(self._by_name, key=lambda n: (n != DEFAULT_CHARACTER, n.lower()))

    def get(self, name: str) -> Character:
        """The named character, else the default, else a bare one (never fails a chat)."""
        return (
            self._by_name.get(name)
            or self._by_name.get(DEFAULT_CHARACTER)
            or Character(name=name or DEFAULT_CHARACTER)
        )

    # -- editing (the last directory is the user's, writable one) ------------------------
    @property
    def user_dir(self) -> Path:
        return self.directories[-1]

    def has(self, name: str) -> bool:
        return name in self._by_name

    def user_path(self, name: str) -> Path:
        """Where a character of this name is saved in the user directory."""
        slug = re.sub(r"[^\w .()+-]+", "_", name).strip(" .") or "character"
        return self.user_dir / f"{slug}.yaml"

    def save(self, character: Character, *, replacing: str | None = None) -> Character:
        """Save ``character`` as YAML (+ avatar PNG) in the user directory and reload.

        ``replacing``: the name it had before an edit; its user file is removed when renamed.
        """
        if not character.name.strip():
            raise CharacterError("A character needs a name.")
        with self._writing:
            save_character_yaml(character, self.user_path(character.name))
            if replacing and replacing != character.name:
                self._remove_user_files(replacing)
            self.reload()
            return self.get(character.name)

    def delete(self, name: str) -> None:
        """Delete a character saved in the user directory (shipped ones are read-only)."""
        with self._writing:
            if not self._remove_user_files(name):
                raise CharacterError(
                    f"{name!r} is not in {self.user_dir}, so it cannot be deleted here "
                    "(shipped characters are read-only)."
                )
            self.reload()

    def _remove_user_files(self, name: str) -> bool:
        char = self._by_name.get(name)
        path = Path(char.source_path) if char and char.source_path else self.user_path(name)
        if path.parent.resolve() != self.user_dir.resolve() or not path.is_file():
            return False
        path.unlink()
        if path.suffix.lower() != ".png":
            path.with_suffix(".png").unlink(missing_ok=True)
        return True
