"""AppContext: everything a request handler needs, built once in app.py and passed down."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from webui.browser_identity import BrowserIdentities, browser_identities
from webui.chat.characters import CharacterLibrary
from webui.chat.instruct import InstructionTemplates
from webui.chat.service import ChatService
from webui.config import REPO_ROOT, Settings
from webui.engine.engine import Engine
from webui.engine.model_settings import load_at_startup
from webui.errors import UserFacingError
from webui.file_checks import check_files
from webui.generation.presets import PresetLibrary
from webui.plugins import ExtensionManager, JsonFileStore
from webui.problems import Problems
from webui.storage.db import ensure_data_dir, open_database, sqlite_url
from webui.storage.notebook import NotebookRepository
from webui.storage.personas import PersonaRepository
from webui.storage.repository import ChatRepository
from webui.training.runs import RunManager

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
    browsers: BrowserIdentities | None = None  # reachable without accounts: each browser's own history
    problems: Problems = field(default_factory=Problems)  # files skipped because they could not be loaded
    notebooks: NotebookRepository | None = None  # the Notebook's saved prompts
    training: RunManager | None = None  # LoRA training runs (webui/training/runs.py)


def build_context(settings: Settings, *, load_model: bool = True) -> AppContext:
    """Open storage, read characters and (optionally) load the model. Raises UserFacingError."""
    ensure_data_dir(settings.data_dir)
    browsers = browser_identities(settings)
    db = open_database(settings.database_url or sqlite_url(settings.data_dir))
    repo = ChatRepository(db)
    problems = Problems()  # a user's file that cannot be loaded is skipped and listed, never fatal
    characters = CharacterLibrary([*settings.characters_dirs, settings.user_characters_dir], problems)
    extensions = ExtensionManager(settings.extension_dirs, store=JsonFileStore(settings.data_dir / "extensions.json"),
                                  problems=problems)
    extensions.compat.attach(settings=settings)  # what text-generation-webui extensions read (webui/compat)
    if settings.extensions is not None:
        enable_requested(extensions, settings.extensions)
    else:
        extensions.restore_enabled()
    engine = Engine()
    if load_model:
        try:
            load_at_startup(engine, settings, problems)
        except BaseException:
            engine.shutdown()
            raise
    personas = PersonaRepository(db)
    presets = PresetLibrary([REPO_ROOT / "presets", settings.data_dir / "presets"])
    templates = InstructionTemplates(settings.data_dir / "instruction-templates")
    check_files(problems, data_dir=settings.data_dir, models_dir=settings.models_path, presets=presets,
                templates=templates)
    chat = ChatService(engine, repo, characters, user_name=settings.user_name, personas=personas, templates=templates,
                       extensions=extensions)
    extensions.compat.attach(engine=engine, chat=chat)
    return AppContext(settings, engine, repo, characters, chat, extensions, personas, presets, templates, browsers,
                      problems=problems, notebooks=NotebookRepository(db),
                      training=RunManager(settings.data_dir, repo=repo, characters=characters, personas=personas,
                                          user_name=settings.user_name))


def enable_requested(extensions: ExtensionManager, names: list[str]) -> None:
    """``--extensions NAME...``: enable those, in order, and save the choice. One that cannot be
    enabled is said on one error line and listed in Problems, and the app starts without it."""
    refused = extensions.set_enabled(names, persist=False, origin="--extensions")
    for name, why in refused.items():
        log.error("extension %s (asked for with --extensions) is not enabled: %s", name, why)
    try:
        extensions.set_enabled(extensions.enabled())  # saved as the enabled set for the next start
    except (OSError, UserFacingError) as exc:  # extensions.json cannot be read (listed in Problems) or written
        log.warning("the enabled extensions were not saved: %s", exc)
