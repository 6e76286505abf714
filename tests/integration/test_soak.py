"""Crash soak, short: kill -9 the real app three times while replies stream (UI and API), restarting
it on the same data dir each time. The full run is ``python bench/soak.py`` (twenty kills); both use
tests/support/soak.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.soak import soak
from webui.chat.service import FLUSH_SECONDS

pytestmark = pytest.mark.slow
LAG_TOLERANCE_SECONDS = 0.5  # scheduling on a shared 2-core machine, on top of the flush interval


def test_kill_nine_during_streamed_replies_loses_at_most_a_second(tmp_path: Path) -> None:
    result = soak(tmp_path / "data", kills=3, seed=3)
    assert result.problems == []
    assert result.kills == 3 and len(result.partials) == 3
    assert {p.kind for p in result.partials} == {"ui", "api"}
    assert len(result.completed) >= 3 and result.turn_checks >= 3 * len(result.completed)
    assert result.integrity == ["ok"] * 4  # after each kill and at the end
    lag_seconds, _ = result.max_lag()
    assert lag_seconds <= FLUSH_SECONDS + LAG_TOLERANCE_SECONDS, result.summary()
