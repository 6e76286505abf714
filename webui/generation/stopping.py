"""Stop strings over a stream of text deltas.

A stop string may arrive split across deltas, so text that could be the start of one is held
back until it is clear; the stop string itself and anything after it are never emitted.
"""

from __future__ import annotations


class StopStringFilter:
    """Feed deltas in, get the text that is safe to show out."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, delta: str) -> str:
        """Return the part of ``held + delta`` that can be emitted now."""
        if self.stopped:
            return ""
        text = self._held + delta
        if not self._stops:
            return text
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = self._longest_partial_suffix(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """At the end of generation, release whatever was held back."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _longest_partial_suffix(self, text: str) -> int:
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best
