"""A generation read into ``ReplyProgress`` updates, stored as it streams, and the table of which
generation streams to which session (so that Stop, a new turn of the same session, or the API's
stop-generation can cancel it). ``ChatService`` builds the turn; this module carries it out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from webui.chat.hooks import HookedCompletion
from webui.chat.reply_writer import ReplyWriter
from webui.engine.worker import GenerationHandle

log = logging.getLogger(__name__)


@dataclass
class ReplyProgress:
    """The reply so far; ``done`` on the last one, with why it ended."""

    text: str
    done: bool = False
    finish_reason: str | None = None
    dropped_turns: int = 0
    prompt_tokens: int = 0  # set on the last progress
    completion_tokens: int = 0  # set on the last progress
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused (set on the last progress)
    context_shifted: bool = False  # generated from a shifted KV cache (set on the last progress)
    display: str | None = None  # what the chat draws instead of ``text`` (TurnHooks.modify_chat_output)
    # the generation's token log-probabilities so far (the handle's growing list; empty unless asked for)
    logprobs: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class StreamPacing:
    """``min_interval``: seconds between updates (0: every delta; a UI coalesces tokens into fewer
    screen updates); ``dropped``: the old turns left out of the prompt, repeated on each update."""

    min_interval: float = 0.0
    dropped: int = 0


class ActiveReplies:
    """The generation streaming to each session key; starting another for a key cancels the first."""

    def __init__(self) -> None:
        self._active: dict[str, GenerationHandle] = {}
        self._lock = threading.Lock()

    def track(self, session_key: str, handle: GenerationHandle) -> None:
        """Make ``handle`` the generation of ``session_key``; one already there is cancelled."""
        with self._lock:
            previous = self._active.get(session_key)
            self._active[session_key] = handle
        if previous is not None:
            previous.cancel()

    def untrack(self, session_key: str, handle: GenerationHandle) -> None:
        with self._lock:
            if self._active.get(session_key) is handle:
                del self._active[session_key]

    def stop_matching(self, prefix: str) -> int:
        """Stop every reply whose session key starts with ``prefix``; how many."""
        with self._lock:
            handles = [h for key, h in self._active.items() if key.startswith(prefix)]
        for handle in handles:
            handle.cancel()
        return len(handles)

    def stop(self, session_key: str) -> bool:
        """Stop the reply streaming to ``session_key``; True if there was one."""
        with self._lock:
            handle = self._active.get(session_key)
        if handle is None:
            return False
        handle.cancel()
        return True


def stream_reply(
    handle: GenerationHandle,
    writer: ReplyWriter,
    session_key: str,
    active: ActiveReplies,
    pacing: StreamPacing,
    *,
    prefix: str = "",
) -> Iterator[ReplyProgress]:
    """Read a chat reply's generation: an update at most every ``pacing.min_interval`` seconds, the
    text stored through ``writer`` as it grows, then a last update with the stats. Closing the
    iterator early cancels the generation (the consumer went away)."""
    active.track(session_key, handle)
    generated = ""
    dropped = pacing.dropped

    def text() -> str:
        # A reply written after a "Name:" cue starts with a space; a prefix is kept as written.
        return prefix + generated if prefix else generated.lstrip()

    last_yield = time.monotonic()
    try:
        while True:
            delta, finished = handle.drain(timeout=0.25)
            generated += delta
            now = time.monotonic()
            if finished:
                break
            writer.progress(text(), now)  # a full disk: the reply goes on, the next flush retries
            if delta and now - last_yield >= pacing.min_interval:
                last_yield = now
                yield ReplyProgress(text(), dropped_turns=dropped, logprobs=handle.logprobs)
                if pacing.min_interval:
                    # Let tokens pile up instead of waking per token.
                    time.sleep(max(0.0, pacing.min_interval - (time.monotonic() - now)))
    finally:
        if not handle.done.is_set():
            log.info("reply to %r abandoned by its reader after %d chars; stopping", session_key, len(generated))
        handle.cancel()  # a no-op when finished; stops the model if the consumer went away
        try:
            unsaved = writer.finish(text(), handle.stats.context_shifted)
        finally:
            active.untrack(session_key, handle)
    if unsaved is not None:  # the reader gets the whole reply, but it is not stored: say so
        yield ReplyProgress(text(), dropped_turns=dropped)
        raise unsaved
    stats = handle.stats
    yield ReplyProgress(
        text(),
        done=True,
        finish_reason=stats.finish_reason,
        dropped_turns=dropped,
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        cached_tokens=stats.cached_tokens,
        context_shifted=stats.context_shifted,
        logprobs=handle.logprobs,
    )


def completion_progress(completion: HookedCompletion, session_key: str,
                        active: ActiveReplies) -> Iterator[ReplyProgress]:
    """A raw completion's updates (one per delta), then the last with the stats; ``completion`` is
    already tracked under ``session_key`` (so a hook's error was raised before anything streamed)."""
    handle = completion.handle
    text = ""
    try:
        for delta in completion.deltas():
            text += delta
            yield ReplyProgress(text, logprobs=handle.logprobs)
    finally:
        handle.cancel()  # a no-op when finished; stops the model if the consumer went away
        active.untrack(session_key, handle)
    stats = handle.stats
    yield ReplyProgress(text, done=True, finish_reason=stats.finish_reason, prompt_tokens=stats.prompt_tokens,
                        completion_tokens=stats.completion_tokens, cached_tokens=stats.cached_tokens,
                        logprobs=handle.logprobs)
