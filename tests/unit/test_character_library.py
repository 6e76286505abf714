"""The character library on real files: a save is never undone by a reload that overlaps it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from webui.chat import characters as characters_module
from webui.chat.character import Character
from webui.chat.characters import CharacterLibrary
from webui.config import REPO_ROOT


def test_a_slow_reload_does_not_put_back_the_characters_from_before_a_save(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    library = CharacterLibrary([REPO_ROOT / "characters", tmp_path])
    real_discover = characters_module.discover_characters
    read_done = threading.Event()

    def slow_first_read(directories):  # type: ignore[no-untyped-def]
        found = real_discover(directories)
        if not read_done.is_set():  # the background reload: it has read the files, then stalls
            read_done.set()
            time.sleep(0.5)
        return found

    monkeypatch.setattr(characters_module, "discover_characters", slow_first_read)
    background = threading.Thread(target=library.reload)
    background.start()
    assert read_done.wait(5)
    library.save(Character(name="Quillon", description="A cartographer."))  # while that reload still runs
    background.join(5)
    assert library.has("Quillon") and library.get("Quillon").description == "A cartographer."
    assert (tmp_path / "Quillon.yaml").is_file()


def test_delete_removes_a_saved_character_and_refuses_a_shipped_one(tmp_path: Path) -> None:
    library = CharacterLibrary([REPO_ROOT / "characters", tmp_path])
    library.save(Character(name="Quillon", description="A cartographer."))
    library.delete("Quillon")
    assert not library.has("Quillon") and not (tmp_path / "Quillon.yaml").exists()
    with pytest.raises(Exception, match="read-only"):
        library.delete("Assistant")
    assert library.has("Assistant")
