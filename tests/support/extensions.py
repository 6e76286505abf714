"""Helpers for the extension tests (no tests here): write throwaway extensions, build managers."""

from __future__ import annotations

import textwrap
from pathlib import Path

from webui.plugins import ExtensionManager, MemoryStore

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTENSIONS_DIR = REPO_ROOT / "extensions"
# Extensions written for the tests: avoid_words is a sampler extension (register_samplers, sampler params).
SAMPLER_EXTENSIONS_DIR = Path(__file__).resolve().parent / "sampler_extensions"


def write_ext(base: Path, name: str, source: str, requirements: str | None = None) -> Path:
    """Create ``base/name/script.py`` (dedented) and optionally a requirements.txt."""
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "script.py").write_text(textwrap.dedent(source), encoding="utf-8")
    if requirements is not None:
        (folder / "requirements.txt").write_text(textwrap.dedent(requirements), encoding="utf-8")
    return folder


def manager_for(base: Path, store: MemoryStore | None = None, *dirs: Path) -> ExtensionManager:
    """A manager over ``base`` (and ``dirs``), without entry points, with an in-memory store."""
    return ExtensionManager([base, *dirs], entry_point_group=None, store=store or MemoryStore())


def pipe_ext(suffix: str, hook: str = "output_modifier") -> str:
    """Source of an extension whose string pipe hook appends ``suffix``."""
    return f"""
    def {hook}(string):
        return string + {suffix!r}
    """
