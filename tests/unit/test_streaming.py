"""The one bridge from a blocking iterator to async code (webui.streaming): how a stream ends.

Blocking iterators stand in for a reply: steps wait on threading events the way ``next()`` waits
on the inference worker's queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import anyio

from webui.streaming import iterate_in_thread

WAIT = 5.0  # seconds; a bound for things that happen at once


class Producer:
    """A blocking iterator of ``n`` numbers; with ``gate``, each step waits until it is set."""

    def __init__(self, n: int, gate: threading.Event | None = None) -> None:
        self.n, self.gate = n, gate
        self.closed = threading.Event()
        self.close_thread: str | None = None
        self.stops = 0
        self.generator = self._run()

    def _run(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                if self.gate is not None and not self.gate.wait(WAIT):
                    raise AssertionError("the step was never released")
                yield i
        finally:
            self.close_thread = threading.current_thread().name
            self.closed.set()

    def stop(self) -> None:
        self.stops += 1


def run(main: Callable[[], Awaitable[None]]) -> None:
    anyio.run(main)


def test_items_arrive_in_order_and_a_finished_stream_is_not_stopped() -> None:
    producer = Producer(5)

    async def main() -> None:
        got = [i async for i in iterate_in_thread(producer.generator, stop=producer.stop)]
        assert got == [0, 1, 2, 3, 4]

    run(main)
    assert producer.stops == 0 and producer.closed.is_set()


def test_closing_early_stops_and_closes_the_iterator_off_the_event_loop() -> None:
    producer = Producer(100)
    loop_thread = threading.current_thread().name

    async def main() -> None:
        stream = iterate_in_thread(producer.generator, stop=producer.stop)
        assert [await stream.__anext__() for _ in range(3)] == [0, 1, 2]
        await stream.aclose()

    run(main)
    assert producer.stops == 1 and producer.closed.is_set()
    assert producer.close_thread != loop_thread


def test_a_disconnect_stops_a_blocked_step_and_ends_the_stream() -> None:
    """The client goes away while a step waits (as while queued): ``stop`` runs at once, the
    stream ends, and the iterator is closed as soon as the step returns."""
    gate = threading.Event()
    producer = Producer(100, gate)
    gone = threading.Event()

    def stop() -> None:
        producer.stop()
        gate.set()  # a cancelled generation lets its reader go

    async def disconnected() -> bool:
        return gone.is_set()

    async def main() -> None:
        got: list[int] = []
        gone.set()
        with anyio.fail_after(WAIT):
            stream = iterate_in_thread(producer.generator, stop=stop, disconnected=disconnected, poll_seconds=0.05)
            async for i in stream:
                got.append(i)
        assert got[:1] in ([], [0]) and len(got) < 100

    run(main)
    assert producer.stops >= 1
    assert producer.closed.wait(WAIT)


def test_a_cancelled_reader_never_waits_for_a_blocked_step() -> None:
    """Cancelling the reader (the server drops the response) returns at once although the step is
    still blocked; the iterator is closed by that step's thread once it returns."""
    gate = threading.Event()
    producer = Producer(10, gate)

    async def main() -> None:
        started = time.monotonic()
        with anyio.move_on_after(0.3):
            async for _ in iterate_in_thread(producer.generator, stop=producer.stop):
                raise AssertionError("nothing was released")
        assert time.monotonic() - started < 2
        assert producer.stops == 1 and not producer.closed.is_set()

    run(main)
    gate.set()  # the generation ends (a cancelled one leaves the worker's queue)
    assert producer.closed.wait(WAIT)


def test_steps_run_on_the_given_limiter() -> None:
    gate = threading.Event()
    producer = Producer(2, gate)

    async def main() -> None:
        limiter = anyio.CapacityLimiter(3)
        stream = iterate_in_thread(producer.generator, limiter=limiter)
        async with anyio.create_task_group() as tg:
            tg.start_soon(stream.__anext__)
            with anyio.fail_after(WAIT):
                while limiter.borrowed_tokens != 1:
                    await anyio.sleep(0.01)
            assert anyio.to_thread.current_default_thread_limiter().borrowed_tokens == 0
            gate.set()
        assert [i async for i in stream] == [1]

    run(main)


def test_an_error_of_the_iterator_reaches_the_reader_and_stops_the_generation() -> None:
    stops: list[int] = []

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("the turn failed")

    async def main() -> None:
        got: list[int] = []
        try:
            async for i in iterate_in_thread(failing(), stop=lambda: stops.append(1)):
                got.append(i)
        except ValueError as exc:
            assert str(exc) == "the turn failed"
        else:
            raise AssertionError("the error was swallowed")
        assert got == [1]

    run(main)
    assert stops == [1]
