"""The two ways the UI registers an event handler.

Gradio 6 shows ``gr.Error``, ``gr.Warning`` and ``gr.Info`` in the page only for events that run
through its queue. From an event registered with ``queue=False`` the message is dropped, so a failed
upload or a refused save looks as if nothing happened (checked with Gradio 6.31 in Chromium). Hence:

- ``ACTION``: a handler that can fail or has something to report (saves, deletes, imports, chat
  actions) runs through the queue, with a small spinner while it runs.
- ``LOOKUP``: a handler that only reads and shows, and never raises, skips the queue (quicker).

``tests/test_ui_events.py`` holds every handler to this rule.
"""

from __future__ import annotations

from typing import Any

ACTION: dict[str, Any] = {"show_progress": "minimal"}
LOOKUP: dict[str, Any] = {"queue": False}
