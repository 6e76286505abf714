"""AppContext: everything a request handler needs, built once in app.py and passed down."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from webui.chat.characters import CharacterLibrary
from webui.chat.instruct import InstructionTemplates
from webui.chat.service import ChatService
from webui.config import REPO_ROOT, Settings
from webui.engine.engine import Engine
from webui.engine.model_settings import ModelSettingsStore, load_and_remember, startup_spec
from webui.generation.presets import PresetLibrary
from webui.plugins import ExtensionManager, JsonFileStore
from webui.storage.db import ensure_data_dir, open_database, sqlite_url
from webui.storage.personas import PersonaRepository
from webui.storage.repository import ChatRepository

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    repo: ChatRepository
    characters: CharacterLibrary
    chat: ChatService
    extensions: ExtensionManager
    personas: PersonaRepository | None = None
    presets: PresetLibrary | None = None
    templates: InstructionTemplates | None = None


def build_context(settings: Settings, *, load_model: bool = True) -> AppContext:
    """Open storage, read characters and (optionally) load the model. Raises UserFacingError."""
    ensure_data_dir(settings.data_dir)
    db = open_database(settings.database_url or sqlite_url(settings.data_dir))
    repo = ChatRepository(db)
    characters = CharacterLibrary([*settings.characters_dirs, settings.user_characters_dir])
    extensions = ExtensionManager(settings.extension_dirs, store=JsonFileStore(settings.data_dir / "extensions.json"))
    if settings.extensions is not None:
        refused = extensions.set_enabled(settings.extensions)
    else:
        refused = extensions.restore_enabled()
    for name, why in refused.items():
        log.warning("extension %s not enabled: %s", name, why)
    engine = Engine()
    if load_model:
        try:
            load_and_remember(engine, startup_spec(settings), ModelSettingsStore.in_data_dir(settings.data_dir))
        except BaseException:
            engine.shutdown()
            raise
    personas = PersonaRepository(db)
    presets = PresetLibrary([REPO_ROOT / "presets", settings.data_dir / "presets"])
    templates = InstructionTemplates(settings.data_dir / "instruction-templates")
    chat = ChatService(engine, repo, characters, user_name=settings.user_name, personas=personas, templates=templates,
                       extensions=extensions)
    return AppContext(settings, engine, repo, characters, chat, extensions, personas, presets, templates)
