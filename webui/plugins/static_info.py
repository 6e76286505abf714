"""What an extension folder says about itself, read without importing it.

A disabled extension is never imported (text-generation-webui imports only the enabled ones, so a
script with import-time work, such as opening a tunnel, must not run merely by being installed).
The Extensions tab still lists it from its files: ``script.py`` is parsed with :mod:`ast` for the
module docstring, the literal ``params`` / ``params_meta`` dicts, the hook functions it defines
and the ``modules`` submodules it imports; a ``README.md`` next to it describes it when the
script has no docstring.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webui.plugins.hookspecs import CALLABLE_HOOKS

MAX_SCRIPT_BYTES = 2 * 2**20  # larger scripts are not parsed (listed with a note)


@dataclass(frozen=True)
class StaticInfo:
    """An extension as its files describe it."""

    description: str = ""
    params: dict[str, Any] | None = None  # the literal ``params`` dict, or None when it is not a literal
    params_meta: dict[str, Any] | None = None
    hooks: tuple[str, ...] = ()
    upstream_modules: tuple[str, ...] = ()  # text-generation-webui ``modules.*`` it imports (e.g. "shared")
    top_imports: tuple[str, ...] = ()  # top-level packages its module body imports unconditionally
    error: str | None = None  # why the script cannot be read (a syntax error, ...)
    notes: tuple[str, ...] = field(default=())

    @property
    def uses_upstream(self) -> bool:
        """Written for text-generation-webui: it imports its ``modules`` package."""
        return bool(self.upstream_modules)

    @property
    def display_name(self) -> str | None:
        name = (self.params or {}).get("display_name")
        return str(name) if name else None

    @property
    def is_tab(self) -> bool:
        return bool((self.params or {}).get("is_tab", False))


def first_paragraph(text: str) -> str:
    """The first paragraph of a docstring or README, on one line (Markdown headings skipped)."""
    paragraphs = [p.strip() for p in text.strip().split("\n\n")]
    for p in paragraphs:
        lines = [ln.strip() for ln in p.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if lines:
            return " ".join(lines)
    return ""


def read_static(script: Path) -> StaticInfo:
    """Parse ``script`` (never executed). Errors are returned in ``StaticInfo.error``, not raised."""
    readme = _readme(script.parent)
    try:
        if script.stat().st_size > MAX_SCRIPT_BYTES:
            return StaticInfo(description=readme, notes=("script.py is too large to read without importing it",))
        source = script.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(script))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return StaticInfo(description=readme, error=f"cannot read {script.name}: {type(exc).__name__}: {exc}")
    except SyntaxError as exc:
        return StaticInfo(description=readme,
                          error=f"{script.name} line {exc.lineno}: SyntaxError: {exc.msg}")
    doc = ast.get_docstring(tree) or ""
    params = _literal(tree, "params")
    notes = () if params is not None or not _assigns(tree, "params") else (
        "its settings are shown once it is enabled (its params dict is built by code, so it is read on import)",)
    return StaticInfo(
        description=first_paragraph(doc) if doc.strip() else readme,
        notes=notes,
        params=params,
        params_meta=_literal(tree, "params_meta"),
        hooks=tuple(h for h in CALLABLE_HOOKS if h in _defined_functions(tree)),
        upstream_modules=tuple(sorted(_modules_imports(tree.body))),
        top_imports=tuple(sorted(_top_imports(tree.body))),
    )


def missing_imports(static: StaticInfo, folder: Path) -> list[str]:
    """The packages the script imports at its top level that are not installed (found with
    ``importlib.util.find_spec`` on top-level names, which imports nothing); its own neighbour
    modules, ``modules`` and ``extensions`` are not checked."""
    missing = []
    for name in static.top_imports:
        if name in ("modules", "extensions") or (folder / f"{name}.py").exists() or (folder / name).is_dir():
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def _readme(folder: Path) -> str:
    for name in ("README.md", "readme.md", "README.txt", "README"):
        path = folder / name
        if path.is_file():
            try:
                return first_paragraph(path.read_text(encoding="utf-8", errors="replace")[:20000])
            except OSError:
                return ""
    return ""


def _defined_functions(tree: ast.Module) -> set[str]:
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _assigns(tree: ast.Module, name: str) -> bool:
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
               or isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id == name
               for n in tree.body)


def _literal(tree: ast.Module, name: str) -> dict[str, Any] | None:
    """The value of a top-level ``name = {...}`` that is a literal dict (the last assignment)."""
    found: dict[str, Any] | None = None
    for node in tree.body:
        value = None
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            value = node.value
        if value is None:
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            found = None
            continue
        found = literal if isinstance(literal, dict) else None
    return found


def _top_imports(body: Iterable[ast.stmt]) -> set[str]:
    """Top-level package names of the module body's own import statements (not those inside
    ``try``/``if``/functions: those may be optional)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    names.discard("__future__")
    return names


def _modules_imports(body: Iterable[ast.stmt]) -> set[str]:
    """``modules`` submodules imported anywhere in the script (``import modules.shared``, ``from
    modules import chat``, ``from modules.logging_colors import logger``)."""
    found: set[str] = set()
    for node in ast.walk(ast.Module(body=list(body), type_ignores=[])):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "modules":
                    found.add(parts[1] if len(parts) > 1 else "")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "modules":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name for alias in node.names)
    found.discard("")
    return found or ({"modules"} if _imports_bare_modules(body) else set())


def _imports_bare_modules(body: Iterable[ast.stmt]) -> bool:
    return any(isinstance(n, ast.Import) and any(a.name == "modules" for a in n.names)
               for n in ast.walk(ast.Module(body=list(body), type_ignores=[])))
