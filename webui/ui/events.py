"""How the UI registers an event handler: as an action or as a lookup.

Gradio 6 shows ``gr.Error``, ``gr.Warning`` and ``gr.Info`` in the page only for events that run
through its queue. From an event registered with ``queue=False`` the message is dropped, so a failed
upload or a refused save looks as if nothing happened (checked with Gradio 6.31 in Chromium). Hence:

- ``@action``: a handler that can fail or has something to report (saves, deletes, imports, chat
  actions) runs through the queue, with a small spinner while it runs. A ``UserFacingError`` (or a
  repository ``NotFound``) it raises becomes a ``gr.Error`` popup with its message.
- ``@lookup``: a handler that only reads and shows, and never raises, skips the queue (quicker).

Handlers are module-level functions whose first arguments are what the page does not send (the
AppContext, a tab's layout): ``bind(handler, ctx, ...)`` gives them, and ``on(trigger, fn, inputs,
outputs)`` registers the result with the settings of its kind. Unit tests call the handlers directly.

``tests/unit/test_ui_events.py`` holds every handler to this rule.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload

import gradio as gr

from webui.errors import UserFacingError
from webui.storage.repository import NotFound

ACTION: dict[str, Any] = {"show_progress": "minimal"}
LOOKUP: dict[str, Any] = {"queue": False}

KIND = "ui_event"  # the attribute ``action``/``lookup`` set on a handler: ACTION or LOOKUP
F = TypeVar("F", bound=Callable[..., Any])
Errors = tuple[type[Exception], ...]


def _reporting(fn: F, errors: Errors) -> F:
    """``fn`` with ``errors`` turned into a gr.Error popup (the server keeps serving)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except errors as exc:
                raise gr.Error(str(exc), print_exception=False) from exc
        wrapper: Callable[..., Any] = gen_wrapper
    else:
        @functools.wraps(fn)
        def call_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except errors as exc:
                raise gr.Error(str(exc), print_exception=False) from exc
        wrapper = call_wrapper
    setattr(wrapper, KIND, ACTION)
    return wrapper  # type: ignore[return-value]


@overload
def action(fn: F, /) -> F: ...


@overload
def action(*, catch: Errors = ()) -> Callable[[F], F]: ...


def action(fn: F | None = None, /, *, catch: Errors = ()) -> F | Callable[[F], F]:
    """Mark ``fn`` as an action (queued) and show the errors meant for the user as a gr.Error.

    ``catch``: more exception types whose message is fit to show (e.g. a ValueError of a store).
    """
    errors: Errors = (UserFacingError, NotFound, *catch)
    if fn is None:
        return lambda f: _reporting(f, errors)
    return _reporting(fn, errors)


def lookup(fn: F) -> F:
    """Mark ``fn`` as a lookup: it only reads and never raises, so it may skip the queue."""
    setattr(fn, KIND, LOOKUP)
    return fn


def bind(handler: Callable[..., Any], *bound: Any) -> Callable[..., Any]:
    """``handler`` with its first arguments given, as a function Gradio can register.

    Unlike ``functools.partial`` the result is a plain function with ``handler``'s name, kind and
    annotations (Gradio reads them to pass ``gr.Request``/``gr.SelectData``) and a signature without
    the bound arguments.
    """
    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def gen_bound(*args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from handler(*bound, *args, **kwargs)
        fn: Callable[..., Any] = gen_bound
    else:
        @functools.wraps(handler)
        def call_bound(*args: Any, **kwargs: Any) -> Any:
            return handler(*bound, *args, **kwargs)
        fn = call_bound
    signature = inspect.signature(handler)
    fn.__signature__ = signature.replace(parameters=list(signature.parameters.values())[len(bound):])  # type: ignore[attr-defined]
    return fn


def on(trigger: Callable[..., Any], fn: Callable[..., Any], inputs: Any, outputs: Any, **extra: Any) -> Any:
    """Register ``fn`` on ``trigger`` (e.g. ``button.click``) with its kind's settings; ``extra``
    adds to them (a concurrency limit, a confirm ``js``, a quieter progress). Returns the event."""
    kind = getattr(fn, KIND, None)
    if kind is None:
        raise TypeError(f"{fn.__name__} is neither an @action nor a @lookup")
    return trigger(fn, inputs, outputs, **{**kind, **extra})
