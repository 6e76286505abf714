"""Every UI handler that can report something runs through Gradio's queue (see webui/ui/events.py):
Gradio 6 drops gr.Error / gr.Warning / gr.Info from events registered with ``queue=False``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from webui.config import REPO_ROOT

UI_DIR = REPO_ROOT / "webui" / "ui"
# What in a handler's own source means it can show a message: raising (gr.Error or an error Gradio
# would report), a warning or info toast, the @action decorator (it turns errors into gr.Error), or a
# helper that raises.
REPORTS = re.compile(
    r"\bgr\.(Error|Warning|Info)\b|\braise\b|@action\b|\bto_params\(|\btarget\(|\bopen_chat\(|_open_chat_id\("
)


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
    """Where the handler is defined, and its source (decorators such as ``@action`` included)."""
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
    assert {"upload", "save", "prepare", "import_chat", "toggle", "message_action"} <= queued
    lookups = {f.name for f, source in our_handlers(demo) if f.queue is False}
    assert {"show", "search", "stop", "open_entry"} <= lookups


def test_each_handler_is_registered_as_its_kind(demo) -> None:  # type: ignore[no-untyped-def]
    """Every handler is an @action or a @lookup, registered with its kind's settings by events.on: an
    action runs through the queue, a lookup skips it."""
    from webui.ui.events import ACTION, KIND, LOOKUP

    kinds = {f.name: getattr(f.fn, KIND, None) for f, _ in our_handlers(demo)}
    assert [name for name, kind in kinds.items() if kind is None] == []
    wrong = [f.name for f, _ in our_handlers(demo) if (f.queue is False) != (getattr(f.fn, KIND) is LOOKUP)]
    assert wrong == []
    assert kinds["stop"] is LOOKUP and kinds["prepare"] is ACTION


def test_every_handler_that_takes_the_request_gets_it(demo) -> None:  # type: ignore[no-untyped-def]
    """Gradio finds the gr.Request parameter by its type hint; one it cannot resolve (a name imported
    only for type checking) would leave the handler without it, and every account would act as nobody."""
    from gradio.helpers import special_args

    request = object()
    takes = [f for f, _ in our_handlers(demo) if "request" in inspect.signature(f.fn).parameters]
    assert len(takes) > 20
    for f in takes:
        n = len([p for p in inspect.signature(f.fn).parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD])
        inputs, *_ = special_args(f.fn, [None] * n, request=request)  # type: ignore[arg-type]
        assert request in inputs, f.name


def test_a_reply_ending_while_the_previous_one_is_shown_gets_shown_too(demo) -> None:  # type: ignore[no-untyped-def]
    """after_turn shows the stored chat once a reply ends (one such step each for the Send button, Enter,
    Regenerate and Continue). Under Gradio's default trigger mode ("once") a second Send's reply ending
    while the first one's step runs would not be shown, and the chat would keep the older state."""
    after = [f for f, _ in our_handlers(demo) if f.name == "after_turn"]
    assert len(after) == 5 and all(f.trigger_mode == "always_last" for f in after)  # and the retry button


# -- the decorators and the binding, on their own -----------------------------------------


def test_action_shows_user_facing_errors_as_a_popup() -> None:
    from webui.errors import CharacterError
    from webui.storage.repository import NotFound
    from webui.ui.events import ACTION, KIND, action

    @action
    def refuse(exc: Exception) -> None:
        raise exc

    @action
    def stream(exc: Exception):  # type: ignore[no-untyped-def]
        yield "partial"
        raise exc

    @action(catch=(ValueError,))
    def store(exc: Exception) -> None:
        raise exc

    for fn in (refuse, lambda exc: list(stream(exc))):
        with pytest.raises(gr.Error) as shown:
            fn(CharacterError("A character needs a name."))
        assert shown.value.message == "A character needs a name." and shown.value.print_exception is False
        with pytest.raises(gr.Error, match="Persona 'x' not found"):
            fn(NotFound("Persona 'x' not found"))
        with pytest.raises(ValueError):  # not meant for the user: Gradio's generic error, and a traceback
            fn(ValueError("internal"))
    with pytest.raises(gr.Error, match="A persona needs a name"):
        store(ValueError("A persona needs a name."))
    assert getattr(refuse, KIND) is ACTION and refuse.__name__ == "refuse"


def test_bind_gives_the_leading_arguments_and_keeps_what_gradio_reads() -> None:
    from gradio.helpers import special_args

    from webui.ui.events import KIND, LOOKUP, bind, lookup

    @lookup
    def handler(ctx: str, key: str, value: int, request: gr.Request | None, *rest: int) -> tuple[Any, ...]:
        return ctx, key, value, request, rest

    bound = bind(handler, "ctx", "key")
    assert list(inspect.signature(bound).parameters) == ["value", "request", "rest"]
    assert bound.__name__ == "handler" and getattr(bound, KIND) is LOOKUP and inspect.unwrap(bound) is handler
    request = object()
    inputs, *_ = special_args(bound, [1, 2, 3], request=request)  # type: ignore[arg-type]
    assert inputs == [1, request, 2, 3]  # Gradio passes the request where the handler takes it
    assert bound(*inputs) == ("ctx", "key", 1, request, (2, 3))

    def gen(ctx: str, n: int):  # type: ignore[no-untyped-def]
        yield from [ctx] * n

    assert inspect.isgeneratorfunction(bind(gen, "a")) and list(bind(gen, "a")(2)) == ["a", "a"]


def test_on_registers_with_the_kind_settings() -> None:
    from webui.ui.events import action, lookup, on

    calls: list[dict[str, Any]] = []

    def trigger(fn: Any, inputs: Any, outputs: Any, **settings: Any) -> str:
        calls.append(settings)
        return "event"

    assert on(trigger, action(lambda: None), None, None, js="confirm") == "event"
    on(trigger, lookup(lambda: None), None, None)
    on(trigger, action(lambda: None), None, None, show_progress="hidden")
    assert calls == [{"show_progress": "minimal", "js": "confirm"}, {"queue": False}, {"show_progress": "hidden"}]
    with pytest.raises(TypeError, match="neither an @action nor a @lookup"):
        on(trigger, lambda: None, None, None)
