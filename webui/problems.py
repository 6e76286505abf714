"""Files the app skipped because they could not be loaded, collected in one place per AppContext.

Nothing in a user's files stops the app: a card, preset, template, extension, settings file or model
file that cannot be read is skipped, and each part of the app that reads such files reports what it
skipped here, under its own *source* name. A source reports its whole list each time it scans
(``report`` replaces what it said before), so a reload that finds a file fixed drops it from the list.

Each problem is logged once, as one warning line, when it first appears. The UI (the Problems notice
at the top of the page) and ``GET /v1/internal/problems`` read ``all()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_REASON = 500  # characters of a reason kept (a YAML error can quote a whole line of the file)


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space), shortened."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class Problem:
    """One file that could not be loaded: what kind of file, where, and why (one line)."""

    kind: str  # "character", "extension", "preset", "instruction template", "model file", ...
    file: str  # the path (or, for an extension asked for by name that does not exist, who asked)
    reason: str

    @classmethod
    def of(cls, kind: str, file: object, reason: object) -> Problem:
        """A problem with ``reason`` made one line."""
        return cls(kind, str(file), one_line(str(reason)))

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "file": self.file, "reason": self.reason}


class Problems:
    """The problems each source reported last, in the order the sources first reported."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_source: dict[str, tuple[Problem, ...]] = {}

    def report(self, source: str, problems: Iterable[Problem]) -> None:
        """Replace what ``source`` reported before with ``problems``; log the ones that are new."""
        current = tuple(dict.fromkeys(problems))
        with self._lock:
            before = set(self._by_source.get(source, ()))
            self._by_source[source] = current
        for problem in current:
            if problem not in before:
                log.warning("skipped %s %s: %s", problem.kind, problem.file, problem.reason)

    def all(self) -> list[Problem]:
        """Every problem reported, without repeats (two sources may notice the same file)."""
        with self._lock:
            return list(dict.fromkeys(p for problems in self._by_source.values() for p in problems))

    def of(self, source: str) -> list[Problem]:
        with self._lock:
            return list(self._by_source.get(source, ()))

    def __len__(self) -> int:
        return len(self.all())
