"""Gradio 4 behaviour that text-generation-webui's extensions rely on, while their ``ui()`` runs.

Upstream runs on Gradio 4, where a ``gr.Dataset`` keeps the columns of a sample past its components,
a ``select`` event's ``evt.value`` is the whole sample, and an event that outputs to a Dataset may
return a list of samples (its new samples). Upstream's gallery relies on all three: its
``[card_html, character_name]`` samples have a single ``gr.HTML`` component, it reads
``evt.value[1]``, and its filter returns the matching cards. Gradio 6 cuts each sample to its
components (its page cannot draw the others) and reads a list returned to a Dataset as one sample.
While an upstream-style extension's ``ui()`` runs (:func:`upstream_components`), the Datasets it
makes get both behaviours back.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gradio as gr
from gradio.blocks import BlocksConfig
from gradio.components import Dataset  # the class: gr.Dataset is swapped while ui() runs

_LOCK = threading.Lock()  # ui() runs while the page is built; one build swaps these at a time
_ROWS = "_webui_upstream_rows"  # on a Dataset made here: every sample it was given, whole


def whole_sample(dataset: gr.Dataset, value: Any) -> Any:
    """The sample ``dataset`` was given whose shown columns are ``value`` (``value`` if none is)."""
    rows: list[list[Any]] = getattr(dataset, _ROWS, [])
    shown = len(dataset._components)
    for shown_row, raw in zip(dataset.samples, dataset.raw_samples):
        if shown_row == value:
            return raw
    return next((raw for raw in reversed(rows) if list(raw[:shown]) == value), value)


def _plain(fn: Callable[..., Any]) -> bool:
    """A plain function: Gradio streams generators and awaits coroutines, so those are left unwrapped."""
    return not (inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn)
                or inspect.isasyncgenfunction(fn))


def with_whole_samples(dataset: gr.Dataset, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a select handler) seeing the whole sample in its ``gr.SelectData`` arguments."""
    if not _plain(fn):
        return fn

    @functools.wraps(fn)  # Gradio reads fn's signature and annotations through __wrapped__
    def handler(*args: Any, **kwargs: Any) -> Any:
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, gr.SelectData):
                arg.value = whole_sample(dataset, arg.value)
        return fn(*args, **kwargs)

    return handler


def upstream_dataset(original: type[gr.Dataset]) -> Callable[..., gr.Dataset]:
    """``gr.Dataset(...)`` whose ``select`` handlers get whole samples, as in Gradio 4."""

    def make(*args: Any, **kwargs: Any) -> gr.Dataset:
        dataset = original(*args, **kwargs)
        setattr(dataset, _ROWS, [list(raw) for raw in dataset.raw_samples])
        select = dataset.select

        def upstream_select(fn: Any = "decorator", *rest: Any, **options: Any) -> Any:
            return select(with_whole_samples(dataset, fn) if callable(fn) else fn, *rest, **options)

        dataset.select = upstream_select  # type: ignore[method-assign]
        return dataset

    return make


def samples_as_updates(fn: Callable[..., Any], outputs: Any) -> Callable[..., Any]:
    """``fn`` whose list of samples returned to a Dataset made here becomes that Dataset's new samples."""
    single = not isinstance(outputs, Sequence)
    targets = [outputs] if single else list(outputs)
    positions = [i for i, t in enumerate(targets) if isinstance(t, Dataset) and hasattr(t, _ROWS)]
    if not positions or not _plain(fn):
        return fn

    def convert(dataset: gr.Dataset, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(row, (list, tuple)) for row in value):
            return value
        getattr(dataset, _ROWS).extend(list(row) for row in value)
        return Dataset(samples=[list(row) for row in value])

    @functools.wraps(fn)
    def handler(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if single:
            return convert(targets[0], result)
        if not isinstance(result, (list, tuple)) or len(result) != len(targets):
            return result
        values = list(result)
        for i in positions:
            values[i] = convert(targets[i], values[i])
        return type(result)(values) if isinstance(result, tuple) else values

    return handler


@contextlib.contextmanager
def upstream_components() -> Iterator[None]:
    """Inside the block, ``gr.Dataset`` is :func:`upstream_dataset`, and events that output to such a
    Dataset take a returned list of samples as its new samples."""
    with _LOCK:
        original_dataset, original_trigger = gr.Dataset, BlocksConfig.set_event_trigger

        def set_event_trigger(self: BlocksConfig, targets: Any, fn: Any, inputs: Any, outputs: Any,
                              *args: Any, **kwargs: Any) -> Any:
            if callable(fn) and outputs is not None:
                fn = samples_as_updates(fn, outputs)
            return original_trigger(self, targets, fn, inputs, outputs, *args, **kwargs)

        gr.Dataset = upstream_dataset(original_dataset)  # type: ignore[misc]
        BlocksConfig.set_event_trigger = set_event_trigger  # type: ignore[method-assign]
        try:
            yield
        finally:
            gr.Dataset = original_dataset  # type: ignore[misc]
            BlocksConfig.set_event_trigger = original_trigger  # type: ignore[method-assign]
