"""The Extensions tab, and the extensions' own ``ui()`` areas (under the chat or in their tabs).

Gradio builds components once, at start-up: every discovered extension gets its settings panel
here, and every one with a ``ui()`` hook gets its area built now; areas are shown while the
extension is enabled. Enabling, disabling, reordering and settings act at once (no restart) and
are saved by the ExtensionManager.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.engine.registry import backend_info, loader_names
from webui.errors import UserFacingError
from webui.plugins import ExtensionError, ParamError
from webui.problems import Problem
from webui.ui.events import action, bind, lookup, on
from webui.ui.extension_params import from_component, param_component, to_text

log = logging.getLogger(__name__)

@dataclass
class ExtensionPanel:
    name: str
    enabled: gr.Checkbox
    up: gr.Button
    down: gr.Button
    reset: gr.Button
    status: gr.Markdown
    params: dict[str, gr.components.Component]


@dataclass(frozen=True)
class ExtensionsView:
    """What the page shows of every extension, in order: a panel each, and the ui() areas there are."""

    names: tuple[str, ...]
    with_area: tuple[str, ...]  # the names of the extensions whose ui() area was built


@dataclass
class ExtensionsComponents:
    panels: list[ExtensionPanel]
    order: gr.Markdown
    failures: gr.Markdown
    refresh: gr.Button
    areas: dict[str, Any] = field(default_factory=dict)  # extension name -> its ui() container


def description(ctx: AppContext, name: str) -> str:
    """The first paragraph of the extension's docstring."""
    try:
        doc = getattr(ctx.extensions.load(name).obj, "__doc__", None) or ""
    except ExtensionError:
        return ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def loaders_without(ctx: AppContext, name: str) -> list[str]:
    """The registered loaders that cannot run all of this extension, by what each backend declares
    (``BackendInfo.token_hooks`` for ``tokenizer_modifier``, ``extension_processors`` for its samplers
    and ``logits_processor_modifier``) and the backends its samplers list."""
    try:
        ext = ctx.extensions.load(name)
    except ExtensionError:
        return []
    # samplers are registered once an extension is enabled (the manager calls register_samplers then)
    samplers = [s for s in ctx.extensions.samplers().values() if s.extension == name]
    needs_processors = bool(samplers) or "logits_processor_modifier" in ext.hooks
    missing = []
    for loader in loader_names():
        info = backend_info(loader)
        if ("tokenizer_modifier" in ext.hooks and not info.token_hooks) \
                or (needs_processors and not info.extension_processors) \
                or any(loader not in s.backends for s in samplers):
            missing.append(loader)
    return missing


def status_markdown(ctx: AppContext, name: str) -> str:
    info = ctx.extensions.info(name)
    lines = [f"`{name}` · {info.source} · {'**enabled**' if info.enabled else 'disabled'}"]
    text = description(ctx, name)
    if text:
        lines.append(html.escape(text))
    if info.hooks:
        lines.append("Hooks: " + ", ".join(f"`{h}`" for h in info.hooks))
    loader = ctx.engine.load_info.loader if ctx.engine.load_info else None
    missing = loaders_without(ctx, name)
    if missing:
        note = f" — not applied with the loaded {loader} model" if loader in missing else ""
        lines.append(f"⚠️ **not with {', '.join(missing)}**{note}")
    for warning in info.warnings:
        lines.append(f"⚠️ {html.escape(warning)}")
    if info.error:
        lines.append(f"❌ {html.escape(info.error)}")
    return "\n\n".join(lines)


def order_markdown(ctx: AppContext) -> str:
    names = ctx.extensions.enabled()
    if not names:
        return "**Enabled (in order):** none"
    return "**Enabled (in order):** " + " → ".join(f"`{n}`" for n in names)


def failures_markdown(ctx: AppContext) -> str:
    failures = ctx.extensions.failures()
    if not failures:
        return "No extension has failed."
    rows = ["| Extension | Hook | Error |", "| --- | --- | --- |"]
    for f in reversed(failures[-20:]):
        rows.append(f"| `{f.extension}` | `{f.hook}` | {html.escape(f.message).replace('|', '&#124;')} |")
    return "**Failed (disabled for this session):**\n\n" + "\n".join(rows)


