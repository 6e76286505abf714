"""Read every kind of user file the app loads and report the ones that cannot be loaded.

Each source reports to the AppContext's :class:`~webui.problems.Problems` under its own name:

- "characters" (CharacterLibrary, on every reload) and "extensions" (ExtensionManager, on every
  load, enable and rescan) report themselves;
- presets, instruction templates, model-settings.json and the models folder are read on demand, so
  they are checked here: at start-up (``check_files``) and on a refresh (``refresh_all``).

Nothing here raises: a file that cannot be read is a problem to list, never a reason to stop.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, TemplateSyntaxError

from webui.chat.instruct import InstructionTemplates
from webui.engine.catalog import check_models_dir
from webui.engine.model_settings import ModelSettingsStore
from webui.generation.presets import PresetLibrary
from webui.problems import Problem, Problems

if TYPE_CHECKING:
    from webui.context import AppContext

log = logging.getLogger(__name__)

TEMPLATE_SUFFIXES = (".jinja", ".yaml", ".yml")  # the order InstructionTemplates.source looks in


def preset_problems(presets: PresetLibrary) -> list[Problem]:
    problems = []
    for name, path in presets.files().items():
        try:
            presets.values(name)
        except Exception as exc:  # noqa: BLE001 - PresetError, or a parser bug: listed either way
            problems.append(Problem.of("preset", path, exc))
    return problems


def template_problems(templates: InstructionTemplates) -> list[Problem]:
    """Templates that cannot be read, or whose Jinja does not parse (rendering is checked per chat)."""
    problems = []
    syntax = Environment()
    try:
        names = templates.names()
    except OSError as exc:
        return [Problem.of("instruction template", templates.directory, f"cannot list the folder: {exc}")]
    for name in names:
        path = next((p for p in (templates.directory / f"{name}{s}" for s in TEMPLATE_SUFFIXES) if p.is_file()),
                    templates.directory / name)
        try:
            syntax.parse(templates.source(name))
        except TemplateSyntaxError as exc:
            problems.append(Problem.of("instruction template", path, f"not a valid Jinja template: {exc} "
                                                                     f"(line {exc.lineno})"))
        except Exception as exc:  # noqa: BLE001 - TemplateProblem, or a parser bug: listed either way
            problems.append(Problem.of("instruction template", path, exc))
    return problems


def model_settings_problems(data_dir: Path) -> list[Problem]:
    store = ModelSettingsStore.in_data_dir(data_dir)
    reason = store.problem()
    return [Problem.of("model settings", store.path, reason)] if reason else []


def models_dir_problems(models_dir: Path) -> list[Problem]:
    try:
        skipped = check_models_dir(models_dir)[1]
    except Exception as exc:  # noqa: BLE001 - never stop the app over the models folder
        log.debug("scanning %s failed", models_dir, exc_info=True)
        return [Problem.of("model file", models_dir, f"cannot scan the folder: {type(exc).__name__}: {exc}")]
    return [Problem.of("model file", path, reason) for path, reason in skipped]


def check_files(problems: Problems, *, data_dir: Path, models_dir: Path, presets: PresetLibrary,
                templates: InstructionTemplates) -> None:
    """Check the sources read on demand (presets, templates, model settings, models folder)."""
    problems.report("presets", preset_problems(presets))
    problems.report("instruction templates", template_problems(templates))
    problems.report("model settings", model_settings_problems(data_dir))
    problems.report("models folder", models_dir_problems(models_dir))


def refresh_all(ctx: AppContext) -> list[Problem]:
    """Re-read every source (characters, extensions, the rest) and return the problems found."""
    ctx.characters.reload()
    ctx.extensions.check_all()
    if ctx.presets is not None and ctx.templates is not None:
        check_files(ctx.problems, data_dir=ctx.settings.data_dir, models_dir=ctx.settings.models_path,
                    presets=ctx.presets, templates=ctx.templates)
    return ctx.problems.all()
