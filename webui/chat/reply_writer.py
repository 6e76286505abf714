"""Saving a reply while it streams: at most once a flush interval, and complete at the end.

A crash loses at most the last interval of a reply (the soak bench, ``bench/soak.py``, checks it).
A full disk does not cut the reply short: the reader keeps receiving it, each later flush tries
again (so saving resumes by itself once space is freed), and if the final save fails too the reply
ends with a :class:`~webui.errors.DiskFullError` saying it could not be saved.
"""

from __future__ import annotations

import logging

from webui.errors import DiskFullError
from webui.storage.repository import ChatRepository

log = logging.getLogger(__name__)

REPLY_NOT_SAVED = (
    "The disk is full: this reply could not be saved (the chat keeps it only as far as it was saved "
    "before). Free some space, then send again or regenerate; chats already saved are safe."
)
TURN_NOT_SAVED = (
    "The disk is full: your message could not be saved, so no reply was generated. Free some space "
    "and send it again; chats already saved are safe and can still be read."
)


class ReplyWriter:
    """Writes a streaming reply into its stored version (``version_id`` None: nothing is stored)."""

    def __init__(self, repo: ChatRepository, version_id: int | None, interval: float, started: float) -> None:
        self.repo = repo
        self.version_id = version_id
        self.interval = interval
        self.last_flush = started
        self.failure: DiskFullError | None = None  # the last save that failed for lack of space

    def progress(self, text: str, now: float) -> None:
        """Save ``text`` as the reply so far if the last save is an interval old."""
        if self.version_id is not None and now - self.last_flush >= self.interval:
            self._save(text, complete=False)
            self.last_flush = now

    def finish(self, text: str, context_shifted: bool = False) -> DiskFullError | None:
        """Save the final ``text`` as complete (``context_shifted``: generated from a shifted KV cache,
        see ``GenerationStats``); the error to report if it could not be saved."""
        if self.version_id is None:
            return None
        if self._save(text, complete=True, context_shifted=context_shifted):
            return None
        return DiskFullError(REPLY_NOT_SAVED)

    def _save(self, text: str, *, complete: bool, context_shifted: bool = False) -> bool:
        assert self.version_id is not None
        try:
            self.repo.update_version(self.version_id, text, complete=complete, context_shifted=context_shifted)
        except DiskFullError as exc:
            if self.failure is None:
                log.warning("reply %s not saved at %d chars: %s", self.version_id, len(text), exc)
            self.failure = exc
            return False
        if self.failure is not None:
            log.info("reply %s saved again at %d chars (space was freed)", self.version_id, len(text))
            self.failure = None
        return True
