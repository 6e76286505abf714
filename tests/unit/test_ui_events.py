"""Every UI handler that can report something runs through Gradio's queue (see webui/ui/events.py):
Gradio 6 drops gr.Error / gr.Warning / gr.Info from events registered with ``queue=False``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from webui.config import REPO_ROOT

UI_DIR = REPO_ROOT / "webui" / "ui"
# What in a handler's own source means it can show a message: raising (gr.Error or an error Gradio
# would report), a warning or info toast, or a helper that turns errors into gr.Error.
REPORTS = re.compile(r"\bgr\.(Error|Warning|Info)\b|\braise\b|_handle_errors|\bto_params\(|\btarget\(|\bopen_chat\(")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from webui.config import Settings
    from webui.context import build_context
    from webui.ui.app import build_ui
    from webui.ui.live_reply import LiveReplies

    data = tmp_path_factory.mktemp("events") / "data"
    ctx = build_context(Settings(data_dir=data, extensions=["example", "persona_templates"]), load_model=False)
    yield build_ui(ctx, LiveReplies())
    ctx.engine.shutdown()


def handler_source(fn) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    """Where the handler is defined, and its source (decorators such as ``@_handle_errors`` included)."""
    fn = inspect.unwrap(fn)
    return Path(inspect.getsourcefile(fn) or ""), inspect.getsource(fn)


def our_handlers(demo):  # type: ignore[no-untyped-def]
    for block_fn in demo.fns.values():
        if block_fn.fn is None:
            continue  # JavaScript only
        path, source = handler_source(block_fn.fn)
        if path.resolve().is_relative_to(UI_DIR):
            yield block_fn, source


def test_handlers_that_can_report_are_queued(demo) -> None:  # type: ignore[no-untyped-def]
    handlers = list(our_handlers(demo))
    assert len(handlers) > 40  # the whole UI was built
    unqueued = [f.name for f, source in handlers if f.queue is False and REPORTS.search(source)]
    assert unqueued == [], f"these handlers can show a message but skip the queue, so it would be lost: {unqueued}"


def test_the_rule_catches_a_handler_that_raises(demo) -> None:  # type: ignore[no-untyped-def]
    """The check above reads real sources: an unqueued handler that raises is found."""
    queued = {f.name for f, source in our_handlers(demo) if f.queue is not False and REPORTS.search(source)}
    assert {"upload", "save", "prepare", "import_chat", "toggle", "branch"} <= queued
    lookups = {f.name for f, source in our_handlers(demo) if f.queue is False}
    assert {"show", "search", "stop", "open_entry"} <= lookups


def test_a_reply_ending_while_the_previous_one_is_shown_gets_shown_too(demo) -> None:  # type: ignore[no-untyped-def]
    """after_turn shows the stored chat once a reply ends (one such step each for the Send button, Enter,
    Regenerate and Continue). Under Gradio's default trigger mode ("once") a second Send's reply ending
    while the first one's step runs would not be shown, and the chat would keep the older state."""
    after = [f for f, _ in our_handlers(demo) if f.name == "after_turn"]
    assert len(after) == 4 and all(f.trigger_mode == "always_last" for f in after)
