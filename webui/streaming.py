"""The one bridge from a blocking iterator (fed by the inference thread) to async code.

The API's streams and the UI's live reply both read replies through :func:`iterate_in_thread`.
Each ``next()`` blocks on the worker's queue, so it runs in a worker thread and the event loop
never waits on the model. Ending before the iterator's end — the consumer stops reading or is
cancelled, the step raised, or ``disconnected()`` turned true — stops the generation:

* ``stop`` (when given) is called at once. It must be quick and thread-safe; ``ChatService.stop``
  cancels the generation, and one still queued on the worker is then never run.
* The iterator is closed (a ``ChatService`` stream's ``finally`` cancels its generation and stores
  the text) in a worker thread: at once when no step is running, else by the running step as soon
  as its ``next()`` returns. A cancelled consumer abandons a blocked step and never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio

log = logging.getLogger(__name__)
T = TypeVar("T")

DISCONNECT_POLL_SECONDS = 0.5
_END: Any = object()


class _Stepper:
    """Runs ``next()`` of an iterator from threads, one step at a time, and closes it once, in a
    thread that is not in the middle of a step (a generator cannot be closed while it runs)."""

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self._lock = threading.Lock()  # held while a step runs
        self._close_requested = False
        self.closed = False
        self.exhausted = False  # the iterator itself ended (not closed early)

    def step(self) -> Any:
        """The next item, or ``_END`` once the iterator is exhausted or closed."""
        with self._lock:
            item = _END if self.closed else next(self._items, _END)
            if item is _END and not self.closed:
                self.exhausted = True
        if self._close_requested:  # asked while this step ran: close now that it is done
            self._try_close()
        return item

    def request_close(self) -> None:
        """Close now if no step is running, else when the running step returns. Never blocks."""
        self._close_requested = True
        self._try_close()

    def _try_close(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # a step is running; it closes the iterator when it returns
        try:
            if not self.closed:
                self.closed = True
                close = getattr(self._items, "close", None)
                if close is not None:
                    close()
        finally:
            self._lock.release()


async def iterate_in_thread(
    items: Iterator[T],
    *,
    stop: Callable[[], None] | None = None,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
    limiter: anyio.CapacityLimiter | None = None,
    label: str = "stream",
    poll_seconds: float = DISCONNECT_POLL_SECONDS,
) -> AsyncIterator[T]:
    """Iterate the blocking ``items`` from async code (see the module docstring for how it ends).

    ``disconnected`` is polled every ``poll_seconds`` (e.g. ``Request.is_disconnected``); the steps
    run on ``limiter``'s threads (None: anyio's default pool). ``label`` names the stream in logs.
    """
    stepper = _Stepper(items)

    def end_early() -> None:
        if stop is not None:
            stop()
        stepper.request_close()

    async def watch() -> None:
        assert disconnected is not None
        while True:
            await asyncio.sleep(poll_seconds)
            if await disconnected():
                log.info("client of %s disconnected; stopping its generation", label)
                await anyio.to_thread.run_sync(end_early)
                return

    watcher = asyncio.create_task(watch()) if disconnected is not None else None
    try:
        while True:
            item = await anyio.to_thread.run_sync(stepper.step, abandon_on_cancel=True, limiter=limiter)
            if item is _END:
                return
            yield item
    finally:
        if watcher is not None:
            watcher.cancel()
        if not stepper.exhausted:
            log.info("client of %s went away (or failed) before the end; generation stopped", label)
            with anyio.CancelScope(shield=True):  # closing runs the iterator's cleanup: keep it off the loop
                await anyio.to_thread.run_sync(end_early)
