"""Finding extensions (directories, entry points), checking their requirements, importing them."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "webui.extensions"
SCRIPT_NAME = "script.py"


@dataclass(frozen=True)
class ExtensionSource:
    """Where an extension comes from, before it is imported."""

    name: str
    kind: Literal["directory", "entry_point"]
    location: str  # the script path, or "distribution: module:attr"
    script: Path | None = None
    entry_point: importlib.metadata.EntryPoint | None = None

    @property
    def requirements_file(self) -> Path | None:
        return self.script.parent / "requirements.txt" if self.script else None


def discover_directories(directories: Iterable[str | Path]) -> list[ExtensionSource]:
    """Every ``<dir>/<name>/script.py``, in directory order, then by name."""
    found: list[ExtensionSource] = []
    for directory in directories:
        base = Path(directory)
        if not base.is_dir():
            continue
        for script in sorted(base.glob(f"*/{SCRIPT_NAME}")):
            name = script.parent.name
            if name.startswith((".", "_")):
                continue
            found.append(ExtensionSource(name, "directory", str(script), script=script))
    return found


def discover_entry_points(group: str = ENTRY_POINT_GROUP) -> list[ExtensionSource]:
    """Extensions that installed packages declare under the entry-point ``group``."""
    found = []
    for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name}: {ep.value}" if dist is not None else ep.value
        found.append(ExtensionSource(ep.name, "entry_point", origin, entry_point=ep))
    return found


def unmet_requirements(lines: Iterable[str]) -> list[str]:
    """Requirement lines that the installed packages do not satisfy, each with the reason."""
    problems = []
    for raw in lines:
        line = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue  # comments and pip options (-r, --index-url...) are not checked
        try:
            req = Requirement(line)
        except InvalidRequirement:
            log.warning("cannot check requirement %r (not a PEP 508 line)", line)
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{req} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{req} (installed: {installed})")
    return problems


def requirements_problems(source: ExtensionSource) -> list[str]:
    """Unmet lines of a directory extension's requirements.txt (pip handles entry points)."""
    path = source.requirements_file
    if path is None or not path.is_file():
        return []
    return unmet_requirements(path.read_text(encoding="utf-8").splitlines())


def import_source(source: ExtensionSource, module_name: str) -> Any:
    """Import an extension: its script module, or the object its entry point names."""
    if source.entry_point is not None:
        return source.entry_point.load()
    assert source.script is not None
    return import_script(source.script, module_name)


def import_script(script: Path, module_name: str) -> ModuleType:
    """Import ``<dir>/script.py`` as ``<module_name>.script`` under a package for ``<dir>``.

    The package lets the script use relative imports of its neighbours (``from . import util``)
    as it could under text-generation-webui's ``extensions.<name>`` package; the unique name keeps
    two copies (or two managers) apart.
    """
    package_dir = script.parent
    init = package_dir / "__init__.py"
    if init.is_file():
        pkg_spec = importlib.util.spec_from_file_location(
            module_name, init, submodule_search_locations=[str(package_dir)])
    else:
        pkg_spec = importlib.machinery.ModuleSpec(module_name, None, is_package=True)
        pkg_spec.submodule_search_locations = [str(package_dir)]
    script_name = f"{module_name}.script"
    script_spec = importlib.util.spec_from_file_location(script_name, script)
    if pkg_spec is None or script_spec is None or script_spec.loader is None:
        raise ImportError(f"cannot import {script}")
    package = importlib.util.module_from_spec(pkg_spec)
    module = importlib.util.module_from_spec(script_spec)
    sys.modules[module_name] = package
    sys.modules[script_name] = module
    try:
        if pkg_spec.loader is not None:
            pkg_spec.loader.exec_module(package)
        script_spec.loader.exec_module(module)
    except BaseException:
        forget_modules(module_name)
        raise
    return module


def forget_modules(module_name: str) -> None:
    """Drop an extension's package and its submodules from ``sys.modules``."""
    for key in [k for k in sys.modules if k == module_name or k.startswith(module_name + ".")]:
        del sys.modules[key]


def safe_module_name(prefix: str, name: str) -> str:
    return f"{prefix}_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"


def first_by_name(
    sources: Sequence[ExtensionSource],
) -> tuple[dict[str, ExtensionSource], list[tuple[ExtensionSource, str]]]:
    """The first source of each name wins (the caller lists the winning folders first); the others
    are returned as shadowed, each with why."""
    chosen: dict[str, ExtensionSource] = {}
    notes: list[tuple[ExtensionSource, str]] = []
    for source in sources:
        if source.name in chosen:
            notes.append((source, f"extension {source.name!r} at {source.location} is shadowed by "
                                  f"{chosen[source.name].location} (a user's folder wins over the app's, "
                                  "a folder over an installed package)"))
        else:
            chosen[source.name] = source
    return chosen, notes
