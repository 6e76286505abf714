"""Real test inputs from ``shared/fixtures`` (beside the checkout).

A missing fixture fails the test under CI (``CI`` set), so a run can never pass by skipping what it
was meant to check; on a developer's machine without ``shared/`` the test is skipped with the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
SERAPHINA = SHARED_FIXTURES / "cards" / "Seraphina.png"


def required_fixture(path: Path) -> Path:
    """``path`` if it exists; otherwise fail (under CI) or skip (elsewhere) with where it was looked for."""
    if path.is_file():
        return path
    message = f"fixture {path} is missing (shared/ must sit beside the checkout)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def seraphina_card() -> Path:
    """SillyTavern's default character card (V2 in a PNG chunk, with a 4-entry lorebook)."""
    return required_fixture(SERAPHINA)
