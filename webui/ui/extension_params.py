"""Gradio components for typed extension settings and sampler parameters.

``param_component(spec, value)`` renders one ParamSpec (bool -> checkbox, int/float with a range
-> slider, else number, choices -> dropdown, str -> textbox, list -> one item per line).
``sampler_components(ctx)`` renders the sliders of every discovered sampler extension for the
Parameters tab; they are appended to its inputs after a ``gr.State`` holding their keys, so
``samplers_from_values(tail)`` turns the values back into ``GenerationParams.samplers``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.plugins import ExtensionError, ParamSpec

log = logging.getLogger(__name__)


def param_component(spec: ParamSpec, value: Any, *, elem_id: str | None = None,
                    label: str | None = None) -> gr.components.Component:
    """One setting as an input component, showing ``value``."""
    text = label or spec.label or spec.key
    info = spec.info
    if spec.choices is not None:
        return gr.Dropdown(choices=list(spec.choices), value=value, label=text, info=info, elem_id=elem_id,
                           multiselect=spec.type == "list", interactive=True)
    if spec.type == "bool":
        return gr.Checkbox(value=bool(value), label=text, info=info, elem_id=elem_id, interactive=True)
    if spec.type in ("int", "float"):
        if spec.minimum is not None and spec.maximum is not None:
            step = spec.step if spec.step is not None else (1 if spec.type == "int" else 0.01)
            return gr.Slider(spec.minimum, spec.maximum, value=value, step=step, label=text, info=info,
                             elem_id=elem_id, interactive=True)
        return gr.Number(value=value, precision=0 if spec.type == "int" else None, label=text, info=info,
                         minimum=spec.minimum, maximum=spec.maximum, elem_id=elem_id, interactive=True)
    if spec.type == "list":
        return gr.Textbox(value=to_text(value), lines=2, label=f"{text} (JSON list)", info=info,
                          elem_id=elem_id, interactive=True)
    return gr.Textbox(value="" if value is None else str(value), label=text, info=info, elem_id=elem_id,
                      interactive=True)


def to_text(value: Any) -> str:
    """A list setting as JSON (exact for any item, e.g. a newline)."""
    return json.dumps(list(value or []), ensure_ascii=False)


def from_component(spec_type: str, value: Any) -> Any:
    """A component's value in the form ParamSpec.coerce expects (a JSON list text -> list)."""
    if spec_type == "list" and isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            return value  # coerce reports it
    return value


def all_sampler_params(ctx: AppContext) -> list[tuple[str, ParamSpec]]:
    """(extension, spec) for every sampler parameter of every imported extension (the enabled ones:
    a disabled extension is never imported, so its sliders appear once it is enabled and the page
    is rebuilt, i.e. after a restart)."""
    found: dict[str, tuple[str, ParamSpec]] = {}
    for info in ctx.extensions.available():
        if not info.loaded:
            continue
        try:
            ext = ctx.extensions.load(info.name)
        except ExtensionError:
            continue
        if "register_samplers" not in ext.hooks:
            continue
        try:
            specs = ext.hooks["register_samplers"]() or []
        except Exception:
            log.exception("register_samplers of %s failed", info.name)
            continue
        for sampler in specs:
            for p in getattr(sampler, "params", ()):
                found.setdefault(p.key, (info.name, p))
    return list(found.values())


def sampler_components(ctx: AppContext) -> list[gr.components.Component]:
    """The sampler sliders for the Parameters tab: ``[gr.State(keys), *components]``.

    Every imported sampler extension gets its sliders; they apply while the extension is enabled
    (the Extensions tab). Read them back with ``samplers_from_values``.
    """
    params = all_sampler_params(ctx)
    keys = [(p.key, p.type if p.choices is None else "choice") for _, p in params]
    comps: list[gr.components.Component] = [gr.State(keys)]
    if not params:
        return comps
    with gr.Accordion("Extension samplers (apply while their extension is enabled)", open=False,
                      elem_id="sampler-params"):
        by_ext: dict[str, list[ParamSpec]] = {}
        for ext, p in params:
            by_ext.setdefault(ext, []).append(p)
        for ext, specs in by_ext.items():
            with gr.Group():
                gr.Markdown(f"**{ctx.extensions.info(ext).display_name}** (`{ext}`)")
                for p in specs:
                    comps.append(param_component(p, p.default, elem_id=f"param-{p.key}"))
    return comps


def samplers_from_values(tail: Sequence[Any]) -> dict[str, Any]:
    """``[keys, *values]`` (the tail ``sampler_components`` added) -> {key: value}."""
    if not tail:
        return {}
    keys, values = list(tail[0] or []), list(tail[1:])
    return {key: from_component(kind, value) for (key, kind), value in zip(keys, values)}