def extension_assets(ctx: AppContext) -> dict[str, str]:
    """``css``/``js`` keyword arguments for ``gr.mount_gradio_app`` from the enabled extensions'
    custom_css / custom_js (collected once: the page is built at start-up)."""
    out: dict[str, str] = {}
    css, js = ctx.extensions.custom_css(), ctx.extensions.custom_js()
    if css.strip():
        out["css"] = css
    if js.strip():
        out["js"] = "() => {\n" + js + "\n}"  # Gradio runs js= as a function on page load
    return out


def build_ui_areas(ctx: AppContext, chat: Any) -> dict[str, Any]:
    """Run ``ui()`` for every discovered extension that has one and is not a tab, under the chat."""
    areas: dict[str, Any] = {}
    for info in ctx.extensions.available():
        if not _has_ui(ctx, info.name) or ctx.extensions.load(info.name).is_tab:
            continue
        with gr.Column(visible=info.enabled, elem_id=f"ext-ui-{info.name}") as column:
            ctx.extensions.call(info.name, "ui", ctx=ctx, chat=chat)
        areas[info.name] = column
    return areas


def build_ui_tabs(ctx: AppContext, chat: Any) -> dict[str, Any]:
    """A tab for each extension whose ``params["is_tab"]`` is true, built by its ``ui()``."""
    tabs: dict[str, Any] = {}
    for info in ctx.extensions.available():
        if not _has_ui(ctx, info.name) or not ctx.extensions.load(info.name).is_tab:
            continue
        with gr.Tab(ctx.extensions.info(info.name).display_name, visible=info.enabled,
                    elem_id=f"ext-tab-{info.name}") as tab:
            ctx.extensions.call(info.name, "ui", ctx=ctx, chat=chat)
        tabs[info.name] = tab
    return tabs


def _has_ui(ctx: AppContext, name: str) -> bool:
    try:
        return "ui" in ctx.extensions.load(name).hooks
    except ExtensionError:
        return False


def build(ctx: AppContext) -> ExtensionsComponents:
    """The settings panels (inside the caller's tab)."""
    gr.Markdown("Extensions run in the order they are enabled. Changes apply at once and are saved. "
                "Start with `--extensions a b c` to choose them on the command line.")
    order = gr.Markdown(order_markdown(ctx), elem_id="ext-order")
    panels: list[ExtensionPanel] = []
    unshown: list[Problem] = []
    for info in ctx.extensions.available():
        name = info.name
        try:
            specs = ctx.extensions.param_specs(name)
            values = ctx.extensions.get_params(name)
        except ExtensionError:
            specs, values = {}, {}
        with gr.Group(elem_id=f"ext-panel-{name}"):
            with gr.Row():
                enabled = gr.Checkbox(value=info.enabled, label=ctx.extensions.info(name).display_name,
                                      elem_id=f"ext-enabled-{name}", scale=4, interactive=True)
                up = gr.Button("↑", size="sm", elem_id=f"ext-up-{name}", scale=0, min_width=40)
                down = gr.Button("↓", size="sm", elem_id=f"ext-down-{name}", scale=0, min_width=40)
                reset = gr.Button("Reset settings", size="sm", elem_id=f"ext-reset-{name}", scale=0,
                                  min_width=120)
            status = gr.Markdown(status_markdown(ctx, name), elem_id=f"ext-status-{name}")
            comps: dict[str, gr.components.Component] = {}
            editable = {k: s for k, s in specs.items() if s.editable}
            if editable:
                with gr.Accordion("Settings", open=info.enabled, elem_id=f"ext-settings-{name}"):
                    for key, spec in editable.items():
                        try:
                            comps[key] = param_component(spec, values.get(key, spec.default),
                                                         elem_id=f"ext-{name}-{key}")
                        except Exception as exc:  # noqa: BLE001 - e.g. a slider whose min is above its max
                            unshown.append(Problem.of("extension", info.location,
                                                      f"extension {name!r}: setting {key!r} cannot be shown: {exc}"))
        panels.append(ExtensionPanel(name, enabled, up, down, reset, status, comps))
    ctx.problems.report("extension settings panels", unshown)
    failures = gr.Markdown(failures_markdown(ctx), elem_id="ext-failures")
    refresh = gr.Button("Refresh", size="sm", elem_id="ext-refresh")
    return ExtensionsComponents(panels, order, failures, refresh)


