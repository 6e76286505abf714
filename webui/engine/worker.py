"""The one inference thread.

All model work (load, generate, tokenize, unload) runs on a single long-lived thread fed by
a queue: on CPU, torch work issued from several threads was measured to lose ~40% of decode
speed. UI and API handlers only submit jobs and read text deltas from a GenerationHandle.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from webui.engine.protocol import Emit, GenerationStats, TokenLogprob
from webui.generation.stopping import StopStringFilter

log = logging.getLogger(__name__)
T = TypeVar("T")

_DONE = object()


class GenerationHandle:
    """A reply being generated: iterate it for text deltas; ``cancel()`` stops it."""

    def __init__(self, stops: list[str]) -> None:
        self._out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._filter = StopStringFilter(stops)
        self.stats = GenerationStats()
        self.error: BaseException | None = None
        self.done = threading.Event()
        # the generated tokens' log-probabilities, when the request asked for them (appended by the
        # worker, read by the API while it streams: list appends and slices are atomic)
        self.logprobs: list[TokenLogprob] = []

    # -- consumer side -------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> Iterator[str]:
        while True:
            item = self._out.get()
            if item is _DONE:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def drain(self, timeout: float | None = None) -> tuple[str, bool]:
        """Block up to ``timeout`` for the next delta, then take every delta already queued.

        Returns (text, finished). Lets a UI coalesce tokens into fewer screen updates.
        """
        parts: list[str] = []
        finished = False
        try:
            item = self._out.get(timeout=timeout)
            while True:
                if item is _DONE:
                    finished = True
                    break
                parts.append(item)
                item = self._out.get_nowait()
        except queue.Empty:
            pass
        if finished and self.error is not None:
            raise self.error
        return "".join(parts), finished

    def text(self) -> str:
        """Wait for the whole reply and return it."""
        return "".join(self)

    # -- producer side (worker thread) ---------------------------------------------
    def emit(self, text: str, n_tokens: int = 1, logprobs: list[TokenLogprob] | None = None) -> bool:
        self.stats.completion_tokens += n_tokens
        if logprobs:
            self.logprobs.extend(logprobs)
        visible = self._filter.feed(text)
        if visible:
            self._out.put(visible)
        return not (self._filter.stopped or self._cancel.is_set())

    def _finish(self, stats: GenerationStats | None, error: BaseException | None) -> None:
        tail = self._filter.flush()
        if tail:
            self._out.put(tail)
        if stats is not None:
            stats.completion_tokens = self.stats.completion_tokens or stats.completion_tokens
            self.stats = stats
        if self._filter.stopped:
            self.stats.finish_reason = "stop"
        elif self._cancel.is_set():
            self.stats.finish_reason = "cancelled"
        if error is not None:
            self.stats.finish_reason = "error"
            self.error = error
        self.done.set()
        self._out.put(_DONE)


class InferenceWorker:
    """Runs jobs one at a time on a dedicated daemon thread, in submission order."""

    def __init__(self, name: str = "inference") -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet finished (including the running one)."""
        return self._pending

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            finally:
                with self._lock:
                    self._pending -= 1

    def _put(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
        self._jobs.put(job)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread and wait for its result (or exception)."""
        if threading.current_thread() is self._thread:
            return fn()
        future: Future[T] = Future()

        def job() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)

        self._put(job)
        return future.result()

    def stream(self, fn: Callable[[Emit], GenerationStats], stops: list[str]) -> GenerationHandle:
        """Queue a generation; ``fn(emit)`` runs on the worker and calls emit per delta."""
        handle = GenerationHandle(stops)

        def job() -> None:
            if handle.cancelled:
                handle._finish(GenerationStats(finish_reason="cancelled"), None)
                return
            try:
                stats = fn(handle.emit)
            except Exception as exc:  # noqa: BLE001 - reported through the handle
                log.exception("generation failed")
                handle._finish(None, exc)
            else:
                handle._finish(stats, None)

        self._put(job)
        return handle

    def shutdown(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)
