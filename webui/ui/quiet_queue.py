"""An idle app costs (almost) nothing: Gradio's queue polls at Gradio's own Windows pace.

Gradio 6.31's queue loop (``gradio.queueing.Queue.start_processing``) sleeps 1 ms between checks
when it has nothing to do, and its progress loop 10 ms, on every platform but Windows, where it
sleeps 50 ms and 100 ms. Measured here (2 cores, no page open, no request; bench/idle.py): ~5% of a
core at 1 ms, ~0.5% at 50 ms. Gradio has no setting for these two sleeps, so the values are set on
the Blocks' queue object after it is built (no Gradio code is replaced).

The price: a UI event queued while the loop sleeps starts up to 50 ms later. Once an event runs,
its streamed updates do not go through this loop, so a streaming reply is not slowed. The smallest
change in Gradio would be a ``sleep_when_free`` argument to ``Blocks.queue()``, or waking the loop
from ``Queue.push`` (an ``asyncio.Event``) instead of polling.
"""

from __future__ import annotations

import gradio as gr

IDLE_POLL_SECONDS = 0.05  # Gradio's own value on Windows
IDLE_PROGRESS_POLL_SECONDS = 0.1  # likewise


def quiet_when_idle(blocks: gr.Blocks) -> None:
    """Make ``blocks``' queue poll at Gradio's Windows pace (see the module docstring)."""
    queue = blocks._queue  # created by Blocks.__init__; Gradio offers no public handle on these two
    queue.sleep_when_free = IDLE_POLL_SECONDS
    queue.progress_update_sleep_when_free = IDLE_PROGRESS_POLL_SECONDS