# ------------------------------------------------------------------------------------ handlers


@lookup
def snapshot(ctx: AppContext, view: ExtensionsView) -> list[Any]:
    """The enabled order, the failures, each panel's status and checkbox, each ui() area shown or not."""
    enabled = set(ctx.extensions.enabled())
    return [order_markdown(ctx), failures_markdown(ctx),
            *[status_markdown(ctx, n) for n in view.names],
            *[gr.update(value=n in enabled) for n in view.names],
            *[gr.update(visible=n in enabled) for n in view.with_area]]


@action
def toggle(ctx: AppContext, view: ExtensionsView, name: str, enabled: bool) -> list[Any]:
    """Enable or disable ``name`` at once; one that cannot be enabled gets a warning and stays off."""
    try:
        if enabled:
            ctx.extensions.enable(name)
        else:
            ctx.extensions.disable(name)
    except UserFacingError as exc:
        gr.Warning(str(exc))
    return snapshot(ctx, view)


@action
def move(ctx: AppContext, view: ExtensionsView, name: str, delta: int) -> list[Any]:
    """Move an enabled extension ``delta`` places in the order its hooks run (a disabled one stays)."""
    order = ctx.extensions.enabled()
    if name in order:
        i = order.index(name)
        j = max(0, min(len(order) - 1, i + delta))
        order.insert(j, order.pop(i))
        ctx.extensions.set_enabled(order)
    return snapshot(ctx, view)


def _kind(ctx: AppContext, name: str, key: str) -> str:
    spec = ctx.extensions.param_specs(name)[key]
    return "choice" if spec.choices is not None else spec.type


def _shown(value: Any, kind: str) -> Any:
    return to_text(value) if kind == "list" and isinstance(value, list) else value


@action
def change(ctx: AppContext, name: str, key: str, value: Any) -> Any:
    """A setting changed: saved at once; a value it refuses gets a warning and the stored value back."""
    kind = _kind(ctx, name, key)
    try:
        ctx.extensions.set_param(name, key, from_component(kind, value))
        return gr.update()
    except ParamError as exc:
        gr.Warning(str(exc))
        return gr.update(value=_shown(ctx.extensions.get_params(name)[key], kind))


@action
def reset(ctx: AppContext, name: str, keys: tuple[str, ...]) -> list[Any]:
    """Every setting of ``name`` back to its default; the values of ``keys``, as shown."""
    ctx.extensions.reset_params(name)
    values = ctx.extensions.get_params(name)
    return [_shown(values[k], _kind(ctx, name, k)) for k in keys]


def wire(ctx: AppContext, c: ExtensionsComponents, demo: gr.Blocks) -> list[Any]:
    """Returns the events after which the extensions' problems may have changed (switches, Refresh)."""
    view = ExtensionsView(tuple(p.name for p in c.panels), tuple(p.name for p in c.panels if p.name in c.areas))
    outputs = [c.order, c.failures, *[p.status for p in c.panels], *[p.enabled for p in c.panels],
               *[c.areas[n] for n in view.with_area]]
    on(demo.load, bind(snapshot, ctx, view), None, outputs)
    changes = [on(c.refresh.click, bind(snapshot, ctx, view), None, outputs)]
    for panel in c.panels:
        changes.append(on(panel.enabled.input, bind(toggle, ctx, view, panel.name), panel.enabled, outputs))
        on(panel.up.click, bind(move, ctx, view, panel.name, -1), None, outputs)
        on(panel.down.click, bind(move, ctx, view, panel.name, +1), None, outputs)
        for key, comp in panel.params.items():
            on(comp.change, bind(change, ctx, panel.name, key), comp, comp)
        if panel.params:
            on(panel.reset.click, bind(reset, ctx, panel.name, tuple(panel.params)), None, list(panel.params.values()))
    return changes
