"""The Parameters tab: every generation parameter, presets (load / save / delete), backend support."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.generation.presets import params_from_values
from webui.generation.support import unsupported
from webui.ui.events import action, bind, lookup, on
from webui.ui.extension_params import sampler_components, samplers_from_values, to_text
from webui.ui.sampler_controls import (
    CONTROLS,
    FIELD_NAMES,
    GROUPS,
    Group,
    component,
    from_component,
    info_updates,
    to_component,
)


@dataclass
class ParamComponents:
    inputs: list[gr.components.Component]
    support: gr.Markdown
    preset: gr.Dropdown
    load_btn: gr.Button
    preset_name: gr.Textbox
    save_btn: gr.Button
    delete_btn: gr.Button

    def chat_outputs(self) -> list[gr.components.Component]:
        """The controls opening a chat sets (see ``chat_values``): every field and extension sampler
        slider, in ``inputs`` order without the State that holds the sampler keys."""
        n = len(FIELD_NAMES)
        return [*self.inputs[:n], *self.inputs[n + 1:]]

    def chat_values(self, params: GenerationParams | None) -> list[Any]:
        """Updates for ``chat_outputs``: a chat's stored parameters, or no change (None: it has none).

        A sampler missing from ``params.samplers`` (its extension was added later) keeps its value.
        """
        n = len(FIELD_NAMES)
        keys: list[tuple[str, str]] = list(self.inputs[n].value or []) if len(self.inputs) > n else []
        if params is None:
            return [gr.update() for _ in range(n + len(keys))]
        samplers = [
            gr.update(value=to_text(params.samplers[key]) if kind == "list" else params.samplers[key])
            if key in params.samplers else gr.update()
            for key, kind in keys
        ]
        return [*from_params(params), *samplers]


def to_params(values: tuple[Any, ...] | list[Any]) -> GenerationParams:
    """The component values (in ``FIELD_NAMES`` order, then the extension samplers') as GenerationParams;
    raises PresetError (a UserFacingError: ``@action`` handlers show it) if invalid."""
    data: dict[str, Any] = {c.name: from_component(c, v) for c, v in zip(CONTROLS, values)}
    data["samplers"] = samplers_from_values(values[len(FIELD_NAMES):])  # extension sampler sliders
    return params_from_values(data, base=GenerationParams().model_dump())


def from_params(params: GenerationParams) -> list[Any]:
    """``params`` as the controls show them, in ``FIELD_NAMES`` order."""
    return [to_component(c, getattr(params, c.name)) for c in CONTROLS]


@lookup
def support_markdown(ctx: AppContext) -> str:
    """Which parameters the loaded model's backend ignores (shown on page load)."""
    info = ctx.engine.load_info
    if info is None:
        return "No model is loaded."
    missing = unsupported(info.loader)
    if not missing:
        return f"All parameters apply with **{info.loader}**."
    return f"Not supported by **{info.loader}** (ignored): " + ", ".join(f"`{m}`" for m in missing)


@lookup
def control_notes(ctx: AppContext) -> list[Any]:
    """Each control's help text, noting the fields the loaded backend ignores (shown on page load)."""
    info = ctx.engine.load_info
    return info_updates(info.loader if info is not None else None)


def build(ctx: AppContext) -> ParamComponents:
    names = ctx.presets.names() if ctx.presets else []
    with gr.Row():
        preset = gr.Dropdown(choices=names, value=None, label="Preset", elem_id="preset", scale=3)
        load_btn = gr.Button("Load preset", elem_id="load-preset", scale=1)
        delete_btn = gr.Button("Delete preset", variant="stop", elem_id="delete-preset", scale=1)
    with gr.Row():
        preset_name = gr.Textbox(label="Save current values as", placeholder="preset name", elem_id="preset-name",
                                 scale=3)
        save_btn = gr.Button("Save preset", elem_id="save-preset", scale=1)
    support = gr.Markdown(elem_id="param-support")
    shown = dict(zip(FIELD_NAMES, from_params(GenerationParams())))
    built: dict[str, gr.components.Component] = {}

    def group_controls(group: Group) -> None:
        for control in group.controls:
            built[control.name] = component(control, shown[control.name])

    with gr.Row():
        for group in (g for g in GROUPS if not g.folded):
            with gr.Column(min_width=220, elem_id=f"param-group-{group.key}"):
                gr.Markdown(f"**{group.title}**")
                group_controls(group)
    folded = [g for g in GROUPS if g.folded]
    with gr.Row():
        for column in (folded[::2], folded[1::2]):
            with gr.Column(min_width=300):
                for group in column:
                    with gr.Accordion(group.title, open=False, elem_id=f"param-group-{group.key}"):
                        group_controls(group)
    inputs: list[gr.components.Component] = [built[name] for name in FIELD_NAMES]
    inputs += sampler_components(ctx)  # [State(keys), *sliders] of extension samplers, read by to_params
    return ParamComponents(inputs, support, preset, load_btn, preset_name, save_btn, delete_btn)


@action
def load(ctx: AppContext, name: str | None) -> list[Any]:
    """Load a preset into the fields (the extension samplers keep their values)."""
    if not name or ctx.presets is None:
        raise UserFacingError("Choose a preset to load.")
    params = ctx.presets.load(name)
    gr.Info(f"Loaded preset {name}.")
    return from_params(params)


@action
def save(ctx: AppContext, name: str, *values: Any) -> Any:
    """Save the current values as preset ``name``; the preset list, with it selected."""
    if ctx.presets is None:
        raise UserFacingError("Presets are not available.")
    ctx.presets.save(name, to_params(values))
    gr.Info(f"Saved preset {name.strip()}.")
    return gr.update(choices=ctx.presets.names(), value=name.strip())


@action
def delete(ctx: AppContext, name: str | None) -> Any:
    if not name or ctx.presets is None:
        raise UserFacingError("Choose a preset to delete.")
    ctx.presets.delete(name)
    gr.Info(f"Deleted preset {name}.")
    return gr.update(choices=ctx.presets.names(), value=None)


CONFIRM_DELETE_JS = "(n) => { if (!confirm('Delete preset ' + n + '?')) throw new Error('cancelled'); return n; }"


def wire(ctx: AppContext, c: ParamComponents, demo: gr.Blocks) -> None:
    on(demo.load, bind(support_markdown, ctx), None, c.support)
    on(demo.load, bind(control_notes, ctx), None, c.inputs[: len(FIELD_NAMES)])
    on(c.load_btn.click, bind(load, ctx), c.preset, c.inputs[: len(FIELD_NAMES)])
    on(c.save_btn.click, bind(save, ctx), [c.preset_name, *c.inputs], c.preset)
    on(c.delete_btn.click, bind(delete, ctx), c.preset, c.preset, js=CONFIRM_DELETE_JS)
