"""How much CPU a process burns while nothing happens (for the idle test and bench/idle.py)."""

from __future__ import annotations

import time

import psutil


def cpu_percent_over(pid: int, seconds: float) -> float:
    """Percent of one core the process ``pid`` (threads included) used over the next ``seconds``.

    Counted from the process's own CPU time, so other load on the machine barely moves it."""
    proc = psutil.Process(pid)
    before = proc.cpu_times()
    start = time.monotonic()
    time.sleep(seconds)
    after = proc.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return 100.0 * used / (time.monotonic() - start)
