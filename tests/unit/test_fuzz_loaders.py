"""Property-based fuzzing of every loader of a user's file (cards, chats, presets, templates,
extension settings, GGUF headers): each input loads or raises UserFacingError, never anything else.

A small, derandomized budget runs here; ``python bench/fuzz.py --examples 10000`` runs the same
strategies (tests/support/fuzz_inputs.py) at scale and counts the outcomes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.support import fuzz_inputs as fi

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
TARGETS = {target.name: target for target in fi.file_targets()}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_valid_input_loads(name: str, tmp_path: Path) -> None:
    """Without this, a harness bug that turns every input into an error would pass the fuzz test."""
    kind, detail = fi.outcome(TARGETS[name], TARGETS[name].valid, fi.Workspace(tmp_path))
    assert kind == fi.LOADED, detail or f"{name}: the valid input raised a user-facing error"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_input_loads_or_raises_a_user_facing_error(name: str, tmp_path: Path) -> None:
    target = TARGETS[name]
    work = fi.Workspace(tmp_path)
    seen: set[str] = set()

    @FUZZ
    @given(target.inputs)
    def check(value: object) -> None:
        kind, detail = fi.outcome(target, value, work)
        seen.add(kind)
        assert kind != fi.OTHER, f"{name} raised something other than UserFacingError:\n{detail}"

    check()
    assert fi.USER_ERROR in seen, f"{name}: no input was refused, so the strategy is not hostile"
