"""Running extensions written for text-generation-webui unchanged.

* :mod:`webui.compat.bridge`: ``CompatBridge``, the one object the ``modules`` package reads the app
  through (owned by the ExtensionManager, attached by ``build_context``).
* :mod:`webui.compat.gradio_compat`: Gradio 4 behaviour upstream extensions' ``ui()`` relies on.
* :mod:`webui.compat.history`: upstream's ``{'internal': [[user, bot], ...], 'visible': ...}`` history.
* ``webui/compat/modules/``: upstream's ``modules`` package (``shared``, ``chat``, ``ui``, ...) as far
  as extensions use it. The app never imports it: :func:`install_packages` registers it in
  ``sys.modules`` as ``modules`` when the manager imports an extension, and ``extensions`` as a
  package over the extension folders (``import extensions.<name>.helper``).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

MODULES_DIR = Path(__file__).resolve().parent / "modules"
# What ``webui/compat/modules`` provides (``modules.<name>``), for the static check of disabled extensions.
PROVIDED = frozenset(p.stem for p in MODULES_DIR.glob("*.py") if not p.stem.startswith("_")) | {"modules"}
_MARK = "__webui_compat__"


def install_packages(extension_dirs: Sequence[Path]) -> None:
    """Make ``modules`` (the compatibility package) and ``extensions`` (the extension folders, the
    ones that win on a name clash first) importable. A ``modules`` or ``extensions`` that some other
    code put in ``sys.modules`` is left alone."""
    existing = sys.modules.get("modules")
    if existing is None:
        spec = importlib.util.spec_from_file_location("modules", MODULES_DIR / "__init__.py",
                                                      submodule_search_locations=[str(MODULES_DIR)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        setattr(module, _MARK, True)
        sys.modules["modules"] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules["modules"]
            raise
    paths = [str(d) for d in extension_dirs]
    package = sys.modules.get("extensions")
    if package is None or getattr(package, _MARK, False) or _is_namespace(package):
        if package is None or not getattr(package, _MARK, False):
            spec = importlib.machinery.ModuleSpec("extensions", None, is_package=True)
            spec.submodule_search_locations = paths
            package = importlib.util.module_from_spec(spec)
            setattr(package, _MARK, True)
            sys.modules["extensions"] = package
        package.__path__[:] = paths  # type: ignore[index]


def alias_extension(name: str, package_name: str) -> None:
    """``extensions.<name>`` (and ``.script``) name the package the manager imported the extension as."""
    package = sys.modules.get("extensions")
    if package is None or not getattr(package, _MARK, False):
        return
    for suffix in ("", ".script"):
        loaded = sys.modules.get(package_name + suffix)
        if loaded is not None:
            sys.modules[f"extensions.{name}{suffix}"] = loaded


def _is_namespace(module: object) -> bool:
    return getattr(module, "__file__", None) is None and hasattr(module, "__path__")
